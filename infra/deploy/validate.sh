#!/usr/bin/env bash
# Validates the deployment files in infra/deploy/ OFFLINE: nothing here needs Docker, a cluster or the network
# once the validators are installed.
#
#   bash infra/deploy/validate.sh
#
#   compose.yaml   loaded by compose-check (compose-check/main.go on compose-go, the loader of Docker Compose v2):
#                  compose-spec schema, interpolation, env files, references; with and without the gpu profile
#   k8s/*.yaml     kubernetes-validate --strict against the Kubernetes $K8S_VERSION schemas bundled in the wheel;
#                  kustomization.yaml's resources exist and every manifest but the templates is listed
#   Dockerfile     infra/deploy/check-dockerfile.ts (pinned bases, COPY sources, provision steps, entrypoint)
#   scripts/*.sh   bash -n
#
# The validators are installed on first use into the git-ignored .tools/ (.tools/deploy-venv from PyPI,
# .tools/deploy/bin/compose-check built through the Go module proxy), from pinned versions, and recorded in
# .tools/stamps/deploy-*; later runs skip installing while the stamps match. Where `unshare -n` works (root on
# Linux) the checks themselves run without a network, which proves they download nothing.
# Every failure names the file and, from the validator, the field.
set -Eeuo pipefail

# --- pinned versions ----------------------------------------------------------------------
# The Kubernetes release whose schemas the manifests must satisfy (kubernetes-validate bundles 1.x schemas).
K8S_VERSION=1.32.0
# kubernetes-validate and its dependencies: validate-requirements.txt. compose-go: compose-check/go.mod.
# ------------------------------------------------------------------------------------------

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TOOLS="$ROOT/.tools"
VENV="$TOOLS/deploy-venv"
COMPOSE_CHECK="$TOOLS/deploy/bin/compose-check"
STAMPS="$TOOLS/stamps"
STEP=init
say() { printf '[deploy-validate] %s\n' "$*"; }
die() { printf '[deploy-validate] FAILED in %s: %s\n' "$STEP" "$*" >&2; exit 1; }
trap 'rc=$?; [[ $BASH_SUBSHELL -eq 0 ]] && printf "[deploy-validate] FAILED in %s (exit %s, command: %s)\n" "$STEP" "$rc" "$BASH_COMMAND" >&2' ERR
stamp_is() { [[ -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$2" ]]; }
write_stamp() { mkdir -p "$STAMPS" && printf '%s' "$2" >"$STAMPS/$1"; }

# ------------------------------------------------------------------------------ install ---
install_venv() {
  STEP=install-venv
  local want
  want="$(sha256sum "$HERE/validate-requirements.txt" | cut -d' ' -f1) python=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  if stamp_is deploy-venv "$want" && [[ -x "$VENV/bin/kubernetes-validate" ]]; then return; fi
  command -v python3 >/dev/null || die "python3 not found"
  say "installing kubernetes-validate into .tools/deploy-venv"
  rm -rf "$VENV"
  python3 -m venv "$VENV" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
  "$VENV/bin/pip" install --disable-pip-version-check --no-input -q --no-deps -r "$HERE/validate-requirements.txt"
  "$VENV/bin/kubernetes-validate" --version >/dev/null || die "kubernetes-validate does not run"
  write_stamp deploy-venv "$want"
}

install_compose_check() {
  STEP=install-compose-check
  command -v go >/dev/null || die "go not found (compose-check is built from source with Go >= 1.24)"
  local want
  want="$(cat "$HERE/compose-check/go.mod" "$HERE/compose-check/go.sum" "$HERE/compose-check/main.go" | sha256sum | cut -d' ' -f1) $(go env GOVERSION)"
  if stamp_is deploy-compose-check "$want" && [[ -x "$COMPOSE_CHECK" ]]; then return; fi
  say "building compose-check (compose-go, see compose-check/go.mod)"
  mkdir -p "$(dirname "$COMPOSE_CHECK")" "$TOOLS/go" "$TOOLS/go-cache"
  # The same isolated Go folders as infra/provision.sh's MinIO build: the user's Go setup is neither read nor changed.
  (cd "$HERE/compose-check" && env GOPATH="$TOOLS/go" GOMODCACHE="$TOOLS/go/pkg/mod" GOCACHE="$TOOLS/go-cache" \
    GOFLAGS="-modcacherw -mod=readonly" GOWORK=off CGO_ENABLED=0 go build -trimpath -o "$COMPOSE_CHECK" .)
  write_stamp deploy-compose-check "$want"
}

# ------------------------------------------------------------------------------- checks ---
# The checks run without a network namespace where that is possible, to prove they fetch nothing.
OFFLINE=()
if unshare -n true 2>/dev/null; then OFFLINE=(unshare -n); fi

check_compose() {
  STEP=compose
  cd "$ROOT"
  local profile
  for profile in '' gpu; do
    # The example env files stand in for the real, git-ignored secrets/ folder.
    env -u LTH_DEPLOY_NAMESPACE -u LTH_DEPLOY_BUCKET -u LTH_DEPLOY_IMAGE -u LTH_DEPLOY_TAG \
      LTH_DEPLOY_SECRETS=./secrets.example "${OFFLINE[@]}" "$COMPOSE_CHECK" ${profile:+-profile "$profile"} \
      infra/deploy/compose.yaml || die "infra/deploy/compose.yaml is invalid${profile:+ with profile $profile} (see above)"
  done
  local s
  for s in "$HERE"/scripts/*.sh "$HERE/validate.sh"; do
    bash -n "$s" || die "${s#"$ROOT/"}: shell syntax error"
  done
}

check_k8s() {
  STEP=k8s
  cd "$ROOT"
  local f manifests=()
  for f in infra/deploy/k8s/*.yaml; do
    [[ $(basename "$f") == kustomization.yaml ]] && continue
    # A file that is all comments is an example to uncomment (the KEDA one); the test checks its content.
    grep -qvE '^\s*(#|$)' "$f" || continue
    manifests+=("$f")
  done
  "${OFFLINE[@]}" "$VENV/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "${manifests[@]}" ||
    die "a Kubernetes manifest does not validate against Kubernetes $K8S_VERSION (file and field above)"
  "${OFFLINE[@]}" "$VENV/bin/python" - "$HERE/k8s" <<'PY' || die "infra/deploy/k8s/kustomization.yaml (see above)"
import os, sys, yaml
d = sys.argv[1]
k = yaml.safe_load(open(os.path.join(d, "kustomization.yaml")))
listed = k.get("resources") or []
bad = [r for r in listed if not os.path.isfile(os.path.join(d, r))]
for r in bad:
    print(f"infra/deploy/k8s/kustomization.yaml: resources: {r} does not exist", file=sys.stderr)
templates = lambda f: f.endswith(".example.yaml")
unlisted = [f for f in sorted(os.listdir(d)) if f.endswith(".yaml") and f != "kustomization.yaml" and not templates(f) and f not in listed]
for f in unlisted:
    print(f"infra/deploy/k8s/kustomization.yaml: resources: {f} is not listed (templates are named *.example.yaml)", file=sys.stderr)
sys.exit(1 if bad or unlisted else 0)
PY
  say "k8s: ${#manifests[@]} manifests valid against Kubernetes $K8S_VERSION, kustomization.yaml complete"
}

check_dockerfile() {
  STEP=dockerfile
  cd "$ROOT"
  [[ -d node_modules/tsx ]] || die "node_modules is missing (run: bash infra/provision.sh npm)"
  "${OFFLINE[@]}" node --import tsx infra/deploy/check-dockerfile.ts || die "infra/deploy/Dockerfile (see above)"
}

t0=$SECONDS
install_venv
install_compose_check
check_compose
check_k8s
check_dockerfile
STEP=done
say "all deployment files valid in $((SECONDS - t0))s${OFFLINE[*]:+ (checks run without network)}"

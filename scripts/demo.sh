#!/usr/bin/env bash
# Quick start: install what is needed, then run a real small search on Fashion-MNIST (resnet20 at half its FLOPs,
# 16 candidates, 1 epoch on 3% of the training set, one worker per local core) and write its report.
# Usage: npm run demo [-- --samples N --subset F --workers W ...extra search flags]
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
# The bin runs the compiled CLI; rebuild so the demo runs the checked-out code.
npm run --silent build >&2

RUN="runs/demo-fmnist-$(date +%Y%m%d-%H%M%S)"
start=$(date +%s)
npx --no-install prunespace search spaces/resnet20-fmnist.json \
  --samples 16 --epochs 1 --data fashion-mnist --data-dir "$FMNIST_DIR" --subset 0.03 --val-fraction 0.05 \
  --seed 0 --out "$RUN" "$@"
npx --no-install prunespace status "$RUN"
npx --no-install prunespace report "$RUN" --out "$RUN/report"
echo
echo "demo finished in $(( $(date +%s) - start ))s"
echo "results: $RUN/campaign.db, $RUN/trials.csv, $RUN/trials.jsonl"
echo "report:  $RUN/report/report.html"
echo "continue or inspect with: npx prunespace resume $RUN; npx prunespace status $RUN"

#!/usr/bin/env bash
# `phalanx bench mpc` of two checkouts, alternating, in one window (docs/performance.md).
#   git worktree add --detach ../bench-old 0c5e382; git worktree add --detach ../bench-new HEAD
#   bash benchmarks/mpc_side_by_side.sh ../bench-old ../bench-new > side.jsonl
# Each tree runs with this checkout's venv and its own sources (PYTHONPATH=src); a small point
# first warms each tree's numba cache, then the target point (n = 200, d = 10^6, (5, 1))
# alternates REPS times. One JSON object per line: {"tree", "rep", "result"}.
set -euo pipefail
PY=${PY:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python}
REPS=${REPS:-2}
run() {  # tree, args...
  local tree=$1; shift
  (cd "$tree" && PYTHONPATH=src "$PY" -c \
    "import sys; from phalanx.cli import main; sys.argv[0] = 'phalanx'; sys.exit(main())" \
    bench mpc "$@" --json 2>/dev/null | tail -1)
}
for tree in "$@"; do run "$tree" --clients 4 --dim 1000 >/dev/null; done
for rep in $(seq 1 "$REPS"); do
  for tree in "$@"; do
    line=$(run "$tree" --rule fltrust --clients 200 --dim 1000000 --committee 5 --threshold 1)
    echo "{\"tree\": \"$(basename "$tree")\", \"rep\": $rep, \"result\": $line}"
  done
done

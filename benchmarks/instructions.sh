#!/usr/bin/env bash
# Instructions per acquire(100) + release(80) at 1,000 deployments (three-level tree, ample),
# counted by valgrind's cachegrind: steadier than wall time on a shared machine.
#   bash benchmarks/instructions.sh [CHECKOUT] [STRATEGY ...]
# CHECKOUT (default: this one) is a ratetree source tree; its src/ and benchmarks/ are used.
# Needs valgrind (apt-get install valgrind). Prints one line per strategy.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
checkout="$(cd "${1:-$here}" && pwd)"
shift || true
strategies=("${@:-shuffle}")
[ $# -gt 0 ] || strategies=(shuffle round-robin least-busy usage-based)
python="${PYTHON:-$here/.venv/bin/python}"
program='
import random, sys
from trees import ROOT, three_level_spec
from ratetree import Scheduler
from ratetree.testing import FakeClock
strategy, n = sys.argv[1], int(sys.argv[2])
s = Scheduler(three_level_spec(1000, strategy), clock=FakeClock(), rng=random.Random(1))
for _ in range(n):
    s.acquire(ROOT, tokens=100).release(80)
'
count() {
    PYTHONHASHSEED=0 PYTHONPATH="$checkout/src:$checkout/benchmarks" \
        valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
        "$python" -c "$program" "$1" "$2" 2>&1 | grep -E "I\s+refs" | tr -d ',' | awk '{print $NF}'
}
for strategy in "${strategies[@]}"; do
    none=$(count "$strategy" 0)
    many=$(count "$strategy" 20000)
    echo "$strategy: $(( (many - none) / 20000 )) instructions per acquire + release"
done

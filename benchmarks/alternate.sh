#!/usr/bin/env bash
# Wall time of two checkouts, alternated: microseconds per acquire(100) + release(80) at
# 1,000 deployments (three-level tree, ample), each process timing 25 x 2,000 requests and
# keeping its fastest; the checkouts take turns ROUNDS times, so a busy neighbour slows
# both alike. Prints, per strategy, the fastest and the median process of each checkout.
#   bash benchmarks/alternate.sh BEFORE AFTER [ROUNDS] [STRATEGY ...]
# BEFORE and AFTER are ratetree source trees; their src/ and benchmarks/ are used (so each
# builds its tree with its own benchmarks/trees.py). PYTHON picks the interpreter.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
before="$(cd "$1" && pwd)"
after="$(cd "$2" && pwd)"
rounds="${3:-8}"
shift 2
shift || true
strategies=("${@:-shuffle}")
[ $# -gt 0 ] || strategies=(shuffle round-robin least-busy usage-based)
python="${PYTHON:-$here/.venv/bin/python}"
program='
import random, sys, time
from trees import ROOT, three_level_spec
from ratetree import Scheduler
from ratetree.testing import FakeClock
s = Scheduler(three_level_spec(1000, sys.argv[1]), clock=FakeClock(), rng=random.Random(1))
acquire = s.acquire
for _ in range(3000):
    acquire(ROOT, tokens=100).release(80)
best = float("inf")
for _ in range(25):
    t = time.perf_counter()
    for _ in range(2000):
        acquire(ROOT, tokens=100).release(80)
    best = min(best, (time.perf_counter() - t) / 2000 * 1e6)
print(best)
'
time_one() {
    PYTHONHASHSEED=0 PYTHONPATH="$1/src:$1/benchmarks" "$python" -c "$program" "$2"
}
for strategy in "${strategies[@]}"; do
    a=""
    b=""
    for _ in $(seq "$rounds"); do
        a="$a $(time_one "$before" "$strategy")"
        b="$b $(time_one "$after" "$strategy")"
    done
    "$python" - "$strategy" "$a" "$b" <<'EOF'
import statistics, sys
name, a, b = sys.argv[1], [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()]
print(
    f"{name}: before {min(a):.2f} us (median {statistics.median(a):.2f}), "
    f"after {min(b):.2f} us (median {statistics.median(b):.2f}), "
    f"after / before {min(b) / min(a):.3f} (fastest), {statistics.median(b) / statistics.median(a):.3f} (median)"
)
EOF
done

"""Run the ratetree benchmarks and print a paste-ready markdown report.

Usage (from anywhere; needs pytest-benchmark, i.e. ``pip install -e '.[bench]'``)::

    python benchmarks/run.py            # full run, ~1-2 minutes on 2 cores
    python benchmarks/run.py --quick    # smoke run, a few seconds per case group
    python benchmarks/run.py --report   # re-render the table from the last results
    python benchmarks/run.py --check    # exit 1 if a target is missed
    python benchmarks/run.py --quick -- -k shuffle   # pass options on to pytest

What is measured: one ``acquire(group, tokens=100)`` followed by ``lease.release(80)``
on a fresh scheduler whose clock never moves (``benchmarks/test_acquire.py``), for

- a three-level tree (root -> k mid groups -> k leaf groups -> n / k**2 deployments,
  k = round(n ** (1/3))) of n = 100, 1,000 and 10,000 deployments;
- each strategy (every group of the tree uses the same one);
- "ample" buckets, or "90% exhausted": 90% of the deployments, chosen with a fixed seed,
  drained through the scheduler before timing;
- at 1,000 deployments, two more shapes: the tree with an rpm limit on the root group
  (checked by every request, never the one that blocks) and a single flat group;
- refusals: every deployment drained, one refused acquire with its exact retry_after, for
  a minimal request and for requests with token counts the scheduler has not seen;
- a floor: a bare GCRA take with a ``time.monotonic()`` read in pure Python, the least
  any Python rate limiter can cost per request on this machine.

Numbers are medians of per-iteration times, in microseconds. Ratios come from the same
run, so they compare like with like even on a noisy machine; absolute numbers do not
transfer between machines. The pytest-benchmark JSON (statistics only, no raw timings,
so it stays small enough to commit) goes to ``benchmarks/results/latest.json``.

The report goes to stdout and pytest's progress to stderr, so
``python benchmarks/run.py > report.md`` captures just the markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results" / "latest.json"

# Kept in step with trees.py by hand: importing it would import ratetree, and --report
# should work from a JSON file alone.
STRATEGIES = ("shuffle", "round-robin", "least-busy", "usage-based")
SIZES = (100, 1000, 10000)
FULLNESSES = ("ample", "exhausted")
FULLNESS_LABEL = {"ample": "ample", "exhausted": "90% exhausted"}
VARIANT_SIZE = 1000

# Targets the report checks, PASS or FAIL.
TARGET_US = 5.0
TARGET_US_STRATEGIES = ("shuffle", "round-robin")
TARGET_SCALING = 2.0  # cost at 10,000 deployments / cost at 100
TARGET_EXHAUSTED = 3.0  # cost with 90% drained / cost with everything ample

# pytest-benchmark settings. A round runs at least MIN_TIME so that one acquire+release
# (a few µs) is batched into tens of iterations and timer overhead and jitter wash out;
# MAX_TIME bounds each case. 41 cases x (MAX_TIME + calibration + setup) keeps the full
# run around 1-2 minutes on 2 cores; the 10,000-deployment drains are the slowest setup.
FULL = {"min_time": 0.0002, "max_time": 0.6, "min_rounds": 20, "warmup_iterations": 2000}
QUICK = {"min_time": 0.0001, "max_time": 0.03, "min_rounds": 3, "warmup_iterations": 100}

Key = tuple[str, int, str, str]  # (case, size, strategy, fullness)


def run_suite(settings: dict[str, float], json_path: Path, pytest_args: list[str]) -> int:
    """Run the benchmark suite, writing pytest-benchmark's JSON to ``json_path``."""
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(HERE / "test_acquire.py"),
        "-q",
        "-p",
        "no:cacheprovider",
        f"--benchmark-json={json_path}",
        f"--benchmark-min-time={settings['min_time']}",
        f"--benchmark-max-time={settings['max_time']}",
        f"--benchmark-min-rounds={int(settings['min_rounds'])}",
        "--benchmark-warmup=on",
        f"--benchmark-warmup-iterations={int(settings['warmup_iterations'])}",
        "--benchmark-columns=median,iqr,rounds,iterations",
        "--benchmark-sort=name",
        *pytest_args,
    ]
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    # pytest's own output goes to stderr so stdout carries only the markdown report.
    return subprocess.run(cmd, cwd=REPO, stdout=sys.stderr, check=False).returncode


def code_is_dirty() -> bool:
    """Whether anything but the benchmark results differs from the checked-out commit."""
    status = subprocess.run(
        ["git", "status", "--porcelain", "--", ".", ":!benchmarks/results"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    return status.returncode != 0 or bool(status.stdout.strip())


def shrink(raw: dict[str, Any]) -> dict[str, Any]:
    """Drop the raw per-round timings (megabytes), the CPU flag list and the host name,
    keeping the statistics: the file is committed, so it should diff and review small."""
    for bench in raw.get("benchmarks", []):
        bench.get("stats", {}).pop("data", None)
    machine = raw.get("machine_info", {})
    machine.pop("node", None)
    machine.get("cpu", {}).pop("flags", None)
    return raw


def load_medians(raw: dict[str, Any]) -> tuple[dict[Key, float], float | None]:
    """Medians in µs keyed by (case, size, strategy, fullness), and the floor's."""
    medians: dict[Key, float] = {}
    floor = None
    for bench in raw["benchmarks"]:
        info = bench.get("extra_info", {})
        median_us = bench["stats"]["median"] * 1e6
        if info.get("case") == "floor":
            floor = median_us
        elif "case" in info:
            key = (info["case"], info["size"], info["strategy"], info["fullness"])
            medians[key] = median_us
    return medians, floor


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 0


def machine_line() -> str:
    return (
        f"Machine: {platform.python_implementation()} {platform.python_version()} · "
        f"{platform.platform()} · {cpu_model()} ({cpu_count()} CPUs usable)"
    )


def us(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:.0f}"


def times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def verdict(value: float | None, limit: float) -> str:
    if value is None:
        return "n/a"
    return "PASS" if value <= limit else "**FAIL**"


def table(header: list[str], rows: Iterable[list[str]], align: str) -> list[str]:
    """A markdown table; ``align`` holds one of 'l'/'r' per column."""
    marks = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render(raw: dict[str, Any]) -> tuple[str, bool]:
    """The markdown report, and whether every target passed."""
    medians, floor = load_medians(raw)

    def m(case: str, size: int, strategy: str, fullness: str) -> float | None:
        return medians.get((case, size, strategy, fullness))

    out: list[str] = []
    if raw.get("ratetree_quick"):
        out += ["_Quick smoke run: too few rounds for numbers worth publishing._", ""]
    out.append(raw.get("ratetree_machine") or "Machine: unknown")
    commit = raw.get("commit_info", {})
    if commit.get("id"):
        dirty = " + uncommitted changes" if commit.get("dirty") else ""
        out.append(f"ratetree commit `{commit['id'][:10]}`{dirty} · run {raw.get('datetime', '')}")
    out.append("")

    out.append(
        "**acquire(tokens=100) + release(80), median µs** — three-level tree "
        "(root → k mid → k leaf groups → deployments, k = round(n^⅓)), same strategy in "
        "every group; 90% exhausted = 90% of deployments drained, at random"
    )
    out.append("")
    rows = [
        [f"{size:,}", FULLNESS_LABEL[f], *(us(m("tree", size, s, f)) for s in STRATEGIES)]
        for size in SIZES
        for f in FULLNESSES
    ]
    out += table(["deployments", "fill", *STRATEGIES], rows, "rl" + "r" * len(STRATEGIES))
    out.append("")

    out.append(f"**Variants at {VARIANT_SIZE:,} deployments, median µs**")
    out.append("")
    shapes = [
        ("tree", "three-level tree"),
        ("root-limit", "tree + rpm limit on root group"),
        ("flat", "one flat group"),
    ]
    rows = [
        [label, FULLNESS_LABEL[f], *(us(m(case, VARIANT_SIZE, s, f)) for s in STRATEGIES)]
        for case, label in shapes
        for f in FULLNESSES
    ]
    out += table(["shape", "fill", *STRATEGIES], rows, "ll" + "r" * len(STRATEGIES))
    out.append("")

    out.append(
        "**Refusals, median µs** — every deployment of the three-level tree drained; "
        "one refused acquire with its exact retry_after. Minimal: tokens=0. With tokens: "
        "2,048 distinct token counts in turn, more than the scheduler keeps answers for"
    )
    out.append("")
    rows = [
        [
            f"{size:,}",
            us(m("refusal", size, "minimal", "drained")),
            us(m("refusal", size, "tokens", "drained")),
        ]
        for size in SIZES
    ]
    out += table(["deployments", "minimal", "with tokens"], rows, "rrr")
    out.append("")

    out.append("**Ratios (same run)**")
    out.append("")
    # (label, numerator, denominator) with each side a (case, size, fullness) cell of the
    # grid, or None for the floor.
    Cell = tuple[str, int, str]
    ratios: list[tuple[str, Cell, Cell | None]] = [
        (f"10,000 ÷ 100 deployments, {FULLNESS_LABEL[f]}", ("tree", 10000, f), ("tree", 100, f))
        for f in FULLNESSES
    ]
    ratios += [
        (f"90% exhausted ÷ ample, {n:,}", ("tree", n, "exhausted"), ("tree", n, "ample"))
        for n in SIZES
    ]
    ratios += [
        (
            f"root limit ÷ no limit, {VARIANT_SIZE:,} ample",
            ("root-limit", VARIANT_SIZE, "ample"),
            ("tree", VARIANT_SIZE, "ample"),
        ),
        (f"÷ floor, {VARIANT_SIZE:,} ample", ("tree", VARIANT_SIZE, "ample"), None),
    ]
    rows = []
    for label, (case, n, f), below in ratios:
        cells = []
        for s in STRATEGIES:
            bottom = floor if below is None else m(below[0], below[1], s, below[2])
            cells.append(times(ratio(m(case, n, s, f), bottom)))
        rows.append([label, *cells])
    out += table(["ratio", *STRATEGIES], rows, "l" + "r" * len(STRATEGIES))
    out.append("")
    out.append(
        f"Floor: {us(floor)} µs — a bare GCRA take plus a `time.monotonic()` read in pure Python."
    )
    out.append("")

    out.append("**Targets**")
    out.append("")
    checks: list[list[str]] = []
    ok = True

    def check(target: str, strategy: str, value: float | None, shown: str, limit: float) -> None:
        nonlocal ok
        result = verdict(value, limit)
        ok = ok and result == "PASS"
        checks.append([target, strategy, shown, result])

    for s in TARGET_US_STRATEGIES:
        v = m("tree", VARIANT_SIZE, s, "ample")
        check(f"≤ {TARGET_US:g} µs at 1,000, ample", s, v, f"{us(v)} µs", TARGET_US)
    for s in STRATEGIES:
        # The worse of the two fill levels: the target holds only if both meet it.
        vals = [ratio(m("tree", 10000, s, f), m("tree", 100, s, f)) for f in FULLNESSES]
        v = None if None in vals else max(v for v in vals if v is not None)
        check(f"10,000 ≤ {TARGET_SCALING:g}x 100 (worse fill)", s, v, times(v), TARGET_SCALING)
    for s in STRATEGIES:
        vals = [ratio(m("tree", n, s, "exhausted"), m("tree", n, s, "ample")) for n in SIZES]
        v = None if None in vals else max(v for v in vals if v is not None)
        check(
            f"exhausted ≤ {TARGET_EXHAUSTED:g}x ample (worst size)",
            s,
            v,
            times(v),
            TARGET_EXHAUSTED,
        )
    out += table(["target", "strategy", "measured", "result"], checks, "llrl")
    return "\n".join(out), ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument(
        "--report", action="store_true", help="only re-render the report from --json"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"default: {RESULTS}")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest, e.g. -k shuffle")
    args = parser.parse_args(argv)

    if not args.report:
        # Let pytest-benchmark write the full dump to a scratch file; only the shrunk
        # statistics land in the results directory.
        with tempfile.TemporaryDirectory() as tmp:
            scratch = Path(tmp) / "raw.json"
            code = run_suite(QUICK if args.quick else FULL, scratch, args.pytest_args)
            if code != 0 or not scratch.exists():
                print(f"benchmark suite failed (pytest exit code {code})", file=sys.stderr)
                return code or 1
            raw = shrink(json.loads(scratch.read_text()))
        # Recorded with the numbers so that --report describes the machine that ran them.
        raw["ratetree_machine"] = machine_line()
        # pytest-benchmark calls the tree dirty when only an earlier results file differs;
        # what matters is whether the code measured is the commit named.
        raw.setdefault("commit_info", {})["dirty"] = code_is_dirty()
        raw["ratetree_quick"] = args.quick
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(raw, indent=1, sort_keys=True) + "\n")
        print(f"results: {args.json}", file=sys.stderr)

    report, ok = render(json.loads(args.json.read_text()))
    print(report)
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())

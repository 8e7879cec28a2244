"""Run the ratetree benchmarks, LiteLLM's Router beside them, and print a markdown report.

Usage (from anywhere; needs ``pip install -e '.[bench]'``, which brings pytest-benchmark,
matplotlib and litellm)::

    python benchmarks/run.py            # full run, 6 (quiet) to 12 (busy) minutes on 2 cores
    python benchmarks/run.py --quick    # smoke run, about 2 minutes; LiteLLM at 10 and 100 only
    python benchmarks/run.py --report   # re-render the report and plot from the last results
    python benchmarks/run.py --check    # exit 1 if a goal is missed
    python benchmarks/run.py --quick -- -k shuffle   # pass options on to pytest (ratetree part)

What is measured, all in one run on one machine:

- ``benchmarks/test_acquire.py``: one ``acquire(group, tokens=100)`` followed by
  ``lease.release(80)`` on a scheduler whose clock never moves, for each strategy, at 10,
  100, 1,000 and 10,000 deployments, in a three-level tree (root -> k mid groups -> k leaf
  groups -> n / k**2 deployments, k = round(n ** (1/3))), in one flat group, and in the tree
  with a tight limit on the root group; each with "ample" buckets and "90% exhausted" (90%
  of the deployments, chosen with a fixed seed, drained before timing). Also refusals, a
  floor (a bare GCRA take with a ``time.monotonic()`` read in pure Python) and the rate of
  2 threads against 1 on one scheduler.
- ``benchmarks/test_litellm.py``: LiteLLM's ``Router.async_get_available_deployment`` on
  the same deployments, flat, for simple-shuffle and usage-based-routing-v2, one process
  per Router (LiteLLM keeps global callback state), offline. Skipped, with a message, when
  litellm is not installed.
- ``benchmarks/memory.py``: bytes per deployment of a 10,000-deployment scheduler.

Numbers are medians (and interquartile ranges) of per-request times. Ratios come from the
same run, so they compare like with like even on a noisy machine; absolute numbers do not
transfer between machines. The merged pytest-benchmark JSON (statistics only, no raw
timings, so it stays small enough to commit) goes to ``benchmarks/results/latest.json``
and the plot to ``benchmarks/results/scaling.png``. The report goes to stdout and
everything else to stderr, so ``python benchmarks/run.py > report.md`` captures just the
markdown.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from report import SIZES, plot, render
from report_builds import render_builds

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results" / "latest.json"
PLOT = HERE / "results" / "scaling.png"

# pytest-benchmark settings. A round runs at least MIN_TIME so that one acquire+release
# (a few µs) is batched into tens of iterations and timer overhead and jitter wash out;
# MAX_TIME bounds each case. ~110 cases x (MAX_TIME + calibration + setup) keeps the
# ratetree part at 1.5 to 3 minutes on 2 cores; the 10,000-deployment drains are the slowest
# setup.
FULL = {"min_time": 0.0002, "max_time": 0.5, "min_rounds": 20, "warmup_iterations": 2000}
QUICK = {"min_time": 0.0001, "max_time": 0.02, "min_rounds": 3, "warmup_iterations": 100}
ROUTER_STRATEGIES = ("simple-shuffle", "usage-based-routing-v2")
QUICK_LITELLM_SIZES = (10, 100)
# Building a 10,000-deployment Router takes about a minute here (over three while other
# work shares the 2 cores), and a pick most of a second; a case that takes longer than this
# is reported as not measured, so the run stays bounded.
LITELLM_TIMEOUT = 600


def pytest_cmd(target: str, settings: dict[str, float], json_path: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        target,
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
    ]


def run_pytest(
    cmd: list[str], quick: bool, timeout: float | None = None, path: Path | None = None
) -> int:
    """Run one pytest process; its output goes to stderr so stdout carries only the
    markdown report. ``path``: a directory to import ratetree from first (PYTHONPATH).
    Returns its exit code (-1 on timeout)."""
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    env = {**os.environ, "RATETREE_BENCH_QUICK": "1" if quick else ""}
    if path is not None:
        env["PYTHONPATH"] = str(path)
    try:
        done = subprocess.run(
            cmd, cwd=REPO, stdout=sys.stderr, env=env, check=False, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return -1
    return done.returncode


def run_litellm(settings: dict[str, float], quick: bool, scratch: Path) -> tuple[list[Any], str]:
    """The LiteLLM cases, one process each, and a note for the report ("" if all ran)."""
    if importlib.util.find_spec("litellm") is None:
        note = (
            "LiteLLM not measured: litellm is not installed "
            "(pip install -e '.[bench]' installs it)."
        )
        print(note, file=sys.stderr)
        return [], note
    benchmarks: list[Any] = []
    missing = []
    sizes = QUICK_LITELLM_SIZES if quick else SIZES
    for strategy in ROUTER_STRATEGIES:
        for size in sizes:
            out = scratch / f"litellm-{strategy}-{size}.json"
            node = f"{HERE / 'test_litellm.py'}::test_router_pick[{strategy}-{size}]"
            code = run_pytest(pytest_cmd(node, settings, out), quick, LITELLM_TIMEOUT)
            if code == 0 and out.exists():
                benchmarks += json.loads(out.read_text())["benchmarks"]
            else:
                why = f"over {LITELLM_TIMEOUT} s" if code == -1 else f"pytest exit code {code}"
                missing.append(f"{strategy} at {size:,} ({why})")
    notes = []
    if quick:
        notes.append(
            f"LiteLLM measured at {', '.join(map(str, sizes))} deployments only (--quick)."
        )
    if missing:
        notes.append("LiteLLM not measured: " + "; ".join(missing) + ".")
    return benchmarks, " ".join(notes)


def compiled_copy(scratch: Path) -> tuple[Path | None, str]:
    """This checkout built as a compiled wheel (setup.py, mypyc) and unpacked, to import
    instead of the pure one; (None, why) when the build came out pure."""
    wheels = scratch / "wheels"
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO)]
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    env = {**os.environ, "RATETREE_COMPILE": "1"}
    done = subprocess.run(cmd, stdout=sys.stderr, env=env, check=False)
    found = sorted(wheels.glob("ratetree-*.whl"))
    if done.returncode != 0 or not found:
        return None, f"Compiled build not measured: pip wheel failed (exit code {done.returncode})."
    if found[0].name.endswith("-py3-none-any.whl"):
        return None, "Compiled build not measured: the wheel came out pure (no C compiler?)."
    target = scratch / "compiled"
    with zipfile.ZipFile(found[0]) as wheel:
        wheel.extractall(target)
    return target, ""


def run_compiled(
    settings: dict[str, float], quick: bool, scratch: Path, pytest_args: list[str]
) -> tuple[list[Any], str]:
    """The grid and the floor again, importing the compiled build; a note if not run."""
    target, note = compiled_copy(scratch)
    if target is None:
        print(note, file=sys.stderr)
        return [], note
    out = scratch / "compiled.json"
    cmd = pytest_cmd(str(HERE / "test_acquire.py"), settings, out)
    code = run_pytest([*cmd, "-k", "test_acquire or test_floor", *pytest_args], quick, None, target)
    if code != 0 or not out.exists():
        return [], f"Compiled build not measured: pytest exit code {code}."
    benchmarks: list[Any] = json.loads(out.read_text())["benchmarks"]
    floors = [b for b in benchmarks if b.get("extra_info", {}).get("case") == "floor"]
    if not floors or floors[0]["extra_info"].get("compiled") is not True:
        return [], "Compiled build not measured: the run imported the pure build."
    return benchmarks, ""


def run_memory() -> dict[str, Any]:
    """bytes per deployment from benchmarks/memory.py, run in a process of its own."""
    cmd = [sys.executable, str(HERE / "memory.py")]
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    done = subprocess.run(cmd, cwd=HERE, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


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


def machine() -> dict[str, Any]:
    try:
        litellm = version("litellm")
    except PackageNotFoundError:
        litellm = None
    return {
        "cpu": cpu_model(),
        "cpus": cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "litellm": litellm,
    }


def measure(quick: bool, pytest_args: list[str]) -> dict[str, Any] | None:
    """Run everything; the merged, shrunk results, or None if the ratetree suite failed."""
    settings = QUICK if quick else FULL
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        # pytest-benchmark writes its full dump to scratch; only the statistics are kept.
        cmd = pytest_cmd(str(HERE / "test_acquire.py"), settings, scratch / "raw.json")
        # The pure build from this checkout's src/, whatever the environment has installed.
        peers = str(HERE / "test_peers.py")
        code = run_pytest([*cmd, peers, *pytest_args], quick, None, REPO / "src")
        if code != 0 or not (scratch / "raw.json").exists():
            print(f"benchmark suite failed (pytest exit code {code})", file=sys.stderr)
            return None
        raw: dict[str, Any] = json.loads((scratch / "raw.json").read_text())
        build = next(b for b in raw["benchmarks"] if b["extra_info"].get("case") == "floor")
        raw["ratetree_build"] = "compiled" if build["extra_info"].get("compiled") else "pure"
        litellm, note = run_litellm(settings, quick, scratch)
        raw["benchmarks"] += litellm
        compiled, compiled_note = run_compiled(settings, quick, scratch, pytest_args)
        raw["ratetree_compiled"] = compiled
        raw["ratetree_compiled_note"] = compiled_note
    raw = shrink(raw)
    shrink({"benchmarks": raw["ratetree_compiled"]})
    raw["ratetree_litellm_note"] = note
    raw["ratetree_memory"] = run_memory()
    # Recorded with the numbers so that --report describes the machine that ran them.
    raw["ratetree_machine"] = machine()
    # pytest-benchmark calls the tree dirty when only an earlier results file differs;
    # what matters is whether the code measured is the commit named.
    raw.setdefault("commit_info", {})["dirty"] = code_is_dirty()
    raw["ratetree_quick"] = quick
    return raw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument(
        "--report", action="store_true", help="only re-render the report and plot from --json"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if a goal is missed")
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"default: {RESULTS}")
    parser.add_argument("--plot", type=Path, default=PLOT, help=f"default: {PLOT}")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest, e.g. -k shuffle")
    args = parser.parse_args(argv)

    if not args.report:
        raw = measure(args.quick, args.pytest_args)
        if raw is None:
            return 1
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(raw, indent=1, sort_keys=True) + "\n")
        print(f"results: {args.json}", file=sys.stderr)

    raw = json.loads(args.json.read_text())
    print(plot(raw, args.plot), file=sys.stderr)
    report, ok = render(raw)
    builds, builds_ok = render_builds(raw)
    print(report)
    print()
    print(builds)
    ok = ok and builds_ok
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())

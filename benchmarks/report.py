"""Render a results file of ``benchmarks/run.py`` as markdown, and plot it.

Kept apart from running so ``run.py --report`` can redraw both from the JSON alone (it
imports neither ratetree nor litellm). The goals are issue 4's.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

# Kept in step with the strategy registry (trees.py) by hand: importing it would import
# ratetree.
STRATEGIES = (
    "shuffle",
    "round-robin",
    "least-busy",
    "usage-based",
    "latency-based",
    "cost-based",
)
SIZES = (10, 100, 1000, 10000)
FULLNESSES = ("ample", "exhausted")
FULLNESS_LABEL = {"ample": "ample", "exhausted": "90% exhausted"}
CASES = {
    "tree": "three-level tree (root → k mid → k leaf groups → deployments, k = round(n^⅓))",
    "flat": "one flat group holding every deployment",
    "tight": "three-level tree with a tight limit on the root group "
    "(max_parallel_requests=1 and an rpm limit: full after every acquire, open after "
    "every release)",
}
# LiteLLM routing strategy -> the ratetree strategy compared with it (same flat group).
ROUTER = {"simple-shuffle": "shuffle", "usage-based-routing-v2": "usage-based"}

# Issue 4's goals.
GOAL_VS_LITELLM = {10: 100.0, 1000: 1000.0}  # size -> LiteLLM simple-shuffle ÷ ratetree
GOAL_FLOOR = 10.0  # ratetree at 1,000 ÷ floor
GOAL_SCALING = 2.0  # cost at 10,000 deployments ÷ cost at 100
GOAL_BYTES = 2048.0  # per deployment, 10,000-deployment scheduler
GOAL_THREADS = 0.8  # 2-thread rate ÷ 1-thread rate
# The core issue's targets, still checked.
TARGET_US = 5.0
TARGET_US_STRATEGIES = ("shuffle", "round-robin")
TARGET_EXHAUSTED = 3.0

Key = tuple[str, int, str, str]  # (case, size, strategy, fullness)
Stat = tuple[float, float]  # (median, interquartile range), µs per request


def load(raw: dict[str, Any]) -> tuple[dict[Key, Stat], float | None, dict[str, Any]]:
    """Per-request medians and IQRs keyed by (case, size, strategy, fullness); the floor's
    median; and the thread case's ``extra_info`` (empty if it did not run)."""
    stats: dict[Key, Stat] = {}
    floor = None
    threads: dict[str, Any] = {}
    for bench in raw["benchmarks"]:
        info = bench.get("extra_info", {})
        per = info.get("picks") or 1  # a LiteLLM round is several picks
        median = bench["stats"]["median"] * 1e6 / per
        iqr = bench["stats"]["iqr"] * 1e6 / per
        if info.get("case") == "floor":
            floor = median
        elif info.get("case") == "threads":
            threads = info
        elif "case" in info and info["case"] != "peer":  # peers: see report_builds
            stats[(info["case"], info["size"], info["strategy"], info["fullness"])] = (median, iqr)
    return stats, floor, threads


def duration(us: float | None) -> str:
    if us is None:
        return "-"
    if us >= 1000:
        return f"{us / 1000:,.1f} ms" if us < 100_000 else f"{us / 1000:,.0f} ms"
    return f"{us:.2f} µs" if us < 10 else f"{us:.1f} µs"


def number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def times(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}x" if value < 100 else f"{value:,.0f}x"


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def table(header: list[str], rows: Iterable[list[str]], align: str) -> list[str]:
    """A markdown table; ``align`` holds one of 'l'/'r' per column."""
    marks = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def machine_lines(raw: dict[str, Any]) -> list[str]:
    m = raw.get("ratetree_machine") or {}
    if isinstance(m, str):  # results written before the machine became a dict
        return [m]
    lines = [
        f"Machine: {m.get('cpu', '?')} ({m.get('cpus', '?')} CPUs usable) · "
        f"{m.get('python', '?')} · {m.get('platform', '?')} · "
        f"litellm {m.get('litellm') or 'not installed'}"
    ]
    commit = raw.get("commit_info", {})
    if commit.get("id"):
        dirty = " + uncommitted changes" if commit.get("dirty") else ""
        lines.append(
            f"ratetree commit `{commit['id'][:10]}`{dirty} · run {raw.get('datetime', '')}"
        )
    return lines


def render(raw: dict[str, Any]) -> tuple[str, bool]:
    """The markdown report, and whether every goal was met."""
    stats, floor, threads = load(raw)

    def m(case: str, size: int, strategy: str, fullness: str = "ample") -> float | None:
        found = stats.get((case, size, strategy, fullness))
        return None if found is None else found[0]

    def cell(case: str, size: int, strategy: str, fullness: str) -> str:
        found = stats.get((case, size, strategy, fullness))
        return "-" if found is None else f"{number(found[0])} ({number(found[1])})"

    out: list[str] = []
    if raw.get("ratetree_quick"):
        out += ["_Quick smoke run: too few rounds for numbers worth publishing._", ""]
    out += [*machine_lines(raw), ""]

    for case, label in CASES.items():
        out.append(
            f"**acquire(tokens=100) + release(80), median (IQR) µs** — {label}; same "
            "strategy in every group; 90% exhausted = 90% of deployments drained, at random"
        )
        out.append("")
        rows = [
            [f"{n:,}", FULLNESS_LABEL[f], *(cell(case, n, s, f) for s in STRATEGIES)]
            for n in SIZES
            for f in FULLNESSES
        ]
        out += table(["deployments", "fill", *STRATEGIES], rows, "rl" + "r" * len(STRATEGIES))
        out.append("")

    out.append(
        "**Against LiteLLM** — `Router(model_list=...).async_get_available_deployment(...)`, "
        "the same deployments under one model name, each Router in its own process; "
        "ratetree: the one flat group, ample, `acquire` alone (pick for pick) and with its "
        "`release(80)`; medians"
    )
    out.append("")
    note = raw.get("ratetree_litellm_note")
    if note:
        out += [f"_{note}_", ""]
    for router, ours in ROUTER.items():
        rows = []
        for n in SIZES:
            theirs, pick, both = m("litellm", n, router), m("pick", n, ours), m("flat", n, ours)
            rows.append(
                [
                    f"{n:,}",
                    duration(theirs),
                    duration(pick),
                    times(ratio(theirs, pick)),
                    duration(both),
                    times(ratio(theirs, both)),
                ]
            )
        header = [
            "deployments",
            f"LiteLLM {router}: pick",
            f"ratetree {ours}: acquire",
            "faster by",
            "acquire + release",
            "faster by",
        ]
        out += table(header, rows, "r" * len(header))
        out.append("")

    out.append(
        "**Refusals, median (IQR) µs** — every deployment of the three-level tree drained; "
        "one refused acquire with its exact retry_after. Minimal: tokens=0. With tokens: "
        "2,048 distinct token counts in turn, more than the scheduler keeps answers for"
    )
    out.append("")
    rows = [
        [
            f"{n:,}",
            cell("refusal", n, "minimal", "drained"),
            cell("refusal", n, "tokens", "drained"),
        ]
        for n in SIZES
    ]
    out += table(["deployments", "minimal", "with tokens"], rows, "rrr")
    out.append("")

    out.append("**Ratios (same run)**")
    out.append("")
    rows = []
    for case in CASES:
        for f in FULLNESSES:
            rows.append(
                [f"10,000 ÷ 100 deployments, {case}, {FULLNESS_LABEL[f]}"]
                + [times(ratio(m(case, 10000, s, f), m(case, 100, s, f))) for s in STRATEGIES]
            )
    for n in SIZES:
        rows.append(
            [f"90% exhausted ÷ ample, tree, {n:,}"]
            + [times(ratio(m("tree", n, s, "exhausted"), m("tree", n, s))) for s in STRATEGIES]
        )
    rows.append(
        ["tight root limit ÷ none, tree, 1,000 ample"]
        + [times(ratio(m("tight", 1000, s), m("tree", 1000, s))) for s in STRATEGIES]
    )
    for case in ("tree", "flat"):
        rows.append(
            [f"÷ floor, {case}, 1,000 ample"]
            + [times(ratio(m(case, 1000, s), floor)) for s in STRATEGIES]
        )
    out += table(["ratio", *STRATEGIES], rows, "l" + "r" * len(STRATEGIES))
    out.append("")

    memory = raw.get("ratetree_memory") or {}
    per_strategy = memory.get("bytes_per_deployment", {})
    thread_ratio = threads.get("rate_ratio")
    out.append(
        f"Floor: {duration(floor)} — a bare GCRA take plus a `time.monotonic()` read in pure "
        "Python, the least any Python rate limiter can cost per request."
    )
    if per_strategy:
        out.append("")
        out.append(
            f"Memory, {memory.get('size', 0):,}-deployment three-level tree after one request "
            "per deployment (tracemalloc), bytes per deployment, scheduler alone / with its "
            "TreeSpec: "
            + ", ".join(
                f"{s} {b['scheduler']:,.0f} / {b['with_spec']:,.0f}"
                for s, b in per_strategy.items()
            )
            + "."
        )
    if threads:
        low, high = threads["rate_ratio_quartiles"]
        out.append("")
        out.append(
            f"Threads, {threads['size']:,}-deployment tree, shuffle, "
            f"{threads['requests']:,} requests a round: 1 thread "
            f"{threads['requests'] / threads['one_thread_s']:,.0f} requests/s, 2 threads "
            f"{threads['requests'] / threads['two_threads_s']:,.0f} requests/s (medians); "
            f"per round, 2 threads get {thread_ratio:.0%} of the single-thread rate "
            f"(median; quartiles {low:.0%} to {high:.0%})."
        )
    out.append("")

    goals, ok = check_goals(stats, floor, per_strategy, thread_ratio)
    out.append("**Goals**")
    out.append("")
    out += table(["goal", "measured", "result"], goals, "lrl")
    return "\n".join(out), ok


def check_goals(
    stats: dict[Key, Stat],
    floor: float | None,
    memory: dict[str, dict[str, float]],
    thread_ratio: float | None,
) -> tuple[list[list[str]], bool]:
    """Rows of (goal, measured, met/missed), and whether all were met."""

    def m(case: str, size: int, strategy: str, fullness: str = "ample") -> float | None:
        found = stats.get((case, size, strategy, fullness))
        return None if found is None else found[0]

    rows: list[list[str]] = []
    ok = True

    def goal(text: str, value: float | None, shown: str, met: bool) -> None:
        nonlocal ok
        result = "n/a" if value is None else "met" if met else "**missed**"
        ok = ok and result == "met"
        rows.append([text, shown, result])

    for n, want in GOAL_VS_LITELLM.items():
        for case, what in (("pick", "acquire vs pick"), ("flat", "acquire + release vs pick")):
            v = ratio(m("litellm", n, "simple-shuffle"), m(case, n, "shuffle"))
            goal(
                f"≥ {want:,.0f}x faster than LiteLLM simple-shuffle at {n:,} ({what})",
                v,
                times(v),
                v is not None and v >= want,
            )
    for s in STRATEGIES:
        v = ratio(m("tree", 1000, s), floor)
        goal(
            f"≤ {GOAL_FLOOR:g}x the floor at 1,000, tree, {s}", v, times(v), (v or 0) <= GOAL_FLOOR
        )
    for s in STRATEGIES:
        # The worst of every shape and fill: the goal holds only if all of them meet it.
        vals = [
            ratio(m(c, 10000, s, f), m(c, 100, s, f)) for c in ("tree", "flat") for f in FULLNESSES
        ]
        v = None if None in vals else max(x for x in vals if x is not None)
        goal(
            f"10,000 ≤ {GOAL_SCALING:g}x 100, {s} (worst of tree, flat; ample, exhausted)",
            v,
            times(v),
            (v or 0) <= GOAL_SCALING,
        )
    worst = max((b["scheduler"] for b in memory.values()), default=None)
    goal(
        f"≤ {GOAL_BYTES / 1024:g} KB per deployment at 10,000 (worst strategy, scheduler)",
        worst,
        "-" if worst is None else f"{worst:,.0f} B",
        (worst or 0) <= GOAL_BYTES,
    )
    goal(
        f"2 threads ≥ {GOAL_THREADS:.0%} of the single-thread rate",
        thread_ratio,
        "-" if thread_ratio is None else f"{thread_ratio:.0%}",
        (thread_ratio or 0) >= GOAL_THREADS,
    )
    for s in TARGET_US_STRATEGIES:
        v = m("tree", 1000, s)
        goal(
            f"≤ {TARGET_US:g} µs at 1,000, tree, ample, {s}", v, duration(v), (v or 0) <= TARGET_US
        )
    for s in STRATEGIES:
        vals = [ratio(m("tree", n, s, "exhausted"), m("tree", n, s)) for n in SIZES]
        v = None if None in vals else max(x for x in vals if x is not None)
        goal(
            f"90% exhausted ≤ {TARGET_EXHAUSTED:g}x ample, tree, {s} (worst size)",
            v,
            times(v),
            (v or 0) <= TARGET_EXHAUSTED,
        )
    return rows, ok


def plot(raw: dict[str, Any], path: Path) -> str:
    """Draw time per request against deployments, log-log, to ``path``; returns a message
    saying where it went or why it was not drawn (matplotlib missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display
        import matplotlib.pyplot as plt
    except ImportError:
        return "plot skipped: matplotlib is not installed (pip install -e '.[bench]')"
    stats, floor, _threads = load(raw)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    palette = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
    colors = dict(zip(STRATEGIES, palette, strict=True))

    def series(case: str, strategy: str) -> tuple[list[int], list[float]]:
        points = [
            (n, stats[(case, n, strategy, "ample")][0])
            for n in SIZES
            if (case, n, strategy, "ample") in stats
        ]
        return [p[0] for p in points], [p[1] for p in points]

    for s in STRATEGIES:
        ax.plot(*series("tree", s), "o-", color=colors[s], label=f"ratetree {s}, tree")
        ax.plot(*series("flat", s), "s--", color=colors[s], alpha=0.6, label=f"ratetree {s}, flat")
    for router, style in zip(ROUTER, ("k^-", "kv:"), strict=True):
        xs, ys = series("litellm", router)
        if xs:
            ax.plot(xs, ys, style, linewidth=2, label=f"LiteLLM {router}")
    if floor is not None:
        ax.axhline(floor, color="grey", linestyle=":", label="floor: bare token-bucket take")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("deployments")
    ax.set_ylabel("µs per request (ratetree: acquire + release; LiteLLM: pick)")
    ax.set_title("Time per request vs. number of deployments (ample capacity, medians)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"plot: {path}"

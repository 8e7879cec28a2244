"""The report's part on the two builds (pure Python and compiled by mypyc) and on the
peers a Python user would otherwise pick (``limits``, aiolimiter), from the results
``run.py`` gathers: the pure run's benchmarks in ``raw["benchmarks"]``, the compiled run's
in ``raw["ratetree_compiled"]``."""

from __future__ import annotations

from typing import Any

from report import (
    CASES,
    FULLNESS_LABEL,
    STRATEGIES,
    TARGET_EXHAUSTED,
    Key,
    Stat,
    duration,
    load,
    ratio,
    table,
    times,
)

SIZE = 1000
# Issue 16's goals for the compiled build at 1,000 deployments, ample: ÷ floor.
GOAL_FLAT = 10.0
GOAL_TREE = {"shuffle": 10.0, "round-robin": 10.0}  # the other strategies: GOAL_TREE_OTHERS
GOAL_TREE_OTHERS = 15.0
GOAL_SCALING = 2.0


def peers(raw: dict[str, Any]) -> dict[str, float]:
    """Median µs per call of each peer, by name."""
    found = {}
    for bench in raw["benchmarks"]:
        info = bench.get("extra_info", {})
        if info.get("case") == "peer":
            found[info["peer"]] = bench["stats"]["median"] * 1e6
    return found


def worst_scaling(stats: dict[Key, Stat], strategy: str) -> float | None:
    """10,000 ÷ 100 deployments, the worst of tree and flat, ample and 90% exhausted."""
    found = [
        ratio(
            stats.get((case, 10000, strategy, f), (0, 0))[0] or None,
            stats.get((case, 100, strategy, f), (0, 0))[0] or None,
        )
        for case in ("tree", "flat")
        for f in FULLNESS_LABEL
    ]
    known = [r for r in found if r is not None]
    return max(known) if known else None


def worst_exhausted(stats: dict[Key, Stat], strategy: str) -> float | None:
    """90% exhausted ÷ ample in the tree, the worst size."""
    found = [
        ratio(
            stats.get(("tree", n, strategy, "exhausted"), (0, 0))[0] or None,
            stats.get(("tree", n, strategy, "ample"), (0, 0))[0] or None,
        )
        for n in (10, 100, 1000, 10000)
    ]
    known = [r for r in found if r is not None]
    return max(known) if known else None


def render_builds(raw: dict[str, Any]) -> tuple[str, bool]:
    """Markdown for the builds and the peers, and whether every goal checked here is met."""
    compiled_raw = {"benchmarks": raw.get("ratetree_compiled", [])}
    pure, pure_floor, _ = load(raw)
    compiled, compiled_floor, _ = load(compiled_raw)
    lines: list[str] = [
        f"The tables above measure the pure-Python build (ratetree.compiled is "
        f"{raw.get('ratetree_build') == 'compiled'}); the compiled build ran the same grid.",
        "",
    ]
    note = raw.get("ratetree_compiled_note", "")
    if note:
        lines += [note, ""]
    lines.append(
        f"**Pure Python and compiled (mypyc), {SIZE:,} deployments, ample: "
        "acquire(tokens=100) + release(80), median µs (÷ that build's floor)** — "
        "each build in its own process with its own floor"
    )
    lines.append("")
    rows = []
    for case in CASES:
        for strategy in STRATEGIES:
            p = pure.get((case, SIZE, strategy, "ample"))
            c = compiled.get((case, SIZE, strategy, "ample"))
            if p is None and c is None:
                continue
            cell_p = f"{duration(p[0])} ({times(ratio(p[0], pure_floor))})" if p else "-"
            cell_c = f"{duration(c[0])} ({times(ratio(c[0], compiled_floor))})" if c else "-"
            faster = times(ratio(p[0], c[0])) if p and c else "-"
            rows.append([case, strategy, cell_p, cell_c, faster])
    lines += table(["case", "strategy", "pure", "compiled", "compiled faster by"], rows, "llrrr")
    lines.append("")
    lines.append(
        f"Floor: {duration(pure_floor)} in the pure run, {duration(compiled_floor)} in the "
        "compiled run (the same pure-Python function; the two runs are minutes apart)."
    )
    lines.append("")

    found = peers(raw)
    if found:
        lines.append("**Peers, median µs per call (÷ floor), same machine, same run**")
        lines.append("")
        prow = [["floor: a bare GCRA take + `time.monotonic()`", duration(pure_floor), "1x"]]
        for name, us in sorted(found.items()):
            prow.append([name, duration(us), times(ratio(us, pure_floor))])
        for build, stats, floor in (
            ("pure", pure, pure_floor),
            ("compiled", compiled, compiled_floor),
        ):
            s = stats.get(("flat", SIZE, "shuffle", "ample"))
            if s:
                prow.append(
                    [
                        f"ratetree {build}, shuffle, flat {SIZE:,}: acquire + release",
                        duration(s[0]),
                        times(ratio(s[0], floor)),
                    ]
                )
        lines += table(["", "µs", "÷ floor"], prow, "lrr")
        lines.append("")

    goals: list[tuple[str, float | None, float]] = []
    for strategy in STRATEGIES:
        flat = compiled.get(("flat", SIZE, strategy, "ample"))
        goals.append(
            (
                f"compiled ≤ {GOAL_FLAT:g}x the floor at 1,000, flat, {strategy}",
                ratio(flat[0], compiled_floor) if flat else None,
                GOAL_FLAT,
            )
        )
    for strategy in STRATEGIES:
        tree = compiled.get(("tree", SIZE, strategy, "ample"))
        bound = GOAL_TREE.get(strategy, GOAL_TREE_OTHERS)
        goals.append(
            (
                f"compiled ≤ {bound:g}x the floor at 1,000, tree, {strategy}",
                ratio(tree[0], compiled_floor) if tree else None,
                bound,
            )
        )
    for build, stats in (("pure", pure), ("compiled", compiled)):
        for strategy in STRATEGIES:
            goals.append(
                (
                    f"{build}: 10,000 ≤ 2x 100, {strategy} (worst of tree, flat; ample, exhausted)",
                    worst_scaling(stats, strategy),
                    GOAL_SCALING,
                )
            )
            goals.append(
                (
                    f"{build}: 90% exhausted ≤ 3x ample, tree, {strategy} (worst size)",
                    worst_exhausted(stats, strategy),
                    TARGET_EXHAUSTED,
                )
            )
    ok = True
    grows = []
    for label, value, bound in goals:
        met = value is not None and value <= bound
        ok = ok and met
        grows.append([label, times(value), "met" if met else "**missed**"])
    lines.append("**Goals of the compiled build (issue 16)**")
    lines.append("")
    lines += table(["goal", "measured", "result"], grows, "lrl")
    return "\n".join(lines), ok

"""A simulation :class:`Result` as a table, JSON, CSV or a PNG plot."""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Sequence

from ratetree.cli.simulate import GroupRow, Result


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> list[str]:
    """Columns padded to width; the first ``left`` columns left-aligned, the rest right."""
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        cells = [
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return [line(header), *map(line, rows)]


def _waits(group: GroupRow) -> dict[str, float] | None:
    if not group.retry_after:
        return None
    waits = group.retry_after
    return {"min": min(waits), "median": statistics.median(waits), "max": max(waits)}


def column_names(result: Result) -> dict[str, str]:
    """Deployment id -> its label, or its id where two deployments share a label."""
    labels = [d.label for d in result.deployments]
    return {d.id: d.label if labels.count(d.label) == 1 else d.id for d in result.deployments}


def table(result: Result, title: str) -> str:
    """The report a person reads: per deployment, per group, then per minute."""
    total = sum(d.admitted for d in result.deployments)
    tokens = sum(d.tokens for d in result.deployments)
    rows = [
        [d.label, d.id, str(d.admitted), f"{d.tokens:,.0f}", f"{d.share:.1%}"]
        for d in result.deployments
    ]
    rows.append(["total", "", str(total), f"{tokens:,.0f}", "100.0%" if total else "-"])
    out = [title, ""]
    out += _table(["deployment", "id", "admitted", "tokens", "share"], rows, left=2)
    out.append("")
    group_rows = []
    for g in result.groups:
        waits = _waits(g)
        shown = "-" if waits is None else " / ".join(f"{w:.3g}" for w in waits.values())
        group_rows.append(
            [
                g.name,
                str(g.requests),
                str(g.admitted),
                str(g.refused),
                shown,
                str(g.refused_in_flight),
            ]
        )
    header = ["group", "requests", "admitted", "refused", "retry_after min / median / max s"]
    out += _table([*header, "no retry_after (in flight)"], group_rows)
    out += ["", "admitted per minute, and refusals:"]
    names = column_names(result)
    minute_rows = [
        [
            f"{m.index * 60}-{m.index * 60 + 60} s",
            *(str(m.admitted.get(d.id, 0)) for d in result.deployments),
            str(sum(m.refused.values())),
        ]
        for m in result.timeline
    ]
    out += _table(["minute", *names.values(), "refused"], minute_rows)
    return "\n".join(out)


def as_json(result: Result, run: dict[str, object]) -> str:
    """Everything in :class:`Result`, plus ``run`` (the settings that produced it)."""
    data = {
        "run": run,
        "duration": result.duration,
        "requests": result.requests,
        "deployments": [
            {
                "id": d.id,
                "label": d.label,
                "admitted": d.admitted,
                "tokens": d.tokens,
                "share": d.share,
            }
            for d in result.deployments
        ],
        "groups": [
            {
                "name": g.name,
                "requests": g.requests,
                "admitted": g.admitted,
                "refused": g.refused,
                "refused_in_flight": g.refused_in_flight,
                "retry_after": _waits(g),
            }
            for g in result.groups
        ],
        "timeline": [
            {
                "minute": m.index,
                "admitted": dict(m.admitted),
                "tokens": dict(m.tokens),
                "refused": dict(m.refused),
            }
            for m in result.timeline
        ],
    }
    return json.dumps(data, indent=2)


def as_csv(result: Result) -> str:
    """The timeline in long form: one row per minute and deployment (``kind`` admitted,
    with tokens) and per minute and group (``kind`` refused)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["minute", "kind", "name", "label", "requests", "tokens"])
    for m in result.timeline:
        for d in result.deployments:
            admitted = m.admitted.get(d.id, 0)
            writer.writerow([m.index, "admitted", d.id, d.label, admitted, m.tokens.get(d.id, 0)])
        for g in result.groups:
            writer.writerow([m.index, "refused", g.name, "", m.refused.get(g.name, 0), 0])
    return buffer.getvalue()


def plot(result: Result, path: str, title: str) -> None:
    """Draw admitted requests per minute per deployment to a PNG at ``path``.

    Raises ImportError without matplotlib (``pip install 'ratetree[plot]'``) and OSError
    when the file cannot be written.
    """
    from matplotlib.figure import Figure  # an optional extra; Figure needs no GUI backend

    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axes = figure.add_subplot()
    # Each minute is a step from its start to its end, so the last one needs an end too.
    minutes = [m.index for m in result.timeline] + [len(result.timeline)]
    for d, name in zip(result.deployments, column_names(result).values(), strict=True):
        counts = [m.admitted.get(d.id, 0) for m in result.timeline]
        axes.step(minutes, [*counts, counts[-1]], where="post", label=name)
    refused = [sum(m.refused.values()) for m in result.timeline]
    axes.step(
        minutes,
        [*refused, refused[-1]],
        where="post",
        label="refused",
        linestyle="--",
        color="grey",
    )
    axes.set_xlabel("minute")
    axes.set_ylabel("requests per minute")
    axes.set_title(title.replace("; ", "\n", 1), fontsize=9)
    axes.legend(fontsize=8)
    figure.savefig(path, format="png")

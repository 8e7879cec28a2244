"""A simulation :class:`Result` as a table, JSON, CSV or a plot (PNG, SVG or PDF)."""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ratetree.cli.simulate import GroupRow, Result
from ratetree.errors import InvalidRequest

if TYPE_CHECKING:  # matplotlib is an optional extra, imported where a plot is drawn
    from matplotlib.figure import Figure


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
                "rpm": d.rpm,
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


CSV_COLUMNS = (
    "kind",
    "minute",
    "name",
    "label",
    "requests",
    "admitted",
    "refused",
    "tokens",
    "share",
    "rpm",
    "retry_after_min",
    "retry_after_median",
    "retry_after_max",
    "refused_in_flight",
)


def as_csv(result: Result, title: str) -> str:
    """Every fact of the table in long form, one row each, told apart by ``kind``:
    ``run`` (the title and the totals), ``deployment`` (totals per deployment),
    ``group`` (per group, with the retry_after summary), ``minute`` (admitted per minute
    and deployment) and ``minute_refused`` (refused per minute and group). Cells a kind
    does not have are empty."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerow(
        {
            "kind": "run",
            "label": title,
            "requests": result.requests,
            "admitted": sum(d.admitted for d in result.deployments),
            "refused": sum(g.refused for g in result.groups),
            "tokens": sum(d.tokens for d in result.deployments),
        }
    )
    for d in result.deployments:
        writer.writerow(
            {
                "kind": "deployment",
                "name": d.id,
                "label": d.label,
                "admitted": d.admitted,
                "tokens": d.tokens,
                "share": d.share,
                "rpm": d.rpm,
            }
        )
    for g in result.groups:
        waits = _waits(g) or {}
        writer.writerow(
            {
                "kind": "group",
                "name": g.name,
                "requests": g.requests,
                "admitted": g.admitted,
                "refused": g.refused,
                "refused_in_flight": g.refused_in_flight,
                **{f"retry_after_{k}": v for k, v in waits.items()},
            }
        )
    for m in result.timeline:
        for d in result.deployments:
            row = {"kind": "minute", "minute": m.index, "name": d.id, "label": d.label}
            writer.writerow(
                {**row, "admitted": m.admitted.get(d.id, 0), "tokens": m.tokens.get(d.id, 0)}
            )
        for g in result.groups:
            row = {"kind": "minute_refused", "minute": m.index, "name": g.name}
            writer.writerow({**row, "refused": m.refused.get(g.name, 0)})
    return buffer.getvalue()


PLOT_FORMATS = ("png", "svg", "pdf")


def plot_format(path: str) -> str:
    """The image format ``path`` names by its suffix. Raises InvalidRequest for another."""
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    if suffix not in PLOT_FORMATS:
        raise InvalidRequest(
            f"--plot {path!r}: name a .png, .svg or .pdf file (the suffix picks the format)"
        )
    return suffix


def check_plot(path: str) -> None:
    """Fail fast, before a long run: matplotlib missing (ImportError), a suffix that is no
    image format (InvalidRequest), a folder that does not exist or a path that is a folder
    (OSError)."""
    plot_format(path)
    import matplotlib  # noqa: F401  # an optional extra; ImportError names it

    folder = os.path.dirname(path) or "."
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
    if not os.access(folder, os.W_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)


# Markers and dashes told apart even where lines coincide (two deployments at the same
# rate draw the same steps).
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def plot(result: Result, path: str, title: str) -> None:
    """Draw :func:`figure` to ``path`` (.png, .svg or .pdf, by suffix).

    Raises ImportError without matplotlib (``pip install 'ratetree[plot]'``), ValueError
    for another suffix and OSError when the file cannot be written.
    """
    fmt = plot_format(path)
    figure(result, title).savefig(path, format=fmt)


def figure(result: Result, title: str) -> Figure:
    """Admitted requests per minute per deployment (a step line, with a hollow marker
    per minute of its own shape), each deployment's rpm ceiling (a dotted line of its
    colour) and refusals per minute (dashed grey). Raises ImportError without matplotlib."""
    from matplotlib.figure import Figure  # an optional extra; Figure needs no GUI backend

    drawing = Figure(figsize=(8, 4.5), layout="constrained")
    axes = drawing.add_subplot()
    # Each minute is a step from its start to its end, so the last one needs an end too.
    minutes = [m.index for m in result.timeline] + [len(result.timeline)]
    centres = [m.index + 0.5 for m in result.timeline]
    names = column_names(result).values()
    for i, (d, name) in enumerate(zip(result.deployments, names, strict=True)):
        counts = [m.admitted.get(d.id, 0) for m in result.timeline]
        label = name if d.rpm is None else f"{name} (rpm {d.rpm:g}, dotted)"
        (line,) = axes.step(
            minutes, [*counts, counts[-1]], where="post", label=label, alpha=0.8, zorder=3
        )
        # One hollow marker per minute, mid-step, of its own shape: a line hidden under
        # another still shows its own.
        axes.plot(
            centres,
            counts,
            linestyle="none",
            marker=_MARKERS[i % len(_MARKERS)],
            markersize=5,
            markerfacecolor="none",
            color=line.get_color(),
            zorder=4,
        )
        if d.rpm is not None:
            axes.axhline(d.rpm, color=line.get_color(), linestyle=":", linewidth=1, zorder=2)
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
    return drawing

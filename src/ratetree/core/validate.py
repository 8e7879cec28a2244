"""The one place that checks numbers coming from callers and configs, so every check
rejects the same things (bools, NaN, infinities, out-of-range values) with the same
kind of message: what the value is for, and the value itself, cut short."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from ratetree.errors import InvalidRequest, RatetreeError

SHOWN = 80  # characters of a value an error message shows
# Whole token counts below this skip the full check (``number``) on the hot path; it is
# far beyond any real request.
FAST_TOKENS = 2**53
_NO_KEY = object()  # marks a list item, which has no key, for _render_container


def clip(text: str, limit: int = SHOWN) -> str:
    """``text`` cut to ``limit`` characters, "..." marking the cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def show(value: object, limit: int = SHOWN) -> str:
    """repr() for messages, cut to ``limit`` characters. Containers are walked only as far
    as the cut, so a huge, shared (YAML aliases) or self-containing value costs no more
    than a small one, and an int too long to print does not raise."""
    out: list[str] = []
    _render(value, out, [limit + 1])
    return clip("".join(out), limit)


def _render(value: object, out: list[str], budget: list[int]) -> None:
    """Append pieces of ``repr(value)`` to ``out`` until ``budget[0]`` characters are spent.
    An int longer than about 3,900 digits (Python refuses to print past 4,300) is named
    by its length."""
    if budget[0] <= 0:
        return
    if isinstance(value, (str, bytes)):
        piece = repr(value[: budget[0]])
        # repr() picks double quotes for text holding ' and no "; a cut that drops the '
        # would pick single ones, so follow the whole value's choice.
        if isinstance(value, str):
            quoted_double = "'" in value and '"' not in value
        else:
            quoted_double = b"'" in value and b'"' not in value
        if len(value) > budget[0] and quoted_double:
            start = piece.index("'")
            piece = f'{piece[:start]}"{piece[start + 1 : -1]}"'
    elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 13_000:
        piece = f"<int of about {int(value.bit_length() * math.log10(2)) + 1} digits>"
    elif isinstance(value, (Mapping, list, tuple, set, frozenset)):
        _render_container(value, out, budget)
        return
    elif value is None or isinstance(value, (bool, int, float)):
        piece = repr(value)
    else:
        try:
            piece = repr(value)
        except Exception:  # a broken __repr__ must not hide the error being reported
            piece = f"<{type(value).__name__}>"
    out.append(piece)
    budget[0] -= len(piece)


def _render_container(
    value: Mapping[object, object]
    | list[object]
    | tuple[object, ...]
    | set[object]
    | frozenset[object],
    out: list[str],
    budget: list[int],
) -> None:
    if isinstance(value, Mapping):
        opening, closing = "{", "}"
    elif isinstance(value, list):
        opening, closing = "[", "]"
    elif isinstance(value, tuple):
        opening, closing = "(", ",)" if len(value) == 1 else ")"
    elif not value:
        opening, closing = f"{type(value).__name__}(", ")"
    else:
        opening, closing = ("{", "}") if isinstance(value, set) else ("frozenset({", "})")
    out.append(opening)
    budget[0] -= len(opening)
    pairs: Iterable[tuple[object, object]] = (
        value.items() if isinstance(value, Mapping) else ((_NO_KEY, item) for item in value)
    )
    for i, (key, item) in enumerate(pairs):
        if budget[0] <= 0:
            return
        if i:
            out.append(", ")
            budget[0] -= 2
        if key is not _NO_KEY:
            _render(key, out, budget)
            out.append(": ")
            budget[0] -= 2
        _render(item, out, budget)
    out.append(closing)
    budget[0] -= len(closing)


def number(
    value: object,
    what: str,
    *,
    positive: bool = False,
    error: type[RatetreeError] = InvalidRequest,
) -> float:
    """``value`` as a float if it is a finite real number >= 0 (> 0 with ``positive``).
    Raises ``error`` (InvalidRequest unless told) naming ``what`` otherwise."""
    amount = as_real(value)
    if math.isfinite(amount) and (amount > 0 if positive else amount >= 0):
        return amount
    bound = "> 0" if positive else ">= 0"
    raise error(f"{what} must be a finite number {bound}, got {show(value)}")


def finite(value: object, what: str, *, error: type[RatetreeError] = InvalidRequest) -> float:
    """``value`` as a float if it is a finite real number of either sign. Raises ``error``
    (InvalidRequest unless told) naming ``what`` otherwise."""
    amount = as_real(value)
    if math.isfinite(amount):
        return amount
    raise error(f"{what} must be a finite number, got {show(value)}")


def as_real(value: object) -> float:
    """``value`` as a float; NaN for anything but an int or a float (bools included), and
    an infinity for an int too large for a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def count(value: object, what: str, *, error: type[RatetreeError] = InvalidRequest) -> int:
    """``value`` if it is an integer >= 0 (not a bool). Raises ``error`` naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise error(f"{what} must be an integer >= 0, got {show(value)}")
    return value

"""The one place that checks numbers coming from callers and configs, so every check
rejects the same things (bools, NaN, infinities, out-of-range values) with the same
kind of message: what the value is for, and the value itself, cut short."""

from __future__ import annotations

import math

from ratetree.errors import InvalidRequest, RatetreeError


def show(value: object) -> str:
    """repr() for messages, cut short: a huge value must not drown (or break) the error."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        return f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def number(
    value: object,
    what: str,
    *,
    positive: bool = False,
    error: type[RatetreeError] = InvalidRequest,
) -> float:
    """``value`` as a float if it is a finite real number >= 0 (> 0 with ``positive``).
    Raises ``error`` (InvalidRequest unless told) naming ``what`` otherwise."""
    if not isinstance(value, bool) and isinstance(value, (int, float)):
        try:
            amount = float(value)
        except OverflowError:
            amount = math.inf
        if math.isfinite(amount) and (amount > 0 if positive else amount >= 0):
            return amount
    bound = "> 0" if positive else ">= 0"
    raise error(f"{what} must be a finite number {bound}, got {show(value)}")


def count(value: object, what: str, *, error: type[RatetreeError] = InvalidRequest) -> int:
    """``value`` if it is an integer >= 0 (not a bool). Raises ``error`` naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise error(f"{what} must be an integer >= 0, got {show(value)}")
    return value

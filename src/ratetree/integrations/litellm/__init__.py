"""Route a real ``litellm.Router`` through a ratetree :class:`~ratetree.Scheduler`.

``RatetreeRouting`` needs LiteLLM (``pip install -e '.[litellm]'``) and is imported on first
use, so the LiteLLM-free parts of this package (``ledger``, ``reading``) load without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ratetree.integrations.litellm.reading import estimate_tokens

if TYPE_CHECKING:
    from ratetree.integrations.litellm.routing import RatetreeRouting

__all__ = ["RatetreeRouting", "estimate_tokens"]


def __getattr__(name: str) -> Any:
    if name == "RatetreeRouting":
        from ratetree.integrations.litellm.routing import RatetreeRouting

        return RatetreeRouting
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

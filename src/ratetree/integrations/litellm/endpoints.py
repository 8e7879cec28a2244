"""The Router's request methods, wrapped on the one Router instance ratetree is attached to,
so that every response they return names the path ratetree chose in its hidden params
(``ratetree_path``) before the caller gets it, and a stream's wrapper tells ratetree when
its caller closes it (LiteLLM reports that to no callback), which ends its request.

Why wrap: LiteLLM (1.109, 1.110) shows ratetree an async response that is no stream before
its caller gets it (``async_post_call_success_deployment_hook``), and nothing else. A sync
response is built after the last event on the caller's thread (``log_post_api_call``) and
first reported from a logging thread, racing the caller; a stream's wrapper (the Router's
own, around LiteLLM's ``CustomStreamWrapper``) reaches no callback at all; and LiteLLM
copies nothing of the request's metadata or ``model_info`` but the deployment id into a
response's hidden params. Only the Router's own methods hold every response on the
caller's path. Plain Python (no LiteLLM import).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

from ratetree.integrations.litellm.reading import CALL_ID, PATH, hidden_param, set_hidden_param

# The methods whose responses ratetree routes (the Router routes no sync text completion);
# the async ones are wrapped for their streams, the hook names the others already.
SYNC = ("completion", "embedding")
ASYNC = ("acompletion", "atext_completion", "aembedding", "aresponses")

PathOf = Callable[[object], "str | None"]
Closed = Callable[[object], None]  # told the call id of an attempt whose stream was closed


def _stamped(response: Any, path_of: PathOf, closed: Closed, awaited: bool) -> Any:
    path = path_of(response)
    if path is not None:
        set_hidden_param(response, PATH, path)
    _watch_close(response, awaited, closed)
    return response


def _watch_close(stream: Any, awaited: bool, closed: Closed) -> None:
    """Tell ``closed`` the call id of ``stream`` (a stream's wrapper, which an async method
    returned if ``awaited``) once its caller closes it, which LiteLLM reports to no
    callback: a stream its caller stops reading ends its request. (LiteLLM's wrappers have
    both halves.)"""
    kind = type(stream)
    if awaited and hasattr(kind, "__anext__") and callable(getattr(stream, "aclose", None)):
        original_aclose = stream.aclose

        async def aclose() -> None:
            try:
                await original_aclose()
            finally:
                closed(hidden_param(stream, CALL_ID))

        watched: Callable[[], object] = aclose
        name = "aclose"
    elif not awaited and hasattr(kind, "__next__") and callable(getattr(stream, "close", None)):
        original_close = stream.close

        def close() -> None:
            try:
                original_close()
            finally:
                closed(hidden_param(stream, CALL_ID))

        watched, name = close, "close"
    else:
        return
    # Without instance attributes, its task's end or lease_timeout settles it.
    with contextlib.suppress(AttributeError):
        setattr(stream, name, watched)


def _sync(method: Callable[..., Any], path_of: PathOf, closed: Closed) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        return _stamped(method(*args, **kwargs), path_of, closed, False)

    return call


def _async(method: Callable[..., Any], path_of: PathOf, closed: Closed) -> Callable[..., Any]:
    @functools.wraps(method)
    async def call(*args: Any, **kwargs: Any) -> Any:
        return _stamped(await method(*args, **kwargs), path_of, closed, True)

    return call


class Endpoints:
    """The wrapped methods of one Router, put back by :meth:`restore`."""

    __slots__ = ("_own", "_router")

    def __init__(self, router: Any, path_of: PathOf, closed: Closed) -> None:
        self._router = router
        # name -> the instance attribute it had before (None: it came from the class)
        self._own: dict[str, object] = {}
        for names, wrap in ((SYNC, _sync), (ASYNC, _async)):
            for name in names:
                method = getattr(router, name, None)
                if callable(method):
                    self._own[name] = vars(router).get(name)
                    setattr(router, name, wrap(method, path_of, closed))

    def restore(self) -> None:
        """Give the Router back the methods it had before."""
        for name, own in self._own.items():
            if own is None:
                delattr(self._router, name)
            else:
                setattr(self._router, name, own)
        self._own.clear()

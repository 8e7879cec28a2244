"""The path ratetree chose for each recent attempt, by the attempt's ``litellm_call_id``, so
that a response LiteLLM builds without showing it to ratetree first (a sync call's, a
stream's wrapper) still tells where it went. Plain data (no LiteLLM import)."""

from __future__ import annotations

import threading
from collections import OrderedDict

from ratetree.integrations.litellm.reading import CALL_ID, PATH, hidden_param


class Paths:
    """The paths of the last ``size`` attempts, the oldest forgotten first."""

    __slots__ = ("_lock", "_paths", "_size")

    def __init__(self, size: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._paths: OrderedDict[str, str] = OrderedDict()
        self._size = size

    def note(self, call_id: object, path: object) -> None:
        """Remember ``path`` for the attempt ``call_id``; a later attempt of the same call id
        (a retry) replaces it, as its response is the one the caller gets."""
        if not isinstance(call_id, str) or not isinstance(path, str):
            return
        with self._lock:
            self._paths[call_id] = path
            self._paths.move_to_end(call_id)
            while len(self._paths) > self._size:
                self._paths.popitem(last=False)

    def of(self, response: object) -> str | None:
        """The path of the attempt ``response`` came from: the one stamped on its hidden
        params, else the one noted for its call id; None when ratetree did not route it."""
        stamped = hidden_param(response, PATH)
        if isinstance(stamped, str):
            return stamped
        call_id = hidden_param(response, CALL_ID)
        if not isinstance(call_id, str):
            return None
        with self._lock:
            return self._paths.get(call_id)

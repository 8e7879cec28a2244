"""Deployments the proxy's Router gains, loses or changes while it runs (``/model/new``,
``/model/update``, ``/model/delete``, models the proxy loads from its database), folded
into the model_list the tree is built from.

Plain data (no LiteLLM import): the Router's deployments in, a model_list out. ratetree
hands the Router a view in which each deployment is listed under every group that reaches
it; a deployment is read under its own group (its ``model_name`` in the model_list). A
new id is an addition, remembered under the group it was added to: its first sighting,
before ratetree listed it under any other group.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from ratetree.integrations.litellm.view import plain_copy

__all__ = ["RouterDeployments"]

# Keys the Router view leaves out (see view.py) and values that mean "not set": the Router
# fills in defaults (use_in_pass_through: False, ...) that change nothing.
_NOT_COMPARED = frozenset({"order"})


def _id(entry: object) -> str | None:
    info = entry.get("model_info") if isinstance(entry, Mapping) else None
    found = info.get("id") if isinstance(info, Mapping) else None
    return None if found is None else str(found)


def _meaning(params: object) -> dict[str, Any]:
    if not isinstance(params, Mapping):
        return {}
    return {
        k: v
        for k, v in params.items()
        if k not in _NOT_COMPARED and v is not None and v is not False
    }


class RouterDeployments:
    """The model_list the tree is built from: the config's (``config_model_list``, each
    deployment pinned to its Router id), kept in step with the Router's deployments."""

    __slots__ = ("_aliases", "_entries")

    def __init__(
        self, config_model_list: list[dict[str, Any]], aliases: Iterable[str] = ()
    ) -> None:
        self._entries = [plain_copy(entry) for entry in config_model_list]
        self._aliases = frozenset(aliases)

    @property
    def model_list(self) -> list[dict[str, Any]]:
        """A fresh copy: references and deployments in the config's order, additions after.
        A reference (an entry without id) to a group no entry is left in is left out, so
        it is not taken for a deployment calling the group's name."""
        entries = self._entries
        while True:
            names = {entry.get("model_name") for entry in entries} | self._aliases
            kept = [e for e in entries if _id(e) is not None or _target(e) in names]
            if len(kept) == len(entries):
                return [plain_copy(entry) for entry in kept]
            entries = kept

    def update(
        self, listed: Iterable[Mapping[str, Any]], shown: Iterable[Mapping[str, Any]] = ()
    ) -> bool:
        """Read the Router's deployments now (``listed``), after it was handed ``shown``
        (ratetree's view, where a deployment is listed once per group reaching it; empty
        before the first): an id listed fewer times than shown was deleted (the Router
        deletes one listing of an id), one with a listing under its own group with other
        ``litellm_params`` was updated (the Router upserts over one listing of the id), a
        new id was added. Whether anything changed."""
        first: dict[str, Mapping[str, Any]] = {}
        own: dict[tuple[str, object], list[Mapping[str, Any]]] = {}
        times = Counter(_id(entry) for entry in shown)
        for entry in listed:
            deployment_id = _id(entry)
            if deployment_id is not None:
                first.setdefault(deployment_id, entry)
                own.setdefault((deployment_id, entry.get("model_name")), []).append(entry)
                times[deployment_id] -= 1
        deleted = {i for i, more in times.items() if i is not None and more > 0}
        changed = False
        kept = []
        for entry in self._entries:
            deployment_id = _id(entry)
            if deployment_id is None:  # a reference: the Router never lists it
                kept.append(entry)
                continue
            if deployment_id not in first or deployment_id in deleted:
                first.pop(deployment_id, None)
                changed = True
                continue
            params = entry["litellm_params"]
            for now in own.get((deployment_id, entry.get("model_name")), ()):
                # The Router upserts over one listing of the id: the one that differs.
                if _meaning(now.get("litellm_params")) != _meaning(params):
                    entry = {**entry, "litellm_params": _updated(params, now["litellm_params"])}
                    changed = True
                    break
            kept.append(entry)
            del first[deployment_id]
        for entry in first.values():  # ids the model_list does not have: additions
            kept.append(_plain(entry))
            changed = True
        self._entries = kept
        return changed


def _target(entry: Mapping[str, Any]) -> object:
    params = entry.get("litellm_params")
    return params.get("model") if isinstance(params, Mapping) else None


def _updated(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """``new`` params, keeping what the Router view never showed (``order``)."""
    kept = {k: old[k] for k in _NOT_COMPARED if k in old and k not in new}
    return {**plain_copy(new), **kept}


def _plain(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a Router deployment a model_list entry has."""
    params = entry.get("litellm_params")
    info = entry.get("model_info")
    return {
        "model_name": entry.get("model_name"),
        "litellm_params": plain_copy(params) if isinstance(params, Mapping) else {},
        "model_info": plain_copy(info) if isinstance(info, Mapping) else {},
    }

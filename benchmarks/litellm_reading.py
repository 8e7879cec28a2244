"""Where LiteLLM's Router reads order, weight, rpm and tpm from: 300 picks per case.

Usage: ``python benchmarks/litellm_reading.py`` (needs litellm; offline). Prints, per
case, how many of 300 ``Router.get_available_deployment`` calls went to each deployment
of a simple-shuffle group. docs/configs.md quotes its output.
"""

from __future__ import annotations

import collections
import os
import random
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

PICKS = 300


def _entry(model: str, params: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    base = {"model": model, "api_key": "fake", "mock_response": "ok"}
    return {"model_name": "g", "litellm_params": {**base, **(params or {})}, **top}


CASES: dict[str, list[dict[str, Any]]] = {
    "order 2, 1 in model_info": [
        _entry("openai/a", model_info={"order": 2}),
        _entry("openai/b", model_info={"order": 1}),
    ],
    "weight 9, 1 in model_info": [
        _entry("openai/a", model_info={"weight": 9}),
        _entry("openai/b", model_info={"weight": 1}),
    ],
    "weight 9, 1 in litellm_params": [
        _entry("openai/a", {"weight": 9}),
        _entry("openai/b", {"weight": 1}),
    ],
    "tpm 9000, 1000 at the top level": [
        _entry("openai/a", tpm=9000),
        _entry("openai/b", tpm=1000),
    ],
    "rpm 3, 3, none at the top level": [
        _entry("openai/a", rpm=3),
        _entry("openai/b", rpm=3),
        _entry("openai/c"),
    ],
    "rpm 3, 3, none in model_info": [
        _entry("openai/a", model_info={"rpm": 3}),
        _entry("openai/b", model_info={"rpm": 3}),
        _entry("openai/c"),
    ],
}


def main() -> None:
    import litellm

    random.seed(0)
    for name, model_list in CASES.items():
        router = litellm.Router(model_list=model_list)
        picks = collections.Counter(
            router.get_available_deployment(model="g")["litellm_params"]["model"]
            for _ in range(PICKS)
        )
        counts = ", ".join(f"{e['litellm_params']['model']} {picks[e['litellm_params']['model']]}"
                           for e in model_list)  # fmt: skip
        print(f"{name}: {counts}")


if __name__ == "__main__":
    main()

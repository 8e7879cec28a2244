"""Reading a proxy config: deployments pinned to the proxy Router's ids, references left
alone, Redis settings in LiteLLM's forms, and errors that say where."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratetree.errors import ConfigError
from ratetree.integrations.litellm.proxy_settings import read_proxy_settings


def fake_id(group: str, params: Mapping[str, Any]) -> str:
    return f"{group}|{params['model']}"


EXAMPLE: list[dict[str, Any]] = [
    {"model_name": "fast/a", "litellm_params": {"model": "openai/a"}},
    {"model_name": "fast/b", "litellm_params": {"model": "openai/b"}, "model_info": {"id": "b1"}},
    {"model_name": "fast", "litellm_params": {"model": "fast/a"}},
    {"model_name": "fast", "litellm_params": {"model": "quick"}},
]


def read(**router_settings: Any) -> Any:
    config = {"model_list": EXAMPLE, "router_settings": router_settings}
    return read_proxy_settings(config, fake_id)


def test_deployments_get_the_routers_id_and_references_none() -> None:
    settings = read(model_group_alias={"quick": "fast/b"})
    infos = [entry.get("model_info") for entry in settings.model_list]
    assert infos == [{"id": "fast/a|openai/a"}, {"id": "b1"}, None, None]
    assert "model_info" not in EXAMPLE[0]  # the config itself is not touched


def test_router_settings_are_passed_on_with_litellms_defaults() -> None:
    settings = read(routing_strategy="least-busy", allowed_fails=1, cooldown_time=9)
    assert (settings.routing_strategy, settings.allowed_fails, settings.cooldown_time) == (
        "least-busy",
        1,
        9,
    )
    default = read()
    assert (default.routing_strategy, default.allowed_fails, default.cooldown_time) == (
        None,
        3,
        5.0,
    )
    assert default.redis_url is None


def test_redis_from_url_or_host_port_password_with_environment_values() -> None:
    home = os.environ["HOME"]
    assert read(redis_url="redis://r:1/2").redis_url == "redis://r:1/2"
    assert read(redis_host="r", redis_port="7000").redis_url == "redis://r:7000/0"
    assert read(redis_host="r").redis_url == "redis://r:6379/0"
    with_password = read(redis_host="r", redis_password="p@ss/word")
    assert with_password.redis_url == "redis://:p%40ss%2Fword@r:6379/0"
    assert read(redis_host="os.environ/HOME").redis_url == f"redis://{home}:6379/0"


def test_environment_values_in_litellm_params_are_resolved_before_the_id() -> None:
    config = {
        "model_list": [
            {
                "model_name": "g",
                "litellm_params": {"model": "openai/a", "api_key": "os.environ/HOME"},
            }
        ]
    }
    settings = read_proxy_settings(config, lambda group, params: str(params["api_key"]))
    assert settings.model_list[0]["model_info"]["id"] == os.environ["HOME"]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "model_list None must be a non-empty list"),
        ({"model_list": []}, "model_list [] must be a non-empty list"),
        ({"model_list": EXAMPLE, "router_settings": [1]}, "router_settings [1] must be a mapping"),
        (
            {"model_list": EXAMPLE, "router_settings": {"redis_host": "r", "redis_port": "x"}},
            "router_settings.redis_port 'x' must be a port",
        ),
        (
            {"model_list": EXAMPLE, "router_settings": {"redis_url": 5}},
            "router_settings.redis_url 5 must be a URL",
        ),
    ],
)
def test_a_bad_shape_is_refused_saying_where(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match="^" + message.replace("[", r"\[").replace("]", r"\]")):
        read_proxy_settings(config, fake_id)


@given(st.sampled_from(["simple-shuffle", "least-busy", None]), st.integers(0, 5))
def test_the_digest_names_the_configuration(strategy: str | None, fails: int) -> None:
    first = read(routing_strategy=strategy, allowed_fails=fails)
    assert first.digest == read(routing_strategy=strategy, allowed_fails=fails).digest
    other = "round-robin" if strategy != "round-robin" else None
    assert first.digest != read(routing_strategy=other, allowed_fails=fails).digest

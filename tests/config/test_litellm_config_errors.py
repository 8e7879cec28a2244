"""load_litellm on broken configurations: every problem is a ConfigError that says where."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ratetree.config.litellm import load_litellm
from ratetree.core.specs import TreeSpec
from ratetree.errors import ConfigError


def entry(name: object, model: object, info: object = None, **params: object) -> dict[str, Any]:
    result: dict[str, object] = {"model_name": name, "litellm_params": {"model": model, **params}}
    if info is not None:
        result["model_info"] = info
    return result


def fails(model_list: object, **kwargs: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        load_litellm(model_list, **kwargs)
    return str(caught.value)


VALID = [
    entry("leaf", "openai/gpt-4o", rpm=10),
    entry("leaf", "azure/gpt-4o", info={"id": "az", "tpm": 1000}),
    entry("other", "anthropic/claude"),
    entry("top", "leaf", order=1),
    entry("top", "other", order=2),
]


def test_the_base_list_that_junk_tests_mutate_is_valid() -> None:
    spec = load_litellm(copy.deepcopy(VALID))
    assert [g.name for g in spec.groups] == ["leaf", "other", "top"]


# --- the shape of model_list and its entries -------------------------------------------


@pytest.mark.parametrize("model_list", [None, {"model_name": "a"}, "a", 3])
def test_model_list_that_is_not_a_list_is_rejected(model_list: object) -> None:
    assert "model_list" in fails(model_list)


@pytest.mark.parametrize("raw", [None, "gpt-4o", ["model_name", "a"], 5])
def test_entry_that_is_not_a_mapping_is_rejected_by_index(raw: object) -> None:
    message = fails([entry("a", "p/a"), raw])
    assert message.startswith("model_list[1]: ")
    assert repr(raw) in message


def test_missing_model_name_is_rejected_by_index() -> None:
    message = fails([{"litellm_params": {"model": "p/a"}}])
    assert message == "model_list[0]: model_name None must be a non-empty string"


@pytest.mark.parametrize("name", ["", 5, ["a"], True])
def test_empty_or_non_string_model_name_is_rejected_naming_the_value(name: object) -> None:
    message = fails([entry("a", "p/a"), entry(name, "p/b")])
    assert message.startswith("model_list[1]: model_name ")
    assert repr(name) in message


@pytest.mark.parametrize("params", [None, "openai/gpt-4o", ["model"]])
def test_missing_or_non_mapping_litellm_params_is_rejected(params: object) -> None:
    message = fails([{"model_name": "fast", "litellm_params": params}])
    assert message.startswith("model_list[0] (model_name 'fast'): litellm_params ")


@pytest.mark.parametrize("model", [None, "", 4, {"a": 1}])
def test_missing_or_empty_litellm_params_model_is_rejected(model: object) -> None:
    message = fails([entry("a", "p/a"), entry("fast", model)])
    assert message.startswith("model_list[1] (model_name 'fast'): litellm_params.model ")
    assert repr(model) in message


def test_model_info_that_is_not_a_mapping_is_rejected() -> None:
    message = fails([entry("fast", "p/a", info="id-1")])
    assert message == "model_list[0] (model_name 'fast'): model_info 'id-1' must be a mapping"


# --- limits, order and weight ---------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("rpm", -1),
        ("rpm", "lots"),
        ("tpm", [100]),
        ("rpm", math.nan),
        ("tpm", math.inf),
        ("max_parallel_requests", 0),
        ("max_parallel_requests", 2.5),
        ("max_parallel_requests", "four"),
    ],
)
def test_bad_limit_is_rejected_naming_entry_key_and_value(key: str, value: object) -> None:
    message = fails([entry("a", "p/a"), entry("fast", "p/b", **{key: value})])
    assert message.startswith(f"model_list[1] (model_name 'fast'): {key} {value!r} ")


def test_bad_limit_in_model_info_is_rejected_like_one_in_litellm_params() -> None:
    message = fails([entry("fast", "p/b", info={"tpm": -5})])
    assert message.startswith("model_list[0] (model_name 'fast'): tpm -5 ")


def test_bad_limit_on_a_reference_is_rejected() -> None:
    message = fails([entry("leaf", "p/a"), entry("top", "leaf", rpm=-3)])
    assert message.startswith("model_list[1] (model_name 'top'): rpm -3 ")


def test_number_too_large_for_a_float_is_a_config_error_naming_the_key() -> None:
    message = fails([entry("fast", "p/b", rpm=10**400)])
    assert message.startswith("model_list[0] (model_name 'fast'): rpm 1000")
    assert message.endswith("must be a finite number >= 0")


def test_integer_too_long_to_print_is_a_config_error() -> None:
    message = fails([entry("fast", "p/b", max_parallel_requests=-(10**5000))])
    assert message.startswith("model_list[0] (model_name 'fast'): max_parallel_requests ")


@pytest.mark.parametrize("order", [1.5, "first", "1.5", True, [1], math.nan])
def test_non_integer_order_is_rejected_naming_the_value(order: object) -> None:
    message = fails([entry("fast", "p/b", order=order)])
    assert message == f"model_list[0] (model_name 'fast'): order {order!r} must be an integer"


@pytest.mark.parametrize("weight", [-1, "heavy", math.inf])
def test_bad_weight_is_rejected_naming_the_value(weight: object) -> None:
    message = fails([entry("fast", "p/b", weight=weight)])
    assert message.startswith(f"model_list[0] (model_name 'fast'): weight {weight!r} ")


# --- routing strategy ------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["lar1", "shuffle", "", 3])
def test_unknown_routing_strategy_is_rejected_listing_the_supported_ones(strategy: object) -> None:
    message = fails([entry("a", "p/a")], routing_strategy=strategy)
    assert repr(strategy) in message
    for name in ["simple-shuffle", "least-busy", "usage-based-routing-v2", "round-robin"]:
        assert name in message


# --- aliases ---------------------------------------------------------------------------


def test_alias_named_like_a_group_is_rejected_as_shadowing() -> None:
    message = fails(VALID, model_group_alias={"leaf": "other"})
    assert "alias 'leaf' shadows group 'leaf'" in message


def test_alias_cycle_is_rejected_showing_the_cycle() -> None:
    message = fails(VALID, model_group_alias={"x": "y", "y": {"model": "z"}, "z": "x"})
    assert "x -> y -> z -> x" in message


def test_alias_to_an_unknown_name_is_rejected() -> None:
    message = fails(VALID, model_group_alias={"x": "y", "y": "nowhere"})
    assert message == "model_group_alias: alias 'x' leads to 'nowhere', which is no group"


@pytest.mark.parametrize("target", [None, "", 5, {"hidden": True}])
def test_alias_without_a_target_name_is_rejected(target: object) -> None:
    message = fails(VALID, model_group_alias={"x": target})
    assert message.startswith("model_group_alias['x']: ")


def test_alias_with_non_boolean_hidden_is_rejected() -> None:
    message = fails(VALID, model_group_alias={"x": {"model": "leaf", "hidden": "yes"}})
    assert message == "model_group_alias['x']: hidden 'yes' must be true or false"


def test_alias_with_an_unknown_key_is_rejected() -> None:
    message = fails(VALID, model_group_alias={"x": {"model": "leaf", "hiden": True}})
    assert "unknown keys 'hiden'" in message


@pytest.mark.parametrize("aliases", [["x", "leaf"], "x", {5: "leaf"}, {"": "leaf"}])
def test_model_group_alias_of_the_wrong_shape_is_rejected(aliases: object) -> None:
    assert "model_group_alias" in fails(VALID, model_group_alias=aliases)


# --- group_limits ----------------------------------------------------------------------


def test_group_limits_for_an_unknown_group_is_rejected() -> None:
    message = fails(VALID, group_limits={"nowhere": {"rpm": 5}})
    assert message == "group_limits['nowhere']: 'nowhere' is not a model_name in model_list"


def test_group_limits_for_an_alias_is_rejected_naming_its_group() -> None:
    message = fails(VALID, model_group_alias={"nick": "leaf"}, group_limits={"nick": {"rpm": 5}})
    assert "it is an alias of 'leaf'" in message


def test_group_limits_with_an_unknown_key_is_rejected() -> None:
    message = fails(VALID, group_limits={"top": {"rpm": 5, "weight": 2}})
    assert message.startswith("group_limits['top']: unknown keys 'weight'")


def test_group_limits_with_a_bad_value_is_rejected_naming_group_and_value() -> None:
    message = fails(VALID, group_limits={"top": {"tpm": "fast"}})
    assert message.startswith("group_limits['top']: tpm 'fast' ")


@pytest.mark.parametrize("limits", [["top"], "top", {"top": 5}])
def test_group_limits_of_the_wrong_shape_is_rejected(limits: object) -> None:
    assert "group_limits" in fails(VALID, group_limits=limits)


# --- deployment ids --------------------------------------------------------------------


def test_one_model_info_id_on_different_definitions_is_rejected_naming_both_entries() -> None:
    message = fails(
        [
            entry("a", "p/m", info={"id": "dup"}, rpm=5),
            entry("b", "p/other"),
            entry("b", "p/m", info={"id": "dup"}, rpm=6),
        ]
    )
    assert message.startswith("model_list[2] (model_name 'b'): deployment id 'dup' ")
    assert "model_list[0] (model_name 'a')" in message


def test_one_model_info_id_twice_in_the_same_group_is_rejected() -> None:
    message = fails([entry("a", "p/m", info={"id": "d"}), entry("a", "p/m", info={"id": "d"})])
    assert message.startswith("model_list[1] (model_name 'a'): deployment 'd' is already")
    assert "model_list[0]" in message


def test_model_info_id_equal_to_a_generated_id_is_rejected() -> None:
    generated = load_litellm([entry("a", "p/m")]).deployments[0].id
    message = fails([entry("a", "p/m"), entry("b", "p/x", info={"id": generated})])
    assert message.startswith(f"model_list[1] (model_name 'b'): deployment id {generated!r} ")


@pytest.mark.parametrize("bad_id", ["", 1.5, True, ["x"]])
def test_model_info_id_that_is_not_a_string_or_integer_is_rejected(bad_id: object) -> None:
    message = fails([entry("a", "p/m", info={"id": bad_id})])
    assert message == (
        f"model_list[0] (model_name 'a'): model_info.id {bad_id!r} must be a non-empty string"
    )


def test_entry_that_contains_itself_is_rejected() -> None:
    params: dict[str, object] = {"model": "p/m"}
    params["extra"] = params
    message = fails([{"model_name": "a", "litellm_params": params}])
    assert message.startswith("model_list[0] (model_name 'a'): the entry cannot be serialised")


# --- references ------------------------------------------------------------------------


def test_two_group_reference_cycle_is_rejected_showing_cycle_entry_and_model_name() -> None:
    message = fails([entry("a", "b"), entry("b", "p/x"), entry("b", "a")])
    assert message.startswith("model_list[2] (model_name 'b'): ")
    assert "a -> b -> a" in message


def test_three_group_reference_cycle_is_rejected() -> None:
    message = fails([entry("a", "b"), entry("b", "c"), entry("c", "a")])
    assert "a -> b -> c -> a" in message
    assert "model_list[2] (model_name 'c')" in message


def test_reference_cycle_through_an_alias_is_rejected() -> None:
    message = fails(
        [entry("a", "to-b"), entry("b", "a")],
        model_group_alias={"to-b": "b"},
    )
    assert "a -> b -> a" in message
    assert "(model_name 'b')" in message


def test_cycle_below_an_acyclic_group_is_found() -> None:
    message = fails([entry("root", "a"), entry("a", "b"), entry("b", "a"), entry("b", "p/x")])
    assert "a -> b -> a" in message


def test_same_group_referenced_twice_from_one_group_is_rejected() -> None:
    message = fails([entry("leaf", "p/x"), entry("top", "leaf"), entry("top", "leaf", order=2)])
    assert message.startswith("model_list[2] (model_name 'top'): group 'leaf' is already")


# --- junk input of any shape -----------------------------------------------------------

WORDS = st.sampled_from(
    [
        "model_name",
        "litellm_params",
        "model_info",
        "model",
        "id",
        "rpm",
        "tpm",
        "order",
        "weight",
        "max_parallel_requests",
        "hidden",
        "leaf",
        "top",
        "other",
        "openai/gpt-4o",
    ]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([0, -1, 10**400, -(10**400)])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=10)
    | WORDS
)
keys = WORDS | st.text(max_size=6) | st.integers() | st.none() | st.floats()
junk = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=20,
)


def loads_or_config_error(model_list: object, **kwargs: Any) -> None:
    """The contract under junk: a TreeSpec or a ConfigError, never another exception."""
    try:
        spec = load_litellm(model_list, **kwargs)
    except ConfigError as err:
        assert str(err)
    else:
        assert isinstance(spec, TreeSpec)


@given(junk)
def test_junk_model_list_raises_only_config_error(model_list: object) -> None:
    loads_or_config_error(model_list)


@given(st.lists(junk, max_size=5))
def test_list_of_junk_entries_raises_only_config_error(model_list: list[object]) -> None:
    loads_or_config_error(model_list)


@given(st.integers(0, len(VALID) - 1), junk)
def test_valid_list_with_one_entry_replaced_by_junk_raises_only_config_error(
    index: int, replacement: object
) -> None:
    model_list: list[object] = list(copy.deepcopy(VALID))
    model_list[index] = replacement
    loads_or_config_error(model_list)


def mutate(value: object, data: st.DataObject) -> object:
    """``value`` with one spot somewhere inside it replaced by junk, or junk added to it."""
    if not isinstance(value, (dict, list)):
        return data.draw(junk)
    children: list[tuple[Any, object]] = (
        list(value.items()) if isinstance(value, dict) else list(enumerate(value))
    )
    choices = ["replace", "insert", "descend"] if children else ["replace", "insert"]
    action = data.draw(st.sampled_from(choices))
    if action == "replace":
        return data.draw(junk)
    if action == "insert":
        if isinstance(value, dict):
            return {**value, data.draw(WORDS | keys): data.draw(junk)}
        return [*value, data.draw(junk)]
    key, child = data.draw(st.sampled_from(children))
    value[key] = mutate(child, data)
    return value


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_valid_list_with_junk_somewhere_inside_raises_only_config_error(
    data: st.DataObject,
) -> None:
    model_list: list[object] = list(copy.deepcopy(VALID))
    index = data.draw(st.integers(0, len(model_list) - 1))
    model_list[index] = mutate(model_list[index], data)
    loads_or_config_error(model_list)


@given(
    st.integers(0, len(VALID) - 1),
    st.sampled_from(["litellm_params", "model_info"]),
    st.sampled_from(["model", "id", "rpm", "tpm", "order", "weight", "max_parallel_requests"]),
    scalars | junk,
)
def test_junk_setting_on_a_valid_entry_raises_only_config_error(
    index: int, where: str, key: str, value: object
) -> None:
    model_list = copy.deepcopy(VALID)
    model_list[index].setdefault(where, {})[key] = value
    loads_or_config_error(model_list)


aliases = st.dictionaries(WORDS | st.text(max_size=6), junk, max_size=4) | junk


@given(aliases)
def test_junk_model_group_alias_raises_only_config_error(model_group_alias: object) -> None:
    loads_or_config_error(copy.deepcopy(VALID), model_group_alias=model_group_alias)


@given(st.dictionaries(WORDS | keys, st.dictionaries(keys, junk, max_size=3) | junk) | junk)
def test_junk_group_limits_raises_only_config_error(group_limits: object) -> None:
    loads_or_config_error(copy.deepcopy(VALID), group_limits=group_limits)


@given(junk)
def test_junk_routing_strategy_raises_only_config_error(routing_strategy: object) -> None:
    loads_or_config_error(copy.deepcopy(VALID), routing_strategy=routing_strategy)


@given(junk, junk, junk)
def test_junk_in_every_argument_at_once_raises_only_config_error(
    model_list: object, model_group_alias: object, group_limits: object
) -> None:
    loads_or_config_error(
        model_list, model_group_alias=model_group_alias, group_limits=group_limits
    )


def test_error_message_about_a_huge_junk_entry_stays_short() -> None:
    message = fails(["y" * 10_000])
    assert message.startswith("model_list[0]: an entry must be a mapping, got 'yyy")
    assert len(message) < 200

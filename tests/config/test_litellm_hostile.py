"""load_litellm on what yaml.safe_load makes of hostile files: shared (aliased) values are
sized before anything expands them, and every refusal is a short ConfigError."""

from __future__ import annotations

import pytest

from limited import run_python
from ratetree import ConfigError, NoCapacity, Scheduler
from ratetree.config.expansion import MAX_EXPANSION
from ratetree.config.litellm import load_litellm


def shared(levels: int) -> object:
    """What YAML aliases nine deep make: one list referenced nine times per level."""
    value: object = ["lol"] * 9
    for _ in range(levels):
        value = [value] * 9
    return value


@pytest.mark.parametrize(
    "model_list",
    [
        lambda bomb: bomb,
        lambda bomb: [bomb],
        lambda bomb: [{"model_name": "m", "litellm_params": {"model": "p/x", "extra": bomb}}],
        lambda bomb: [
            {"model_name": "m", "litellm_params": {"model": "p/x"}, "model_info": {"x": bomb}}
        ],
        lambda bomb: [{"model_name": bomb, "litellm_params": {"model": "p/x"}}],
        lambda bomb: [{"model_name": "m", "litellm_params": {"model": "p/x", "rpm": bomb}}],
    ],
)
def test_shared_values_that_would_expand_past_the_limit_are_refused(model_list: object) -> None:
    with pytest.raises(ConfigError) as refused:
        load_litellm(model_list(shared(8)))  # type: ignore[operator]
    assert len(str(refused.value)) < 300


def test_an_alias_bomb_from_safe_load_is_refused_within_the_limits() -> None:
    code = (
        "import yaml\n"
        "from ratetree import ConfigError\n"
        "from ratetree.config.litellm import load_litellm\n"
        'levels = \'\'.join(f\'{n}: &{n} [{", ".join([f"*{p}"] * 9 if p else ["lol"] * 9)}]\\n\'\n'
        "                 for p, n in zip(['', *'abcdefgh'], 'abcdefghi'))\n"
        "doc = yaml.safe_load(levels + 'model_list:\\n  - model_name: m\\n'\n"
        "                     '    litellm_params: {model: p/x, extra: *i}\\n')\n"
        "try:\n"
        "    load_litellm(doc['model_list'], model_group_alias={'x': doc['i']})\n"
        "except ConfigError as err:\n"
        "    print(err)\n"
    )
    done = run_python(code, cpu_seconds=10)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "model_group_alias" in done.stdout


def test_shared_values_within_the_limit_load_with_the_same_ids_as_copies() -> None:
    common = {"api_base": "https://x", "extra": [["a"] * 10] * 10}
    entries = [
        {"model_name": f"m{i}", "litellm_params": {"model": "p/x", "rpm": 5, **common}}
        for i in range(3)
    ]
    copies = [
        {
            "model_name": f"m{i}",
            "litellm_params": {
                "model": "p/x",
                "rpm": 5,
                "api_base": "https://x",
                "extra": [["a"] * 10 for _ in range(10)],
            },
        }
        for i in range(3)
    ]
    ids = [d.id for d in load_litellm(entries).deployments]
    assert ids == [d.id for d in load_litellm(copies).deployments]
    assert MAX_EXPANSION == 1_000_000


def test_an_entry_holding_itself_or_nested_too_deeply_is_refused() -> None:
    loop: dict[str, object] = {"model": "p/x"}
    loop["self"] = loop
    with pytest.raises(ConfigError, match="contains itself"):
        load_litellm([{"model_name": "m", "litellm_params": loop}])
    deep: object = "x"
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(ConfigError, match="levels deep"):
        load_litellm([{"model_name": "m", "litellm_params": {"model": "p/x", "x": deep}}])


def test_rpm_zero_loads_as_a_deployment_that_admits_nothing() -> None:
    scheduler = Scheduler.from_litellm(
        [
            {"model_name": "g", "litellm_params": {"model": "p/x", "rpm": 0}},
            {"model_name": "g", "litellm_params": {"model": "p/y", "tpm": 0}},
        ]
    )
    with pytest.raises(NoCapacity):
        scheduler.acquire("g", tokens=1)
    for _ in range(5):
        lease = scheduler.acquire("g")
        assert lease.deployment["litellm_params"]["model"] == "p/y"
        lease.release()

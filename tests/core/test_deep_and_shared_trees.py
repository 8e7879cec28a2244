"""Trees of hostile shape: long alias chains, deep reference chains and sub-groups shared
along exponentially many paths. Each loads (or is refused) and serves without recursion
errors, and the shared shapes cost what their nodes cost, not what their paths cost."""

from __future__ import annotations

import random

import pytest

from diamonds import REFUSED, TOP, build_diamonds
from limited import run_python
from ratetree import ConfigError, Deployment, Group, Limits, Member, NoCapacity, Scheduler, TreeSpec
from ratetree.config.litellm import load_litellm
from ratetree.core.graph import MAX_DEPTH, resolve_aliases
from ratetree.testing import FakeClock


def chain(levels: int) -> TreeSpec:
    """g0 -> g1 -> ... -> g{levels-1} -> deployment d: ``levels`` nested groups."""
    groups = [Group(f"g{i}", [Member(group=f"g{i + 1}")]) for i in range(levels - 1)]
    groups.append(Group(f"g{levels - 1}", [Member(deployment="d")]))
    return TreeSpec(groups, [Deployment("d", Limits(rpm=2, tpm=1000))])


def test_an_alias_chain_resolves_every_link_to_its_group() -> None:
    aliases = {f"a{i}": f"a{i + 1}" for i in range(5000)}
    aliases["a5000"] = "g"
    resolved = resolve_aliases(aliases, {"g"})
    assert set(resolved.values()) == {"g"} and len(resolved) == 5001


def test_long_alias_chains_resolve_in_linear_time() -> None:
    code = (
        "from ratetree.core.graph import resolve_aliases\n"
        "for n in (3000, 20000):\n"
        "    aliases = {f'a{i}': f'a{i + 1}' for i in range(n)}\n"
        "    aliases[f'a{n}'] = 'g'\n"
        "    assert len(resolve_aliases(aliases, {'g'})) == n + 1\n"
    )
    done = run_python(code, cpu_seconds=5)
    assert done.returncode == 0, done.stderr[-2000:]


def test_an_alias_cycle_is_still_named() -> None:
    with pytest.raises(ConfigError, match="a -> b -> a"):
        resolve_aliases({"x": "a", "a": "b", "b": "a"}, {"g"})


def serve(scheduler: Scheduler, group: str) -> None:
    """Everything that walks the tree: select, commit, refresh, earliest, explain,
    snapshot, reconfigure."""
    scheduler.acquire(group, tokens=10).release()
    held = scheduler.acquire(group, tokens=10)
    with pytest.raises(NoCapacity):
        scheduler.acquire(group, tokens=10)  # rpm=2: the bucket is empty now
    assert scheduler.explain(group, tokens=10).admits is False
    held.release()
    assert len(scheduler.snapshot().groups) >= 1
    scheduler.reconfigure(scheduler.spec)


def test_a_chain_at_the_depth_limit_loads_and_serves() -> None:
    scheduler = Scheduler(chain(MAX_DEPTH), clock=FakeClock(), rng=random.Random(0))
    serve(scheduler, "g0")
    assert len(str(scheduler.explain("g0")).splitlines()) == MAX_DEPTH + 1


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 10_000])
def test_a_chain_past_the_depth_limit_is_refused_at_load(levels: int) -> None:
    with pytest.raises(ConfigError, match=f"the limit is {MAX_DEPTH} levels"):
        Scheduler(chain(levels))


def test_a_deep_litellm_chain_is_refused_at_load_not_with_recursion_error() -> None:
    model_list: list[dict[str, object]] = [
        {"model_name": f"g{i}", "litellm_params": {"model": f"g{i + 1}"}} for i in range(10_000)
    ]
    model_list.append({"model_name": "g10000", "litellm_params": {"model": "p/x"}})
    with pytest.raises(ConfigError, match="the limit is"):
        Scheduler(load_litellm(model_list))


@pytest.mark.parametrize("depth", [1, 5, 12])
def test_diamonds_admit_refuse_and_explain_as_a_plain_chain_would(depth: int) -> None:
    ample = build_diamonds(depth, exhausted=False)
    assert ample.acquire(TOP, tokens=REFUSED).deployment_id == "d"
    exhausted = build_diamonds(depth, exhausted=True)
    with pytest.raises(NoCapacity) as refused:
        exhausted.acquire(TOP, tokens=REFUSED)
    assert refused.value.retry_after is not None and refused.value.retry_after > 0
    explanation = exhausted.explain(TOP, tokens=REFUSED)
    assert not explanation.admits and exhausted.explain(TOP).candidates == ("d",)
    # The top; per diamond two sides, the shared bottom and one line referring back to
    # it; the deployment.
    lines = str(explanation).splitlines()
    assert len(lines) == 4 * depth + 2
    assert sum("[members as shown above]" in line for line in lines) == depth


def test_refusals_in_deep_diamonds_cost_nodes_not_paths() -> None:
    # 2**20 paths: searching each once took 15-23 s per refusal.
    code = (
        "import sys\n"
        "from diamonds import REFUSED, TOP, build_diamonds\n"
        "from ratetree import NoCapacity\n"
        "s = build_diamonds(20, exhausted=True)\n"
        "for _ in range(100):\n"
        "    try:\n"
        "        s.acquire(TOP, tokens=REFUSED)\n"
        "    except NoCapacity:\n"
        "        pass\n"
        "    else:\n"
        "        sys.exit('admitted')\n"
        "str(s.explain(TOP, tokens=REFUSED))\n"
    )
    import diamonds

    done = run_python(
        f"import sys; sys.path.insert(0, {str(diamonds.__file__.rsplit('/', 1)[0])!r})\n" + code,
        cpu_seconds=5,
    )
    assert done.returncode == 0, done.stderr[-2000:]

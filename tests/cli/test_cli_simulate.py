"""``ratetree simulate``: virtual-time traffic through a config, checked against what the
limits allow rather than against remembered numbers."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest

from clirun import entry, run, write
from ratetree.cli.config_file import read_config

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def simulate_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    result = run(capsys, "simulate", *argv, "--format", "json")
    assert (result.status, result.err) == (0, "")
    data: dict[str, Any] = json.loads(result.out)
    return data


def rpm_of_example() -> dict[str, float]:
    spec = read_config(None).spec()
    return {d.id: d.limits.rpm[0].amount for d in spec.deployments}


@pytest.mark.parametrize("arrivals", ["poisson", "uniform"])
@pytest.mark.parametrize("rps", ["0.5", "3"])
def test_no_deployment_admits_more_than_its_rpm_allows_in_any_minute(
    arrivals: str, rps: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = simulate_json(capsys, "--rps", rps, "--arrivals", arrivals, "--duration", "600")
    rpm = rpm_of_example()
    admitted_so_far = dict.fromkeys(rpm, 0)
    for minute in data["timeline"]:
        for deployment, limit in rpm.items():
            count = minute["admitted"].get(deployment, 0)
            # a bucket of `limit` requests, full at the start, refilling `limit` per minute
            assert count <= 2 * limit
            admitted_so_far[deployment] += count
            assert admitted_so_far[deployment] <= limit * (minute["minute"] + 2)


def test_every_request_is_admitted_or_refused_and_shares_sum_to_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = simulate_json(capsys, "--rps", "2", "--duration", "300")
    admitted = sum(d["admitted"] for d in data["deployments"])
    [group] = data["groups"]
    assert group["name"] == "fast"  # the example's only group no other group includes
    assert group["admitted"] == admitted
    assert group["admitted"] + group["refused"] == group["requests"] == data["requests"]
    assert math.isclose(sum(d["share"] for d in data["deployments"]), 1.0)
    assert all(d["tokens"] == 1000 * d["admitted"] for d in data["deployments"])
    per_minute = sum(sum(m["admitted"].values()) for m in data["timeline"])
    assert per_minute == admitted
    assert len(data["timeline"]) == 5


def test_refusals_carry_retry_afters_within_a_refill_interval(
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = simulate_json(capsys, "--rps", "5", "--duration", "120")
    [group] = data["groups"]
    assert group["refused"] > 0
    waits = group["retry_after"]
    # the fastest refill in the example is groq's: one request every 60/30 = 2 s
    assert 0 <= waits["min"] <= waits["median"] <= waits["max"] <= 2.0 + 1e-9


def test_the_same_seed_gives_the_same_output_and_the_seed_matters(
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = run(capsys, "simulate", "--seed", "7").out
    assert run(capsys, "simulate", "--seed", "7").out == first
    assert run(capsys, "simulate", "--seed", "8").out != first


def test_latency_makes_leases_overlap_so_concurrency_limits_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path / "c.yaml", [entry("g", "p/x", max_parallel_requests=2)])
    argv = ("--arrivals", "uniform", "--rps", "1", "--duration", "100", "--latency", "10")
    data = simulate_json(capsys, config, *argv)
    [group] = data["groups"]
    # one arrival a second, each holding its slot 10 s: 2 slots serve 2 requests per 10 s
    assert group["admitted"] == 2 * 100 // 10
    assert group["refused_in_flight"] == group["refused"] == 100 - group["admitted"]
    assert group["retry_after"] is None
    without = simulate_json(capsys, config, *argv[:-2])
    assert without["groups"][0]["admitted"] == 100


def test_group_picks_where_traffic_goes(capsys: pytest.CaptureFixture[str]) -> None:
    data = simulate_json(capsys, "--group", "fast/glm-4.7", "--group", "fast", "--rps", "0.2")
    assert {g["name"] for g in data["groups"]} == {"fast/glm-4.7", "fast"}


def test_an_empty_model_list_is_valid_but_has_nothing_to_simulate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path / "c.yaml", {"model_list": []})
    checked = run(capsys, "check", config)
    assert (checked.status, checked.err) == (0, f"warning: {config}: the model_list is empty\n")
    result = run(capsys, "simulate", config)
    assert result.status == 2
    assert (
        result.err == "ratetree simulate: no groups to send requests to: the model_list is empty\n"
    )
    trace = tmp_path / "t.csv"
    trace.write_text("time,group\n")
    result = run(capsys, "simulate", "--trace", str(trace))
    assert result.status == 2
    assert result.err == f"ratetree simulate: no requests to simulate in trace {trace}\n"


def test_an_unknown_group_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "simulate", "--group", "slow")
    assert result.status == 2
    assert result.err.startswith("ratetree simulate: unknown group 'slow' in ")


def test_more_tokens_than_any_path_holds_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path / "c.yaml", [entry("g", "p/x", tpm=100)])
    result = run(capsys, "simulate", config, "--tokens", "500")
    assert result.status == 2
    assert "exceeds every path of group 'g'" in result.err
    assert len(result.err.splitlines()) == 1


def test_a_trace_replays_its_rows_with_their_own_token_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text(
        "time,group,tokens\n0.5,fast/glm-4.7,100\n0.1,fast,\n# a comment\n\n90,fast/glm-4.7\n"
    )
    data = simulate_json(capsys, "--trace", str(trace), "--tokens", "7")
    by_name = {g["name"]: g for g in data["groups"]}
    assert by_name["fast/glm-4.7"]["requests"] == 2
    assert by_name["fast"]["requests"] == 1
    assert data["duration"] == 90
    glm = next(d for d in data["deployments"] if d["label"] == "cerebras/zai-glm-4.7")
    assert glm["tokens"] in (107, 114)  # its two rows; plus 7 if 'fast' went there too


def test_group_keeps_only_those_rows_of_a_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("0,fast\n0,fast/glm-4.7\n0,fast\n")
    data = simulate_json(capsys, "--trace", str(trace), "--group", "fast")
    assert [(g["name"], g["requests"]) for g in data["groups"]] == [("fast", 2)]
    assert data["duration"] == 0
    assert len(data["timeline"]) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0,fast\nsoon,fast\n", "trace.csv:2: time 'soon' is not a number"),
        ("0,fast,-3\n", "trace.csv:1: tokens '-3' must be a finite number >= 0"),
        ("0\n", "trace.csv:1: expected time,group[,tokens], got '0'"),
    ],
)
def test_a_bad_trace_row_is_one_line_naming_its_line(
    text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text(text)
    result = run(capsys, "simulate", "--trace", str(trace))
    assert result.status == 2
    assert result.err == f"ratetree simulate: {tmp_path}/{message}\n"


def test_csv_holds_the_same_facts_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    data = simulate_json(capsys, "--rps", "2")
    result = run(capsys, "simulate", "--rps", "2", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.out)))
    kinds: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        kinds.setdefault(row["kind"], []).append(row)
    (run_row,) = kinds["run"]
    assert run_row["label"].startswith("ratetree simulate <packaged example>: fast; poisson")
    assert int(run_row["requests"]) == data["requests"]
    totals = [
        {"id": r["name"], "label": r["label"], "admitted": int(r["admitted"]),
         "tokens": float(r["tokens"]), "share": float(r["share"]), "rpm": float(r["rpm"])}
        for r in kinds["deployment"]
    ]  # fmt: skip
    assert totals == data["deployments"]
    (group,) = kinds["group"]
    (expected,) = data["groups"]
    assert [int(group[k]) for k in ("requests", "admitted", "refused", "refused_in_flight")] == [
        expected[k] for k in ("requests", "admitted", "refused", "refused_in_flight")
    ]
    waits = {k: float(group[f"retry_after_{k}"]) for k in ("min", "median", "max")}
    assert waits == expected["retry_after"]
    admitted: dict[str, int] = {}
    for row in kinds["minute"]:
        admitted[row["name"]] = admitted.get(row["name"], 0) + int(row["admitted"])
    assert admitted == {d["id"]: d["admitted"] for d in data["deployments"]}
    assert sum(int(r["refused"]) for r in kinds["minute_refused"]) == expected["refused"]
    assert {int(r["minute"]) for r in kinds["minute"]} == {m["minute"] for m in data["timeline"]}


def test_json_run_settings_say_what_was_run(capsys: pytest.CaptureFixture[str]) -> None:
    data = simulate_json(capsys, "--rps", "2")
    assert data["run"]["duration"] == data["duration"] == 300
    assert data["run"]["groups"] == ["fast"]


def test_the_table_lists_every_deployment_and_minute(capsys: pytest.CaptureFixture[str]) -> None:
    data = simulate_json(capsys)
    out = run(capsys, "simulate").out
    for d in data["deployments"]:
        line = next(x for x in out.splitlines() if x.startswith(f"{d['label']}  "))
        assert line.split()[1:3] == [d["id"], str(d["admitted"])]
    for m in data["timeline"]:
        assert f"\n{m['minute'] * 60}-{m['minute'] * 60 + 60} s " in out


def test_plot_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib", reason="the plot extra is not installed")
    target = tmp_path / "admitted.png"
    result = run(capsys, "simulate", "--duration", "120", "--plot", str(target))
    assert result.status == 0
    assert target.read_bytes().startswith(PNG_SIGNATURE)

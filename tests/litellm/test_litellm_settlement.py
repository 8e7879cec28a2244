"""How the LiteLLM integration reads LiteLLM's data and settles leases, without LiteLLM:
the ledger hands each open lease out exactly once, whichever event reports it first."""

from __future__ import annotations

import httpx
from hypothesis import given
from hypothesis import strategies as st

from ratetree import Lease, Scheduler
from ratetree.integrations.litellm.ledger import CLOSE_GRACE, Ledger, Ticket
from ratetree.integrations.litellm.reading import (
    TICKET,
    estimate_tokens,
    raw_answer,
    retry_after_of,
    ticket_of,
    total_tokens,
)
from ratetree.testing import FakeClock

MODEL_LIST = [
    {"model_name": "g", "litellm_params": {"model": "p/a"}, "model_info": {"id": "a"}},
    {"model_name": "g", "litellm_params": {"model": "p/b"}, "model_info": {"id": "b"}},
]


def scheduler() -> Scheduler:
    return Scheduler.from_litellm(MODEL_LIST, clock=FakeClock())


class ProviderError(Exception):
    def __init__(self, headers: dict[str, str] | None = None, response: object = None) -> None:
        super().__init__("provider error")
        self.headers = headers
        self.response = response


def test_a_lease_bound_to_its_attempt_is_claimed_by_that_attempts_call_id_only() -> None:
    ledger = Ledger()
    lease = scheduler().acquire("g")
    key = ledger.add(Ticket(lease, "trace", 0.0))[0]
    ledger.bind(key, "call-1", lease.deployment_id)
    assert ledger.claim(key, "call-2", lease.deployment_id) is None  # a retry's event
    claimed = ledger.claim(key, "call-1", lease.deployment_id)
    assert claimed is not None and claimed.lease is lease
    assert ledger.claim(key, "call-1", lease.deployment_id) is None
    assert len(ledger) == 0


def test_an_event_naming_another_deployment_does_not_claim_the_lease() -> None:
    ledger = Ledger()
    lease = scheduler().acquire("g")
    other = "b" if lease.deployment_id == "a" else "a"
    key = ledger.add(Ticket(lease, "trace", 0.0))[0]
    assert ledger.claim(key, None, other) is None
    claimed = ledger.claim(key, None, None)
    assert claimed is not None and claimed.lease is lease


def test_an_orphan_is_taken_only_by_a_pick_for_the_same_request() -> None:
    ledger = Ledger()
    lease = scheduler().acquire("g")
    key = ledger.add(Ticket(lease, "trace-1", 0.0))[0]
    assert ledger.orphan(key, "trace-2") is None
    assert ledger.orphan(key, "trace-1") is lease
    assert ledger.claim(key, None, None) is None


def test_expiry_takes_the_leases_opened_at_or_before_the_cutoff() -> None:
    ledger = Ledger()
    s = scheduler()
    leases = [s.acquire("g") for _ in range(3)]
    for opened, lease in enumerate(leases):
        ledger.add(Ticket(lease, None, float(opened)))
    assert ledger.expired(1.0) == leases[:2]
    assert ledger.expired(1.0) == []
    assert len(ledger) == 1


events = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "bind",
                "claim",
                "orphan",
                "expire",
                "left_over",
                "owner_done",
                "returned",
                "closed",
                "advance",
            ]
        ),
        st.integers(0, 3),  # which ticket
        st.sampled_from([None, "call-0", "call-1", "call-2", "call-3"]),
    ),
    max_size=40,
)


@given(events)
def test_every_lease_is_handed_out_at_most_once_and_the_ledger_counts_the_rest(
    script: list[tuple[str, int, str | None]],
) -> None:
    clock = FakeClock()
    ledger = Ledger(clock=clock)
    s = scheduler()
    leases = [s.acquire("g") for _ in range(4)]
    # Two owners, each with a stream and a plain request.
    keys = [
        ledger.add(Ticket(lease, f"trace-{i}", float(i), owner=i % 2, stream=i < 2))[0]
        for i, lease in enumerate(leases)
    ]
    handed: list[Lease | None] = []
    for action, index, call_id in script:
        key, lease = keys[index], leases[index]
        if action == "bind":
            ledger.bind(key, call_id, lease.deployment_id)
        elif action == "claim":
            ticket = ledger.claim(key, call_id, lease.deployment_id)
            handed.append(None if ticket is None else ticket.lease)
        elif action == "orphan":
            handed.append(ledger.orphan(key, f"trace-{index}"))
        elif action == "left_over":
            left = ledger.left_over(index % 2, f"trace-{index}")
            assert all(leases.index(x) % 2 == index % 2 and leases.index(x) >= 2 for x in left)
            handed.extend(left)
        elif action == "owner_done":
            handed.extend(ledger.owner_done(index % 2))
        elif action == "returned":
            ticket = ledger.returned(key, lease.deployment_id, index % 2)
            handed.append(None if ticket is None else ticket.lease)
        elif action == "closed":
            ledger.closed(call_id)
        elif action == "advance":  # the grace of closed streams runs out: released here
            clock.advance(CLOSE_GRACE * index / 2)
        else:
            handed.extend(ledger.expired(float(index)))
    taken = [lease for lease in handed if lease is not None]
    # The ledger releases what it releases itself (closed streams after their grace);
    # the rest it hands out, each once, or still holds.
    released = [lease for lease in leases if lease.released and lease not in taken]
    assert len(taken) == len({id(lease) for lease in taken})
    assert not any(lease.released for lease in taken)
    assert len(taken) + len(released) + len(ledger) == len(leases)


def test_a_closed_stream_is_released_after_the_grace_unless_its_report_comes_first() -> None:
    clock = FakeClock()
    ledger = Ledger(clock=clock)
    s = scheduler()
    first, second = s.acquire("g"), s.acquire("g")
    for n, lease in enumerate((first, second)):
        key = ledger.add(Ticket(lease, f"trace-{n}", 0.0, stream=True))[0]
        ledger.bind(key, f"call-{n}", lease.deployment_id)
        ledger.closed(f"call-{n}")
    reported = ledger.claim(None, "call-1", second.deployment_id)  # its usage arrives
    assert reported is not None and reported.lease is second
    clock.advance(CLOSE_GRACE - 1e-3)
    assert not first.released and len(ledger) == 1
    clock.advance(1e-3)
    assert first.released and not second.released and len(ledger) == 0


def test_a_task_ending_keeps_its_started_streams_for_the_grace_and_releases_the_rest() -> None:
    clock = FakeClock()
    ledger = Ledger(clock=clock)
    s = scheduler()
    started, unstarted, plain = (s.acquire("g") for _ in range(3))
    for n, (lease, stream) in enumerate(((started, True), (unstarted, True), (plain, False))):
        key = ledger.add(Ticket(lease, f"trace-{n}", 0.0, owner="task", stream=stream))[0]
        if lease is not unstarted:
            ledger.bind(key, f"call-{n}", lease.deployment_id)
    assert sorted(map(id, ledger.owner_done("task"))) == sorted(map(id, (unstarted, plain)))
    assert len(ledger) == 1
    clock.advance(CLOSE_GRACE)
    assert started.released and len(ledger) == 0


def test_the_estimate_is_the_completion_cap_plus_a_quarter_of_the_prompt_text() -> None:
    request = {
        "max_tokens": 100,
        "messages": [
            {"role": "system", "content": "x" * 8},
            {"role": "user", "content": [{"type": "text", "text": "y" * 5}]},
        ],
    }
    assert estimate_tokens(request) == 100 + 4  # 13 characters -> ceil(13 / 4)
    assert estimate_tokens({**request, "max_completion_tokens": 7}) == 7 + 4
    assert estimate_tokens({"input": ["abcd", "efgh"]}) == 2
    assert estimate_tokens({}) == 0


def test_retry_after_is_read_in_seconds_from_the_headers_or_the_response() -> None:
    assert retry_after_of(ProviderError({"Retry-After": "7"})) == 7.0
    assert retry_after_of(ProviderError({"retry-after-ms": "1500"})) == 1.5
    response = httpx.Response(429, headers={"retry-after": "3"})
    assert retry_after_of(ProviderError(response=response)) == 3.0
    assert retry_after_of(ProviderError({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"})) is None
    assert retry_after_of(ProviderError({"retry-after": "-1"})) is None
    assert retry_after_of(ProviderError()) is None


def test_usage_and_tickets_are_found_where_litellm_puts_them() -> None:
    assert total_tokens({"usage": {"total_tokens": 30}}) == 30
    assert total_tokens(object()) is None
    assert ticket_of({"litellm_params": {"metadata": {TICKET: "k"}}}) == "k"
    assert ticket_of({"litellm_metadata": {TICKET: "k"}}) == "k"
    assert ticket_of({"metadata": {}}) is None


def test_a_sync_calls_raw_answer_is_read_only_when_it_is_one() -> None:
    usage = {"usage": {"total_tokens": 12}}
    assert raw_answer({"original_response": usage}) == usage
    assert raw_answer({"original_response": '{"usage": {"total_tokens": 12}}'}) == usage
    # An error's text logged on its way out is no answer.
    assert raw_answer({"original_response": "Error code: 500 - {'error': 'boom'}"}) is None
    assert raw_answer({"original_response": "{not json"}) is None
    assert raw_answer({"original_response": "my-original-response"}) == {}  # a mock

"""Saying a startup line once among the proxy's workers."""

from __future__ import annotations

from pathlib import Path

from ratetree.integrations.litellm.proxy_workers import first_among_workers


def test_the_first_to_ask_about_a_topic_is_first_and_the_rest_are_not(tmp_path: Path) -> None:
    assert first_among_workers("no-redis-a", str(tmp_path))
    assert not first_among_workers("no-redis-a", str(tmp_path))
    assert first_among_workers("no-redis-b", str(tmp_path))


def test_where_no_file_can_be_made_every_worker_speaks(tmp_path: Path) -> None:
    missing = str(tmp_path / "not-there")
    assert first_among_workers("x", missing) and first_among_workers("x", missing)

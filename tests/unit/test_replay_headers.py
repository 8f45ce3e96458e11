from __future__ import annotations

from consumer.replay import HEADER_REPLAYED_FROM, ReplayFilter, replay_headers
from tests.fakes import FakeMessage


def test_replayed_messages_carry_their_origin_and_lose_our_error_headers() -> None:
    message = FakeMessage(
        "usage.dlq", 2, 41, b"{}", b"k",
        [("trace", b"abc"), ("aiusage.error.kind", b"not_json")],
    )  # fmt: skip
    assert replay_headers(message) == [  # type: ignore[arg-type]
        ("trace", b"abc"),
        (HEADER_REPLAYED_FROM, b"usage.dlq/2@41"),
    ]


def test_filter_by_kind_and_time() -> None:
    from datetime import UTC, datetime

    at = datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert ReplayFilter().matches("not_json", at)
    assert not ReplayFilter(frozenset({"oversized"})).matches("not_json", at)
    assert ReplayFilter(since=at).matches("x", at)
    assert not ReplayFilter(until=at).matches("x", at)

"""OffsetWatch: which records break their partition's offset sequence."""

from __future__ import annotations

from stream_app.runtimes.faust.offset_watch import OffsetWatch


def test_consecutive_offsets_of_each_partition_break_nothing() -> None:
    watch = OffsetWatch()
    seen = [watch.see(topic, p, o) for o in (5, 6, 7) for topic in ("a", "b") for p in (0, 1)]
    assert seen == [None] * 12


def test_a_skipped_offset_is_a_gap_and_an_offset_seen_again_a_rewind() -> None:
    watch = OffsetWatch()
    assert [watch.see("labels", 0, o) for o in (257, 259, 260, 252, 253)] == [
        None,
        "offset_gaps",
        None,
        "offset_rewinds",
        None,
    ]
    assert watch.see("labels", 0, 253) == "offset_rewinds"


def test_a_revoked_partition_starts_a_new_sequence() -> None:
    watch = OffsetWatch()
    watch.see("labels", 0, 10)
    watch.see("labels", 1, 10)
    watch.forget([("labels", 0)])
    assert watch.see("labels", 0, 3) is None  # wherever its committed offset was
    assert watch.see("labels", 1, 3) == "offset_rewinds"

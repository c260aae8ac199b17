"""Write-back to a SharePoint list: batched, an upsert on the key, never older over newer."""

from __future__ import annotations

from typing import Any

from dispatch_support import Bench, LatchedSession, MiniEngine

from m365perf.dispatch import DrainReport
from m365perf.messages import WrittenBack
from m365perf.store import OutboxStatus

PERIOD = "2025/26 Q3"


def _values(bench: Bench, title: str) -> dict[tuple[str, str], dict[str, Any]]:
    items = bench.list_items(title)
    return {(i["fields"]["IndicatorId"], i["fields"]["Period"]): i for i in items}


def _sharepoint_calls(bench: Bench, after: int) -> tuple[list[str], list[str]]:
    """(paths of $batch envelopes, paths of list reads) since request ``after``."""
    rows = [r for r in bench.requests_since(after) if r["path"].startswith("/v1.0/")]
    batches = [r["path"] for r in rows if r["path"].endswith("/$batch")]
    reads = [r["path"] for r in rows if r["method"] == "GET" and r["path"].endswith("/items")]
    return batches, reads


def test_twenty_five_new_results_go_out_as_two_batches_after_one_read_per_twenty_keys(
    bench: Bench,
) -> None:
    engine = MiniEngine(bench)
    title = bench.new_results_list()
    rows = [engine.write_back(title, f"COV-{n:03}", PERIOD, n * 1.5, 1) for n in range(25)]
    before = bench.last_request_id()

    assert engine.dispatcher.drain() == DrainReport(sent=25)

    batches, reads = _sharepoint_calls(bench, before)
    assert len(batches) == 2
    assert len(reads) == 2  # 20 keys, then 5: one read per envelope of new keys
    assert all(engine.written(r).created and not engine.written(r).skipped_older for r in rows)
    stored = _values(bench, title)
    assert len(stored) == 25
    assert stored[("COV-007", PERIOD)]["fields"]["Value"] == 10.5
    assert {engine.written(r).item_id for r in rows} == {i["id"] for i in stored.values()}


def test_a_list_whose_keys_are_not_indexed_is_read_whole_and_still_upserted(
    bench: Bench,
) -> None:
    def read_statuses(after: int) -> list[int]:
        return [
            r["status"]
            for r in bench.requests_since(after)
            if r["method"] == "GET" and r["path"].endswith("/items")
        ]

    engine = MiniEngine(bench)
    title = bench.new_results_list(indexed=False)
    before = bench.last_request_id()
    first = engine.write_back(title, "COV-050", PERIOD, 1.0, 1)
    engine.dispatcher.drain()
    assert read_statuses(before) == [400, 200]  # the filter is refused; the list is read
    before = bench.last_request_id()

    second = engine.write_back(title, "COV-050", PERIOD, 2.0, 2)
    assert engine.dispatcher.drain() == DrainReport(sent=1)

    assert read_statuses(before) == [200]  # not asked to filter again
    assert engine.written(second).item_id == engine.written(first).item_id
    assert len(bench.list_items(title)) == 1


def test_a_second_write_of_the_same_key_updates_the_item_it_made(bench: Bench) -> None:
    engine = MiniEngine(bench)
    title = bench.new_results_list()
    first = [engine.write_back(title, f"COV-{n:03}", PERIOD, 1.0, 1) for n in range(3)]
    engine.dispatcher.drain()

    second = [engine.write_back(title, f"COV-{n:03}", PERIOD, 2.0, 2) for n in range(3)]
    assert engine.dispatcher.drain() == DrainReport(sent=3)

    for old, new in zip(first, second, strict=True):
        assert engine.sent[new] == WrittenBack(
            item_id=engine.written(old).item_id,
            created=False,
            skipped_older=False,
        )
    stored = _values(bench, title)
    assert len(stored) == 3
    assert {i["fields"]["Value"] for i in stored.values()} == {2.0}


def test_an_older_version_leaves_the_newer_result_alone(bench: Bench) -> None:
    engine = MiniEngine(bench)
    title = bench.new_results_list()
    newer = engine.write_back(title, "COV-100", PERIOD, 42.0, 3)
    engine.dispatcher.drain()

    older = engine.write_back(title, "COV-100", PERIOD, 7.0, 2)
    assert engine.dispatcher.drain() == DrainReport(sent=1)

    assert engine.sent[older] == WrittenBack(
        item_id=engine.written(newer).item_id,
        created=False,
        skipped_older=True,
    )
    assert _values(bench, title)[("COV-100", PERIOD)]["fields"]["Value"] == 42.0


def test_two_versions_claimed_together_make_one_item_holding_the_newer(bench: Bench) -> None:
    engine = MiniEngine(bench)
    title = bench.new_results_list()
    newer = engine.write_back(title, "COV-200", PERIOD, 9.0, 2)
    older = engine.write_back(title, "COV-200", PERIOD, 8.0, 1)

    assert engine.dispatcher.drain() == DrainReport(sent=2)

    stored = _values(bench, title)
    assert len(stored) == 1
    assert stored[("COV-200", PERIOD)]["fields"]["Value"] == 9.0
    assert engine.written(newer).created is True
    assert engine.sent[older] == WrittenBack(
        item_id=engine.written(newer).item_id,
        created=False,
        skipped_older=True,
    )


def test_a_rejected_column_parks_its_row_with_the_reason_and_the_rest_are_written(
    bench: Bench,
) -> None:
    engine = MiniEngine(bench)
    title = bench.new_results_list()
    good = engine.write_back(title, "COV-300", PERIOD, 1.0, 1)
    bad = engine.enqueue(
        "write_back",
        "sharepoint",
        {
            "site": bench.site,
            "list": title,
            "key_fields": ["IndicatorId", "Period"],
            "fields": {"IndicatorId": "COV-301", "Period": PERIOD, "Colour": "Red", "Version": 1},
        },
    )

    assert engine.dispatcher.drain() == DrainReport(sent=1, parked=1)

    assert engine.status(good) == OutboxStatus.DONE
    parked = engine.row(bad)
    assert parked.status == OutboxStatus.PARKED
    assert parked.last_error == (
        f"WriteFailed: list {title!r}: 400 invalidRequest: Field 'Colour' is not recognized"
    )


def test_a_payload_without_its_key_field_is_parked_saying_which(bench: Bench) -> None:
    engine = MiniEngine(bench)
    row = engine.enqueue(
        "write_back",
        "sharepoint",
        {
            "site": bench.site,
            "list": "KPI Results",
            "key_fields": ["IndicatorId", "Period"],
            "fields": {"IndicatorId": "COV-400", "Value": 1},
        },
    )

    assert engine.dispatcher.drain() == DrainReport(parked=1)

    error = engine.row(row).last_error
    assert error is not None and "Period" in error


def test_batches_for_one_list_go_out_at_the_same_time(bench: Bench) -> None:
    # Each $batch request waits until both are in flight: sent one by one, they never meet.
    engine = MiniEngine(bench, session=LatchedSession("/$batch", parties=2))
    title = bench.new_results_list()
    for n in range(40):
        engine.write_back(title, f"COV-{n:03}", PERIOD, 1.0, 1)

    assert engine.dispatcher.drain() == DrainReport(sent=40)
    assert len(bench.list_items(title)) == 40

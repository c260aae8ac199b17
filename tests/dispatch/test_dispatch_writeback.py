"""Write-back to a SharePoint list: batched, an upsert on the key, never older over newer."""

from __future__ import annotations

from datetime import timedelta
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


def _fill(bench: Bench, title: str, count: int, start: int = 0) -> None:
    """Other periods' rows straight into the sandbox's copy of the list (fast, untracked)."""
    import uuid

    from m365perf.sandbox.store import Store

    lists = bench.graph("GET", f"/sites/{bench.health['site_id']}/lists").json()["value"]
    list_id = next(lst["id"] for lst in lists if lst["displayName"] == title)
    store = Store(bench.sandbox.data_dir / "sandbox.sqlite3")
    with store.transaction():
        for n in range(start, count):
            fields = {"IndicatorId": f"OLD-{n:05}", "Period": "2019/20 Q1", "Value": 1}
            store.new_item(list_id, fields, str(uuid.uuid4()).upper(), "2025-04-01T08:00:00Z")
    store.close()


def test_a_row_written_before_is_patched_by_its_item_id_without_a_read(bench: Bench) -> None:
    engine = MiniEngine(bench, remember_items=True)
    title = bench.new_results_list()
    first = engine.write_back(title, "COV-101", PERIOD, 10.0, 1)
    engine.dispatcher.drain()
    item_id = engine.written(first).item_id
    before = bench.last_request_id()

    second = engine.write_back(title, "COV-101", PERIOD, 12.5, 2)
    assert engine.dispatcher.drain() == DrainReport(sent=1)

    _, reads = _sharepoint_calls(bench, before)
    assert reads == []
    parts = [
        r for r in bench.requests_since(before) if r.get("batch_id") and "/items/" in r["path"]
    ]
    assert [(r["method"], r["path"].rsplit("/", 2)[-2]) for r in parts] == [("PATCH", item_id)]
    assert engine.written(second) == WrittenBack(item_id=item_id, created=False)
    assert _values(bench, title)[("COV-101", PERIOD)]["fields"]["Value"] == 12.5


def test_an_older_version_of_a_remembered_row_is_skipped_without_a_request(
    bench: Bench,
) -> None:
    engine = MiniEngine(bench, remember_items=True)
    title = bench.new_results_list()
    engine.write_back(title, "COV-102", PERIOD, 20.0, 3)
    engine.dispatcher.drain()
    before = bench.last_request_id()

    older = engine.write_back(title, "COV-102", PERIOD, 5.0, 2)
    assert engine.dispatcher.drain() == DrainReport(sent=1)

    assert engine.written(older).skipped_older
    assert [r for r in bench.requests_since(before) if r["path"].startswith("/v1.0/")] == []
    assert _values(bench, title)[("COV-102", PERIOD)]["fields"]["Value"] == 20.0


def test_list_reads_per_new_row_stay_the_same_as_the_list_grows(bench: Bench) -> None:
    engine = MiniEngine(bench, remember_items=True)
    title = bench.new_results_list()
    reads_per_row = []
    held = 0
    for size, period in ((50, "2026/27 Q1"), (900, "2026/27 Q2")):
        _fill(bench, title, size, held)
        held = size
        for n in range(30):
            engine.write_back(title, f"COV-{n:03}", period, float(n), 1)
        before = bench.last_request_id()
        assert engine.dispatcher.drain() == DrainReport(sent=30)
        _, reads = _sharepoint_calls(bench, before)
        reads_per_row.append(len(reads) / 30)
    assert reads_per_row[0] == reads_per_row[1] == 2 / 30  # 20 keys a read, whatever the list holds


def test_a_remembered_item_deleted_by_hand_is_looked_up_again_and_recreated(
    bench: Bench,
) -> None:
    engine = MiniEngine(bench, remember_items=True)
    title = bench.new_results_list()
    first = engine.write_back(title, "COV-103", PERIOD, 1.0, 1)
    engine.dispatcher.drain()
    lists = bench.graph("GET", f"/sites/{bench.health['site_id']}/lists").json()["value"]
    list_id = next(lst["id"] for lst in lists if lst["displayName"] == title)
    gone = engine.written(first).item_id
    deleted = bench.graph(
        "DELETE", f"/sites/{bench.health['site_id']}/lists/{list_id}/items/{gone}"
    )
    assert deleted.status_code == 204

    second = engine.write_back(title, "COV-103", PERIOD, 2.0, 2)
    engine.dispatcher.drain()
    assert engine.status(second) == OutboxStatus.PENDING  # tried again, not parked
    engine.now += timedelta(minutes=30)
    assert engine.dispatcher.drain() == DrainReport(sent=1)

    outcome = engine.written(second)
    assert outcome.created and outcome.item_id != gone
    assert _values(bench, title)[("COV-103", PERIOD)]["fields"]["Value"] == 2.0

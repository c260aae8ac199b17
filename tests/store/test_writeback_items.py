"""Where each written-back key lives in SharePoint, and the fingerprint of each card shown."""

from __future__ import annotations

from datetime import UTC, datetime

from m365perf.store import CardChannel, Store

NOW = datetime(2026, 11, 5, 9, 0, tzinfo=UTC)
SITE = "contoso.sharepoint.com:/sites/performance"


def test_a_written_key_is_found_again_by_its_values(store: Store) -> None:
    with store.transaction() as tx:
        tx.put_writeback_item(
            SITE, "KPI Results", ["COV-001", "2026-10"], item_id="7", version=1.0, now=NOW
        )
        tx.put_writeback_item(
            SITE, "KPI Results", ["COV-002", "2026-10"], item_id="8", version=None, now=NOW
        )
    with store.transaction() as tx:
        found = tx.find_writeback_items(
            SITE,
            "KPI Results",
            [("COV-001", "2026-10"), ("COV-002", "2026-10"), ("COV-003", "2026-10")],
        )
        other_list = tx.find_writeback_items(SITE, "KPI Actions", [("COV-001", "2026-10")])
    assert {k: (v.item_id, v.version) for k, v in found.items()} == {
        ("COV-001", "2026-10"): ("7", 1.0),
        ("COV-002", "2026-10"): ("8", None),
    }
    assert other_list == {}


def test_an_older_version_settling_late_never_lowers_the_one_remembered(store: Store) -> None:
    key = ["COV-010", "2026-10"]
    with store.transaction() as tx:
        tx.put_writeback_item(SITE, "KPI Results", key, item_id="9", version=3.0, now=NOW)
        tx.put_writeback_item(SITE, "KPI Results", key, item_id="9", version=2.0, now=NOW)
    with store.transaction() as tx:
        assert tx.find_writeback_items(SITE, "KPI Results", [key])[tuple(key)].version == 3.0
        tx.put_writeback_item(SITE, "KPI Results", key, item_id="9", version=4.0, now=NOW)
    with store.transaction() as tx:
        assert tx.find_writeback_items(SITE, "KPI Results", [key])[tuple(key)].version == 4.0
        tx.forget_writeback_item(SITE, "KPI Results", key)
    with store.transaction() as tx:
        assert tx.find_writeback_items(SITE, "KPI Results", [key]) == {}


def test_a_card_s_fingerprint_is_kept_with_its_delivery_and_replaced_by_each_update(
    store: Store,
) -> None:
    with store.transaction() as tx:
        tx.record_delivery(
            "request-1",
            user_id="u1",
            channel=CardChannel.TEAMS,
            subject_type="return",
            subject_id=1,
            now=NOW,
            conversation_id="c",
            activity_id="a",
            service_url="https://smba.trafficmanager.net/uk/",
            card_hash="first",
        )
    with store.transaction() as tx:
        assert tx.mark_replaced("request-1", now=NOW, card_hash="second")
        assert not tx.mark_replaced("request-1", now=NOW, card_hash="third")
    with store.transaction() as tx:
        delivery = tx.find_delivery("request-1")
    assert delivery is not None and delivery.card_hash == "third"

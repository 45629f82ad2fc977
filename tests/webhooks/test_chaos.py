"""The webhook fault run, short (CI): receivers down, slow and failing, the service killed
mid-delivery, PostgreSQL restarted, connections terminated; afterwards every event is delivered
to every endpoint that subscribes, none invented, repeats only of the same webhook-id with the
same body, first arrivals in seq order, and the delivery log agrees."""

from tests.webhooks.chaos import Plan, run, run_in_thread


def test_webhooks_deliver_every_event_through_faults() -> None:
    plan = Plan(seconds=40, fault_every=5, receiver_gap=(2.0, 5.0), receiver_down=(4.0, 10.0))
    figures = run_in_thread(lambda: run(plan))
    print(figures)
    assert figures["drained"] is True
    assert figures["summary"]["broken"] == {}
    faults = figures["faults"]
    for kind in ("restart_db_fast", "restart_db_immediate", "terminate_backends"):
        assert faults.get(kind, 0) >= 1, kind
    assert faults.get("kill_service_mid_delivery", 0) >= 1
    for kind in ("receiver_down", "receiver_slow", "receiver_500"):
        assert faults.get(kind, 0) >= 1, kind
    assert figures["trades_refused"] > 0
    assert figures["holds_posted"] > 0
    assert figures["holds_voided"] > 0
    feed = figures["feed"]
    assert feed["acknowledged_without_event"] == 0
    assert feed["trade_events_without_till"] == 0
    assert feed["refused_with_event"] == 0
    assert feed["seq_not_increasing"] == 0
    assert figures["endpoints"]["all"]["events"] > 100
    for name, e in figures["endpoints"].items():
        assert e["events"] > 10, name
        assert e["missing"] == 0, name
        assert e["invented"] == 0, name
        assert e["body_mismatch"] == 0, name
        assert e["id_not_event_id"] == 0, name
        assert e["unverified"] == 0, name
        assert e["out_of_order"] == 0, name
        assert e["log_missing"] == 0, name
        assert e["log_invented"] == 0, name
        assert e["log_failed"] == 0, name
    assert sum(e["answered_500"] for e in figures["endpoints"].values()) > 0
    assert sum(e["log_retrying"] for e in figures["endpoints"].values()) > 0

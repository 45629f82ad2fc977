"""The fault-injection workload, short (CI): nothing acknowledged is lost, nothing is booked
twice, and every invariant holds after kills, restarts, terminations and pauses."""

from tests.faults.chaos import run, run_in_thread


def test_faults_lose_nothing_and_duplicate_nothing() -> None:
    figures = run_in_thread(lambda: run(45, 2.5, tills=16, patience=2.0))
    print(figures)
    assert figures["faults_injected"] >= 12
    assert figures["acknowledged"] > 1000
    assert figures["refused"] > 0  # some trades were beyond limits, as planned
    assert figures["lost"] == 0
    assert figures["duplicated"] == 0
    assert figures["refused_but_booked"] == 0
    assert figures["booked_without_attempt"] == 0
    assert figures["unanswered"] == 0
    assert figures["server_errors"] == 0
    assert figures["booked"] == figures["acknowledged"]
    assert figures["network_sum"] == 0
    assert figures["pending_debits_equal_credits"] is True
    assert figures["ledger_checks"] == "ok"
    assert figures["audit_chain"] == "ok"

"""The fault-injection workload, short (CI): nothing acknowledged is lost, nothing is booked
twice, and every invariant holds after kills, restarts, terminations and pauses."""

from tests.faults.chaos import run


def test_faults_lose_nothing_and_duplicate_nothing() -> None:
    figures = run_sync(seconds=45, fault_every=2.5)
    print(figures)
    assert figures["faults_injected"] >= 12
    assert figures["acknowledged"] > 1000
    assert figures["refused"] > 0  # some trades were beyond limits, as planned
    assert figures["lost"] == 0
    assert figures["duplicated"] == 0
    assert figures["refused_but_booked"] == 0
    assert figures["booked_without_attempt"] == 0
    assert figures["unanswered"] == 0
    assert figures["booked"] == figures["acknowledged"]
    assert figures["network_sum"] == 0
    assert figures["pending_debits_equal_credits"] is True
    assert figures["ledger_checks"] == "ok"
    assert figures["audit_chain"] == "ok"


def run_sync(seconds: float, fault_every: float) -> dict[str, object]:
    import asyncio
    import threading

    # A thread of its own: the test session's event loop lives in this one.
    result: dict[str, object] = {}

    def target() -> None:
        result.update(asyncio.run(run(seconds, fault_every, tills=16, patience=2.0)))

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    assert result, "the workload did not finish"
    return result

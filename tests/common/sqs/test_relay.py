"""The relay that takes the ledger's lease writes off the visibility heartbeat's thread."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from common.sqs.in_flight import InFlight, Lease
from common.sqs.inbound import InboundMessage
from common.sqs.relay import ExtensionRelay
from tests.common.sqs.held_hook import HeldHook
from tests.waiting import wait_until


def _leases(*bodies: str) -> list[Lease]:
    return InFlight(30).open([InboundMessage(f"id-{body}", f"rh-{body}", body, 1, 0) for body in bodies])


def test_submit_returns_while_the_hook_is_still_answering() -> None:
    """The heartbeat hands its extensions over and goes on; the hook's slowness is the relay's alone."""
    hook, (first,) = HeldHook(), _leases("a")
    relay = ExtensionRelay(hook)
    relay.submit([first])
    wait_until(lambda: hook.calls, timeout=10, what="the first call")

    submitter = threading.Thread(target=relay.submit, args=([first],), daemon=True)
    submitter.start()
    submitter.join(timeout=5)

    assert not submitter.is_alive()
    hook.answer.set()
    relay.stop(timeout=5)


def test_what_piles_up_behind_a_slow_call_goes_in_the_next_one_each_delivery_once() -> None:
    """Three heartbeat turns during one slow call: one more call, carrying each delivery once."""
    hook, (first, second, third) = HeldHook(), _leases("a", "b", "c")
    relay = ExtensionRelay(hook)
    relay.submit([first])
    wait_until(lambda: hook.calls, timeout=10, what="the first call")
    for _ in range(3):
        relay.submit([first, second])
    relay.submit([third])
    hook.answer.set()
    wait_until(lambda: len(hook.calls) == 2, timeout=10, what="the second call")
    relay.stop(timeout=5)

    assert [["a"], ["a", "b", "c"]] == hook.calls


def test_a_failing_hook_is_called_again_with_the_next_extension() -> None:
    """A bug in the hook costs its own call: the relay's thread goes on."""
    calls: list[int] = []

    def broken(leases: Sequence[Lease]) -> None:
        calls.append(len(leases))
        raise RuntimeError("the hook broke")

    relay = ExtensionRelay(broken)
    (lease,) = _leases("a")
    relay.submit([lease])
    wait_until(lambda: len(calls) == 1, timeout=10, what="the first call")
    relay.submit([lease])
    wait_until(lambda: len(calls) == 2, timeout=10, what="the second call")
    relay.stop(timeout=5)

    assert [1, 1] == calls


def test_nothing_reaches_the_hook_after_stop() -> None:
    """Once the heartbeat stopped (the worker is exiting), no more lease writes start."""
    calls: list[int] = []
    relay = ExtensionRelay(lambda leases: calls.append(len(leases)))
    relay.stop(timeout=5)

    relay.submit(_leases("a"))

    assert [] == calls

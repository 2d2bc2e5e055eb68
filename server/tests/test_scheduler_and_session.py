"""Schedulers (fairness, batching, waiting) and the session mailbox / registry."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from spinal.protocol import MsgHeader
from spinal_server.processing import SessionProcessorState
from spinal_server.scheduler import MicroBatchScheduler, RoundRobinScheduler, make_scheduler
from spinal_server.session import Mailbox, MailboxItem, Session, SessionRegistry


@dataclass
class Ready:
    client_uuid: str
    pending_since: float | None = 0.0


def clients(*names: str) -> list[Ready]:
    return [Ready(n) for n in names]


def test_round_robin_serves_one_at_a_time_in_rotation() -> None:
    rr = RoundRobinScheduler()
    ready = clients("c", "a", "b")
    order = [rr.select(ready, active=3, now=1.0).sessions[0].client_uuid for _ in range(6)]
    assert order == ["a", "b", "c", "a", "b", "c"]


def test_round_robin_never_starves_anyone_through_joins_and_leaves() -> None:
    rr = RoundRobinScheduler()
    served: list[str] = []
    ready = clients("a", "b", "c")
    for step in range(30):
        if step == 5:
            ready.append(Ready("aa"))  # joins between a and b
        if step == 12:
            ready = [r for r in ready if r.client_uuid != "b"]  # leaves
        served.append(rr.select(ready, active=len(ready), now=1.0).sessions[0].client_uuid)
    window = served[13:25]
    for name in ("a", "aa", "c"):
        assert window.count(name) == 4  # equal shares: every ready client once per cycle
    assert "b" not in served[13:]


def test_micro_batch_waits_for_more_then_takes_up_to_max_batch() -> None:
    mb = MicroBatchScheduler(max_batch=3, max_wait_s=0.010)
    early = [Ready("a", pending_since=1.000)]
    wait = mb.select(early, active=4, now=1.002)
    assert wait.sessions == [] and abs(wait.wait_s - 0.008) < 1e-9
    assert [s.client_uuid for s in mb.select(early, active=4, now=1.011).sessions] == [
        "a"
    ]  # waited long enough
    everyone = clients("a", "b")
    assert len(mb.select(everyone, active=2, now=0.0).sessions) == 2  # every open session is waiting: go now
    full = clients("a", "b", "c", "d", "e")
    mb = MicroBatchScheduler(max_batch=3, max_wait_s=0.010)
    first = mb.select(full, active=9, now=0.0).sessions
    second = mb.select(full, active=9, now=0.0).sessions
    assert [s.client_uuid for s in first] == ["a", "b", "c"]
    assert [s.client_uuid for s in second] == ["d", "e", "a"]  # rotation: d and e are not starved


def test_micro_batch_has_no_starvation_under_constant_load() -> None:
    mb = MicroBatchScheduler(max_batch=4, max_wait_s=0.0)
    ready = clients(*[f"r{i:02d}" for i in range(10)])
    counts = dict.fromkeys((r.client_uuid for r in ready), 0)
    for _ in range(25):  # 100 slots for 10 clients
        for s in mb.select(ready, active=10, now=0.0).sessions:
            counts[s.client_uuid] += 1
    assert set(counts.values()) == {10}


def test_make_scheduler_by_name() -> None:
    assert isinstance(make_scheduler("round_robin"), RoundRobinScheduler)
    batch = make_scheduler("batch", max_batch=16, max_wait_ms=7)
    assert isinstance(batch, MicroBatchScheduler) and batch.max_batch == 16 and batch.max_wait_s == 0.007


def item(seq: int) -> MailboxItem:
    return MailboxItem(MsgHeader(seq_id=seq), b"body", float(seq))


def test_mailbox_keeps_only_the_newest_and_counts_superseded() -> None:
    box = Mailbox()
    assert box.pending_since is None
    assert box.deposit(item(1)) is False
    assert box.deposit(item(2)) is True and box.deposit(item(3)) is True
    assert box.pending_since == 3.0
    assert box.take().header.seq_id == 3 and box.take() is None
    assert box.take_superseded() == 2 and box.take_superseded() == 0
    assert box.superseded_total == 2


def test_mailbox_is_safe_under_concurrent_deposits() -> None:
    box = Mailbox()

    def writer(base: int) -> None:
        for i in range(2000):
            box.deposit(item(base + i))

    threads = [threading.Thread(target=writer, args=(k * 10_000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert box.take() is not None and box.superseded_total == 8000 - 1


def session(uuid: str) -> Session:
    return Session(
        session_id=f"s-{uuid}",
        client_uuid=uuid,
        task="",
        robot_type="",
        rtc_enabled=False,
        processor=SessionProcessorState(),
        publish=lambda body, attachment: None,
    )


def test_registry_removal_checks_identity_so_a_replacement_survives() -> None:
    registry = SessionRegistry()
    old, new = session("a"), session("a")
    assert registry.add(old) is None
    assert registry.add(new) is old  # the caller closes the displaced one
    assert registry.remove("a", expected=old) is None  # a late GC of the old session does nothing
    assert registry.get("a") is new
    assert registry.remove("a", expected=new) is new and len(registry) == 0


def test_session_close_is_idempotent_and_undeclares_once() -> None:
    calls = []
    s = session("a")
    s.undeclare = lambda: calls.append(1)
    s.mailbox.deposit(item(1))
    s.close()
    s.close()
    assert calls == [1] and s.closed and s.mailbox.pending_since is None

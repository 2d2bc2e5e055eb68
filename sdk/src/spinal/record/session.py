"""`RecordSession`: the state machine of `spinal record` — arm, record, count down, stop, reset, next — with
re-records, resumed numbering, pulls along the way, and what to do when the device goes away.

Driven by `spinal.commands.record`; talks to the device through `DeviceControl`, reads keys from a
`KeySource`, shows itself through a `SessionView`, and builds the dataset with `SessionDataset`.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from spinal.device import DeviceError, DeviceResponseError, DeviceUnreachableError
from spinal.record.control import DeviceControl, error_detail, is_conflict
from spinal.record.dataset_sync import BackgroundSync, SessionDataset, SyncReport
from spinal.record.errors import (
    ArmingError,
    DeviceLostError,
    DiskGuardError,
    RecorderFailure,
    RecordError,
    SessionSetupError,
)
from spinal.record.journal import JOURNAL_FILE, EpisodeFate, JournalEntry, SessionJournal
from spinal.record.keys import ENTER, ESCAPE, LEFT, RIGHT, KeySource
from spinal.record.options import RecordMode, SessionOptions
from spinal.record.poller import StatusPoller
from spinal.record.snapshot import DeviceSnapshot, EpisodeInfo
from spinal.record.view import Phase, SessionView, ViewModel

FIRST_CONTACT_S = 15.0  # how long the session waits for the device's first answer before giving up
DISK_GUARD_REASON = "disk guard"
DEVICE_LIMIT_REASON = "max_episode_s reached"
MAX_DURATION_REASON = "max duration"  # the limit this session asks for at each start
DEVICE_MAX_DURATION_S = 86_400.0  # the most the device accepts as an episode's max_duration_s
WRITE_ERROR_REASON = "write error"


_T = TypeVar("_T")


class EpisodeEnd(StrEnum):
    """How one episode ended, for the session loop."""

    KEPT = "kept"
    RERECORD = "rerecord"  # discarded, or cut short by a fault: record the same number again
    STOP = "stop"  # the person ended the session (Esc); the episode was kept or discarded as they chose


class EndedBy(StrEnum):
    """Why the recording part of the session ended."""

    DONE = "done"  # every episode recorded
    ESCAPE = "escape"  # the person stopped it
    DISK_GUARD = "disk guard"
    DEVICE_LOST = "device lost"
    ARMING = "arming"
    RECORDER = "recorder"


@dataclass
class SessionResult:
    """What the session did: episodes, why it ended, the dataset build."""

    journal_path: str
    kept: list[JournalEntry]
    interrupted: list[JournalEntry]
    ended_by: EndedBy
    problem: str = ""
    held: bool = False
    sync: SyncReport | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class AbortReport:
    """What Ctrl-C left behind: the device's state and the episodes that are safe."""

    held: bool
    hold_error: str
    stopped_episode: JournalEntry | None
    kept: list[JournalEntry]
    journal_path: str


class SessionAborted(Exception):
    """Ctrl-C (or SIGTERM) ended the session; `report` says what is safe."""

    def __init__(self, report: AbortReport) -> None:
        super().__init__("the session was interrupted")
        self.report = report


class _StopSession(Exception):
    """Internal: the person asked to end the session (Esc) at a point where nothing records."""


class RecordSession:
    """One recording session against one device. `run()` blocks until the session and its dataset are done."""

    def __init__(
        self,
        options: SessionOptions,
        control: DeviceControl,
        *,
        keys: KeySource,
        view: SessionView,
        dataset: SessionDataset,
        tick_s: float = 0.1,
        lost_after_s: float = 2.0,
    ) -> None:
        self.options = options
        self.control = control
        self.keys = keys
        self.view = view
        self.dataset = dataset
        self.clock = time.monotonic  # the poller stamps its readings with this clock too
        self.tick_s = tick_s
        self.lost_after_s = lost_after_s
        self.poller = StatusPoller(control, interval_s=options.poll_interval_s)
        self.sync = BackgroundSync(dataset)
        self.journal: SessionJournal | None = None
        self.model = ViewModel(
            repo_id=options.repo_id,
            device_url=control.url,
            mode=options.mode.value,
            target=options.episodes,
            task=options.task,
        )
        self._recording: EpisodeInfo | None = None  # the episode this session started and believes records
        self._synced_at = 0  # kept-episode count when the last --pull-every sync was scheduled
        self._boot_id = ""  # the device daemon's boot id at its last answer (a new one: it restarted)
        self._episode_boot_id = ""  # ... when the episode being recorded started
        self._gone = 0  # episodes a fault cut short that the device no longer has (not in the journal)

    # -- the session --------------------------------------------------------------------------------------

    def prepare(self) -> SessionJournal:
        """Check the output folders and create (or, with --resume, load) the journal. Touches no device."""
        options = self.options
        raw, out = options.raw_dir, options.out_dir
        if options.resume:
            journal = SessionJournal.load(raw)
            if journal.repo_id != options.repo_id:
                raise SessionSetupError(
                    f"the session in {raw} records {journal.repo_id!r}, not {options.repo_id!r}; "
                    f"pass --repo-id {journal.repo_id} to resume it"
                )
            if out.exists() and not out.is_dir():
                raise SessionSetupError(f"--out {out} is a file; give a folder for the dataset")
        else:
            if (raw / JOURNAL_FILE).exists():
                raise SessionSetupError(
                    f"{raw} already holds a recording session; pass --resume to continue it, "
                    "or choose another --out"
                )
            for folder, what in ((out, "--out"), (raw, "the recordings folder")):
                if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
                    raise SessionSetupError(
                        f"{what} {folder} is not empty; choose a new --out, or pass --resume to continue "
                        "the session recorded there"
                    )
            if out.parent and not out.parent.exists():
                out.parent.mkdir(parents=True, exist_ok=True)
            if not _writable(out.parent):
                raise SessionSetupError(f"cannot write into {out.parent}; choose an --out you can write to")
            journal = SessionJournal.create(raw, repo_id=options.repo_id, device=self.control.url)
        self.journal = journal
        self._refresh_counts()
        return journal

    def run(self) -> SessionResult:
        """Record the episodes, hold the device, then pull and convert. Ctrl-C raises `SessionAborted`."""
        journal = self.journal or self.prepare()
        ended_by, problem = EndedBy.DONE, ""
        self.poller.start()
        try:
            try:
                self._connect()
                self._reconcile_in_progress()
                self._record_all()
            except _StopSession:
                ended_by = EndedBy.ESCAPE
            except DiskGuardError as exc:
                ended_by, problem = EndedBy.DISK_GUARD, str(exc)
            except DeviceLostError as exc:
                ended_by, problem = EndedBy.DEVICE_LOST, str(exc)
            except ArmingError as exc:
                ended_by, problem = EndedBy.ARMING, str(exc)
            except RecorderFailure as exc:
                ended_by, problem = EndedBy.RECORDER, str(exc)
            if problem:
                self._event(f"[stopped] {problem}")
            result = SessionResult(
                journal_path=str(journal.path),
                kept=journal.kept(),
                interrupted=journal.interrupted(),
                ended_by=ended_by,
                problem=problem,
            )
            if ended_by is not EndedBy.DEVICE_LOST:
                result.held = self._hold_at_end(result)
                result.sync = self._build_dataset()
            self.model.phase = Phase.DONE
            self.model.time_left_s = None
            self.view.update(self.model)
            return result
        except KeyboardInterrupt:
            raise SessionAborted(self._abort("stopped by Ctrl-C")) from None
        except Exception:
            self._abort("stopped when the session failed")  # whatever broke, the device is left holding
            raise
        finally:
            self.sync.cancel.set()
            self.poller.stop()

    # -- connecting ---------------------------------------------------------------------------------------

    def _connect(self) -> None:
        self.model.phase = Phase.CONNECTING
        since = self.clock()
        while True:
            self._tick()
            snap = self.poller.latest
            if snap is not None:
                break
            if self.clock() - since > FIRST_CONTACT_S:
                raise DeviceLostError(
                    f"cannot reach the device at {self.control.url} ({self.poller.last_error or 'no answer'}); "
                    "check the address, the network and that spinal-edge runs"
                )
        if snap.recorder_state is None:
            raise RecorderFailure(
                "recording is off on the device; set [recording] enabled = true in its edge.toml and restart it"
            )
        own = self.journal.in_progress.episode_id if self.journal and self.journal.in_progress else None
        if snap.episode is not None and snap.episode.episode_id != own:
            raise RecorderFailure(
                f"the device is already recording episode {snap.episode.episode_id} (started elsewhere); "
                "stop it from the device page or with POST /api/episode/stop, then run this again"
            )
        self._event(f"connected to {self.control.url}: mode {snap.mode}, recorder {snap.recorder_state}")
        if self.journal is not None and self.journal.device != self.control.url:
            self.model.warnings.append(
                f"this session was recorded from {self.journal.device}; its episodes are pulled from "
                f"{self.control.url} now, so they must be on this device"
            )

    def _reconcile_in_progress(self) -> None:
        """A resumed session whose previous run died mid-episode: settle that episode first."""
        journal = self.journal
        assert journal is not None
        entry = journal.in_progress
        if entry is None:
            return
        snap = self.poller.latest
        note = "the session ended while it recorded"
        if snap is not None and snap.recording(entry.episode_id):
            with contextlib.suppress(DeviceResponseError):
                self.control.stop_episode()
            note = "it was still recording when the session resumed; stopped then"
        stored = self.control.stored_episode(entry.episode_id)
        if stored is None:
            journal.forget(entry.episode_id)
            self._event(
                f"episode {entry.number} of the earlier run is gone from the device; it is recorded again"
            )
        else:
            journal.finish(
                entry.episode_id,
                EpisodeFate.INTERRUPTED,
                frames=stored.frames,
                duration_s=stored.duration_s,
                note=note,
            )
            self._event(
                f"episode {entry.number} of the earlier run ({entry.episode_id}) was cut short: {note}; "
                "it stays on the device, left out of the dataset, and is recorded again"
            )
        self._refresh_counts()

    # -- the loop over episodes ---------------------------------------------------------------------------

    def _record_all(self) -> None:
        journal = self.journal
        assert journal is not None
        if len(journal.kept()) >= self.options.episodes:
            self._event(f"the session already has {len(journal.kept())} episode(s); nothing left to record")
            return
        while len(journal.kept()) < self.options.episodes:
            number = journal.next_number
            self._arm(number)
            end = self._record_episode(number)
            if end is EpisodeEnd.STOP:
                raise _StopSession
            if len(journal.kept()) >= self.options.episodes:
                break
            just_kept = journal.kept()[-1] if end is EpisodeEnd.KEPT else None
            self._reset_period(just_kept)

    def _arm(self, number: int) -> None:
        """Put the device in the session's mode; in policy mode wait until the policy streams."""
        wanted = self.options.mode.value
        self.model.phase = Phase.ARMING
        self.model.number = number
        self.model.time_left_s = self.model.time_total_s = None
        since = self.clock()
        attempts = 0
        while True:
            snap = self._fresh_snapshot()
            if snap.mode != wanted:
                attempts += 1
                if attempts > 3:
                    warning = snap.latest_warning()
                    why = f" ({warning.code}: {warning.message})" if warning else ""
                    raise ArmingError(
                        f"the device does not stay in {wanted} mode; it went back to {snap.mode}{why}"
                    )
                try:
                    self.control.set_mode(wanted)
                except DeviceUnreachableError:
                    self._await_device()
                    continue
                except DeviceResponseError as exc:
                    if is_conflict(exc):
                        raise ArmingError(f"the device refused {wanted} mode: {error_detail(exc)}") from None
                    raise
                self._event(f"device armed in {wanted} mode")
                continue
            if self.options.mode is RecordMode.TELEOP or snap.inference_ready:
                return
            if snap.inference_failed:
                raise ArmingError(
                    "the device's inference engine gave up (DEAD); fix the server or its settings, restart the "
                    "device, then run again with --resume"
                )
            if self.clock() - since > self.options.ready_timeout_s:
                raise ArmingError(
                    f"the policy did not become ready within {self.options.ready_timeout_s:g} s (inference "
                    f"{snap.inference_state or 'off'}); check that the inference server runs and is reachable"
                )
            if ESCAPE in self._tick():
                raise _StopSession

    def _record_episode(self, number: int) -> EpisodeEnd:
        journal = self.journal
        assert journal is not None
        while True:
            try:
                info = self.control.start_episode(self.options.task, max_duration_s=self._device_limit_s())
                break
            except DeviceUnreachableError:
                snap, _ = self._await_device()
                if snap.episode is not None:
                    self._settle_orphan(snap.episode)
                self._arm(number)
            except DiskGuardError as exc:
                raise DiskGuardError(
                    f"the device's disk guard refuses new episodes ({exc}); free space on the device (pull and "
                    "delete recorded episodes), then run again with --resume"
                ) from None
            except RecorderFailure as exc:
                raise RecorderFailure(
                    f"episode {number}: {exc}; check the device's data disk and its log, then run again with --resume"
                ) from None
            except DeviceResponseError as exc:
                if is_conflict(exc):
                    raise RecorderFailure(
                        f"the device refused to start episode {number}: {error_detail(exc)}"
                    ) from None
                raise
        started = self.clock()
        self._recording = info
        self._episode_boot_id = self._boot_id
        journal.begin(info.episode_id, number, self.options.task)
        self._event(f"episode {number}/{self.options.episodes}: recording {info.episode_id}")
        if self.options.mode is RecordMode.POLICY and info.engine_reset_acked is False:
            self._event(
                f"episode {number}: the inference server did not confirm the policy's fresh start within 1 s; "
                "the first actions may still follow the previous episode"
            )
        self._maybe_sync_along()
        deadline = started + self.options.episode_time_s
        self.model.phase = Phase.RECORDING
        self.model.time_total_s = self.options.episode_time_s
        while True:
            self.model.time_left_s = deadline - self.clock()
            keys = self._tick()
            for key in keys:
                if key == RIGHT:
                    return self._keep(number, started, early=True)
                if key == LEFT:
                    return self._discard(number, started)
                if key == ESCAPE:
                    return self._stop_and_ask(number, started)
            if self.clock() >= deadline:
                return self._keep(number, started)
            if self.poller.lost_for() >= self.lost_after_s:
                end = self._lost_during_episode(number, started)
                if end is not None:
                    return end
                self.model.phase = Phase.RECORDING
                continue
            snap = self.poller.latest
            if snap is None or snap.taken_at < started:
                continue  # a reading from before the start says nothing about this episode
            if not snap.recording(info.episode_id):
                return self._ended_by_device(number, started)
            if snap.mode != self.options.mode.value:
                return self._left_mode(number, started, snap)

    def _settle_orphan(self, episode: EpisodeInfo) -> None:
        """The connection broke while an episode was being started: the device may have started it anyway."""
        assert self.journal is not None
        with contextlib.suppress(DeviceResponseError):
            stopped = self.control.stop_episode()
            self.journal.finish(
                stopped.episode_id,
                EpisodeFate.INTERRUPTED,
                frames=stopped.frames,
                duration_s=stopped.duration_s,
                note="started while the connection broke; stopped at once",
            )
            self._event(
                f"the device had started episode {episode.episode_id} while the connection broke; it was "
                "stopped and is left out of the dataset"
            )

    # -- how an episode ends ------------------------------------------------------------------------------

    def _stop_current(self, number: int, started: float) -> EpisodeInfo | EpisodeEnd:
        """Stop the episode on the device: its final counts, or how it ended when the device got there first."""
        try:
            info = self.control.stop_episode()
        except DeviceUnreachableError:
            end = self._lost_during_episode(number, started)
            if end is not None:
                return end
            return self._stop_current(number, started)  # it kept recording through the outage: stop it now
        except DeviceResponseError as exc:
            if is_conflict(exc):  # nothing records any more: the device ended it itself
                return self._ended_by_device(number, started)
            raise
        self._recording = None
        return info

    def _keep(self, number: int, started: float, *, early: bool = False) -> EpisodeEnd:
        stopped = self._stop_current(number, started)
        if isinstance(stopped, EpisodeEnd):
            return stopped
        self._finish(stopped, EpisodeFate.KEPT, note="ended early" if early else "")
        self._event(
            f"episode {number}/{self.options.episodes} kept: {stopped.frames} frames, {stopped.duration_s:.1f} s"
            + (" (ended early)" if early else "")
        )
        return EpisodeEnd.KEPT

    def _discard(self, number: int, started: float) -> EpisodeEnd:
        journal = self.journal
        assert journal is not None and self._recording is not None
        episode_id = self._recording.episode_id
        try:
            self.control.discard_episode()
        except DeviceUnreachableError:
            end = self._lost_during_episode(number, started)
            if end is not None:
                return end
            return self._discard(number, started)
        except DeviceResponseError as exc:
            if not is_conflict(exc):
                raise
            # The device ended it first; the person still wants it gone.
            with contextlib.suppress(DeviceResponseError):
                self.control.delete_episode(episode_id)
        self._recording = None
        journal.forget(episode_id)
        self.model.rerecorded += 1
        self._event(f"episode {number} discarded; it is recorded again after the reset")
        return EpisodeEnd.RERECORD

    def _stop_and_ask(self, number: int, started: float) -> EpisodeEnd:
        stopped = self._stop_current(number, started)
        if isinstance(stopped, EpisodeEnd):
            # The episode had already ended on its own; the session still stops as asked.
            return EpisodeEnd.STOP
        self._hold("the session is stopping")
        self.model.phase = Phase.CONFIRM
        self.model.time_left_s = None
        self.model.prompt = (
            f"Episode {number} stopped at {stopped.duration_s:.1f} s ({stopped.frames} frames). "
            "Keep it? [k]eep / [d]iscard"
        )
        self._event(f"stopping the session; episode {number} stopped")
        try:
            while True:
                for key in self._tick():
                    if key in ("k", "y", ENTER):
                        self._finish(stopped, EpisodeFate.KEPT, note="kept when the session was stopped")
                        self._event(f"episode {number} kept ({stopped.frames} frames)")
                        return EpisodeEnd.STOP
                    if key in ("d", "n"):
                        self._delete_stopped(stopped.episode_id)
                        self._event(f"episode {number} discarded")
                        return EpisodeEnd.STOP
        finally:
            self.model.prompt = ""

    def _delete_stopped(self, episode_id: str) -> None:
        assert self.journal is not None
        try:
            self.control.delete_episode(episode_id)
        except DeviceError as exc:
            self.model.warnings.append(f"episode {episode_id} could not be deleted from the device: {exc}")
        self.journal.forget(episode_id)

    def _ended_by_device(self, number: int, started: float) -> EpisodeEnd:
        """The device ended this episode on its own: find out why and act on it."""
        assert self._recording is not None
        episode_id = self._recording.episode_id
        if self._restarted_since(self._episode_boot_id):
            # So quick a restart that the device never looked lost: its new daemon knows nothing of the episode.
            self._recording = None
            self._event(f"the device restarted {self.clock() - started:.1f} s into episode {number}")
            return self._settle_cut_episode(number, episode_id, "the device restarted")
        self._recording = None
        recorder = self._through_outages(self.control.recorder)
        last, state = recorder.last_episode, recorder.recorder_state
        if last is None or last.episode_id != episode_id:
            stored = self._through_outages(lambda: self.control.stored_episode(episode_id))
            last = EpisodeInfo(
                episode_id,
                status=stored.status if stored else "missing",
                frames=stored.frames if stored else 0,
                duration_s=stored.duration_s if stored else 0.0,
            )
        reason = last.stop_reason
        at = f"after {last.duration_s:.1f} s ({last.frames} frames)"
        if reason == DISK_GUARD_REASON or state == "disk_full":
            self._finish(last, EpisodeFate.INTERRUPTED, note="cut short by the device's disk guard")
            snap = self.poller.latest
            free = _space(snap.free_bytes if snap else None)
            minimum = _space(snap.min_free_bytes if snap else None)
            raise DiskGuardError(
                f"the device's disk guard stopped episode {number} {at}: its free space ({free}) fell below "
                f"[recording] min_free_mb ({minimum}). That episode stays on the device, left out of the "
                "dataset; free space on the device, then run again with --resume"
            )
        if reason == MAX_DURATION_REASON:
            return self._kept_at_device_limit(number, last)
        if reason == DEVICE_LIMIT_REASON:
            self._finish(last, EpisodeFate.KEPT, note="ended by the device's max_episode_s")
            self._event(
                f"episode {number} kept, but the device ended it {at}: its [recording] max_episode_s is "
                "shorter than --episode-time"
            )
            return EpisodeEnd.KEPT
        if reason == WRITE_ERROR_REASON or state == "error":
            self._finish(last, EpisodeFate.INTERRUPTED, note="the device's recorder failed")
            snap = self.poller.latest
            raise RecorderFailure(
                f"the device's recorder failed during episode {number} ({snap.recorder_error if snap else ''}); "
                "check the device's disk and its log, then run again with --resume"
            )
        if last.status in ("discarded", "missing"):
            assert self.journal is not None
            self._gone += 1
            self.journal.forget(episode_id)
            what = "discarded on the device" if last.status == "discarded" else "is gone from the device"
        else:
            self._finish(last, EpisodeFate.INTERRUPTED, note=f"ended on the device ({reason or last.status})")
            what = (
                f"ended on the device ({reason or last.status}) {at}; it stays there, left out of the dataset"
            )
        self._event(f"episode {number} {what}; it is recorded again")
        return EpisodeEnd.RERECORD

    def _left_mode(self, number: int, started: float, snap: DeviceSnapshot) -> EpisodeEnd:
        """The device dropped out of the session's mode mid-episode (a fault holds the arm): re-record."""
        warning = snap.latest_warning()
        stopped = self._stop_current(number, started)
        if isinstance(stopped, EpisodeEnd):
            return stopped
        self._finish(stopped, EpisodeFate.INTERRUPTED, note=f"the device left {self.options.mode.value} mode")
        why = f" ({warning.code}: {warning.message})" if warning else ""
        self._event(
            f"episode {number}: the device went to {snap.mode or '?'} mode {stopped.duration_s:.1f} s into it{why}; "
            "the episode stays on the device, left out of the dataset, and is recorded again"
        )
        return EpisodeEnd.RERECORD

    def _lost_during_episode(self, number: int, started: float) -> EpisodeEnd | None:
        """Wait for the device, then tell what became of the episode: None when it is still recording."""
        assert self._recording is not None and self.journal is not None
        episode_id = self._recording.episode_id
        lost_at = self.poller.failing_since or self.clock()
        self._event(
            f"the device stopped answering {lost_at - started:.1f} s into episode {number}; reconnecting"
        )
        snap, restarted = self._await_device()
        outage = self.clock() - lost_at
        if snap.recording(episode_id):
            self._event(f"the device kept recording episode {number} through the {outage:.0f} s outage")
            return None
        self._recording = None
        cause = "the device restarted" if restarted else "the device stopped recording"
        return self._settle_cut_episode(number, episode_id, cause)

    def _settle_cut_episode(self, number: int, episode_id: str, cause: str) -> EpisodeEnd:
        """The episode ended while the session was not looking (an outage, a restart): keep it when the device
        ended it at the limit this session asked for, otherwise leave it out and record the number again."""
        assert self.journal is not None
        stored = self._through_outages(lambda: self.control.stored_episode(episode_id))
        if stored is not None and stored.stop_reason == MAX_DURATION_REASON:
            info = EpisodeInfo(episode_id, stored.status, frames=stored.frames, duration_s=stored.duration_s)
            return self._kept_at_device_limit(number, info)
        if stored is None:
            self._gone += 1
            self.journal.forget(episode_id)
            self._event(f"episode {number}: {cause}, and the episode is gone from it; it is recorded again")
        else:
            self.journal.finish(
                episode_id,
                EpisodeFate.INTERRUPTED,
                frames=stored.frames,
                duration_s=stored.duration_s,
                note=f"{cause} during it",
            )
            kept_as = {"recovered": "recovered", "complete": "closed"}.get(
                stored.status, f"marked ({stored.status})"
            )
            self._event(
                f"episode {number}: {cause} during it; the device {kept_as} it with {stored.frames} frames "
                f"({stored.duration_s:.1f} s) and keeps it, but it is left out of the dataset and episode "
                f"{number} is recorded again"
            )
        return EpisodeEnd.RERECORD

    def _kept_at_device_limit(self, number: int, info: EpisodeInfo) -> EpisodeEnd:
        """The device ended the episode at the max duration this session asked for: it is whole, keep it."""
        self._finish(info, EpisodeFate.KEPT, note="ended by the device at the session's max duration")
        self._event(
            f"episode {number} kept: the device ended it by itself at {info.duration_s:.1f} s ({info.frames} "
            f"frames), the limit this session set, as the session could not stop it in time"
        )
        return EpisodeEnd.KEPT

    def _device_limit_s(self) -> float:
        """The max duration asked for at each start: the episode's length plus a margin for a late stop."""
        return min(self.options.episode_time_s + self.options.device_limit_margin_s, DEVICE_MAX_DURATION_S)

    # -- between episodes ---------------------------------------------------------------------------------

    def _reset_period(self, just_kept: JournalEntry | None) -> None:
        if self.options.reset_time_s <= 0:
            return
        if self.options.mode is RecordMode.POLICY:
            self._hold("reset period")  # the arm keeps still while the person resets the scene
        self.model.phase = Phase.RESET
        self.model.number = self.journal.next_number if self.journal else 0
        self.model.time_total_s = self.options.reset_time_s
        deadline = self.clock() + self.options.reset_time_s
        self.model.can_rerecord = just_kept is not None
        self._event(f"reset the scene: {self.options.reset_time_s:g} s")
        try:
            self._count_down_reset(deadline, just_kept)
        finally:
            self.model.can_rerecord = False

    def _count_down_reset(self, deadline: float, just_kept: JournalEntry | None) -> None:
        while True:
            self.model.time_left_s = deadline - self.clock()
            if self.model.time_left_s <= 0:
                return
            for key in self._tick():
                if key == RIGHT:
                    self._event("reset skipped")
                    return
                if key == ESCAPE:
                    raise _StopSession
                if key == LEFT and just_kept is not None:
                    self._delete_stopped(just_kept.episode_id)
                    self.model.rerecorded += 1
                    self.model.number = just_kept.number
                    self._refresh_counts()
                    self._event(f"episode {just_kept.number} discarded; it is recorded again after the reset")
                    just_kept = None
                    self.model.can_rerecord = False
            if self.poller.lost_for() >= self.lost_after_s:
                self._await_device()
                self.model.phase = Phase.RESET

    def _maybe_sync_along(self) -> None:
        """--pull-every K: once K more episodes are kept, pull and convert them while recording goes on."""
        every = self.options.pull_every
        kept = self.journal.kept() if self.journal else []
        if every and len(kept) >= self._synced_at + every and not self.sync.busy:
            self._synced_at = len(kept)
            self.sync.start([e.episode_id for e in kept])
            self._event(f"pulling and converting {len(kept)} episode(s) in the background")

    # -- the device going away ----------------------------------------------------------------------------

    def _await_device(self) -> tuple[DeviceSnapshot, bool]:
        """Pause until the device answers again; returns its status and whether it restarted meanwhile."""
        self.model.phase = Phase.PAUSED
        since = self.clock()
        boot_before = self._boot_id
        while True:
            if ESCAPE in self._tick():
                raise DeviceLostError(
                    f"stopped waiting for the device after {self.clock() - since:.0f} s; the episodes kept so "
                    "far are safe on it: run again with --resume once it is back"
                )
            snap = self.poller.latest
            if snap is not None and self.poller.failing_since is None and snap.taken_at >= since:
                restarted = self._restarted_since(boot_before)
                self.model.connection = ""
                self._event("the device answers again" + (" (it restarted)" if restarted else ""))
                return snap, restarted
            if self.clock() - since > self.options.reconnect_timeout_s:
                raise DeviceLostError(
                    f"the device did not come back within {self.options.reconnect_timeout_s:g} s "
                    f"({self.poller.last_error}); the episodes kept so far are safe on it: run again with "
                    "--resume once it is back"
                )

    def _through_outages(self, call: Callable[[], _T]) -> _T:
        """Run a device call, waiting for the device (up to the reconnect timeout) each time it is gone."""
        while True:
            try:
                return call()
            except DeviceUnreachableError:
                self._await_device()

    def _fresh_snapshot(self) -> DeviceSnapshot:
        """A status read after now (the view and Esc stay live meanwhile), waiting for the device if it is gone."""
        asked = self.clock()
        self.poller.poke()
        while True:
            snap = self.poller.latest
            if snap is not None and snap.taken_at >= asked:
                return snap
            if self.poller.lost_for() >= self.lost_after_s:
                snap, _ = self._await_device()
                return snap
            if ESCAPE in self._tick():
                raise _StopSession

    # -- the end -------------------------------------------------------------------------------------------

    def _hold(self, why: str) -> bool:
        try:
            self.control.hold()
        except DeviceError as exc:
            self.model.warnings.append(f"could not put the device on hold ({why}): {exc}")
            return False
        return True

    def _hold_at_end(self, result: SessionResult) -> bool:
        held = self._hold("end of the session")
        if held:
            self._event("the device is idle and holding the arm")
        else:
            result.notes.append("the device could not be put on hold; use the device page to stop it")
        return held

    def _build_dataset(self) -> SyncReport | None:
        assert self.journal is not None
        kept = [e.episode_id for e in self.journal.kept()]
        self.model.phase = Phase.DATASET
        self.model.time_left_s = None
        if self.sync.busy:
            self._event("waiting for the background pull to finish")
            while self.sync.busy:
                self._tick(dataset_only=True)
        if not kept:
            self._event("no episode kept; no dataset written")
            return None
        self._event(f"pulling {len(kept)} episode(s) and converting them into {self.options.out_dir}")
        self.sync.start(kept)
        while self.sync.busy:
            self._tick(dataset_only=True)
        report = self.sync.last
        if report is None:
            raise RecordError(f"building the dataset failed: {self.sync.error}")
        if report.convert_error:
            self._event(f"the dataset was not written: {report.convert_error}")
        else:
            self._event(f"dataset ready: {self.options.out_dir}")
        return report

    def _abort(self, note: str) -> AbortReport:
        """Ctrl-C or a failure: stop the episode (kept on the device, left out), hold the arm, fix the journal."""
        journal = self.journal
        assert journal is not None
        stopped_entry: JournalEntry | None = None
        with _deferred_interrupts():
            self.sync.cancel.set()
            recording = self._recording
            if recording is not None:
                try:
                    info = self.control.stop_episode(timeout_s=5.0)
                except DeviceError:
                    info = None
                if info is not None:
                    stopped_entry = journal.finish(
                        info.episode_id,
                        EpisodeFate.INTERRUPTED,
                        frames=info.frames,
                        duration_s=info.duration_s,
                        note=note,
                    )
                self._recording = None
            elif journal.in_progress is not None:
                # Stopped already (e.g. while the keep-or-discard question was open): left out, not lost.
                entry = journal.in_progress
                stopped_entry = journal.finish(entry.episode_id, EpisodeFate.INTERRUPTED, note=note)
            held, hold_error = True, ""
            try:
                self.control.hold(timeout_s=5.0)
            except DeviceError as exc:
                held, hold_error = False, str(exc)
            self.view.close()
        return AbortReport(held, hold_error, stopped_entry, journal.kept(), str(journal.path))

    # -- helpers ------------------------------------------------------------------------------------------

    def _tick(self, *, dataset_only: bool = False) -> list[str]:
        """One pass of the loop: read keys (waiting at most a tick), refresh the model, redraw."""
        keys = self.keys.read(self.tick_s)
        if self.poller.auth_error is not None:
            raise self.poller.auth_error
        snap = self.poller.latest
        if snap is not None:
            self.model.snapshot = snap
            if snap.boot_id:
                self._boot_id = snap.boot_id
        lost = self.poller.lost_for()
        if lost >= self.lost_after_s:
            retry = ""
            if self.poller.next_try_at is not None:
                retry = f"; next try in {max(0.0, self.poller.next_try_at - time.monotonic()):.0f} s"
            self.model.connection = f"unreachable for {lost:.0f} s ({_short(self.poller.last_error)}){retry}"
        else:
            self.model.connection = ""
        self.model.dataset_line = self.sync.line
        self.view.update(self.model)
        return [] if dataset_only else keys

    def _restarted_since(self, boot_id: str) -> bool:
        """True when the device's daemon answered with another boot id than `boot_id` (it restarted)."""
        snap = self.poller.latest
        return bool(boot_id and snap is not None and snap.boot_id and snap.boot_id != boot_id)

    def _finish(self, info: EpisodeInfo, fate: EpisodeFate, *, note: str = "") -> None:
        assert self.journal is not None
        self.journal.finish(info.episode_id, fate, frames=info.frames, duration_s=info.duration_s, note=note)
        self._refresh_counts()

    def _refresh_counts(self) -> None:
        if self.journal is not None:
            self.model.kept = len(self.journal.kept())
            self.model.interrupted = len(self.journal.interrupted()) + self._gone

    def _event(self, text: str) -> None:
        self._refresh_counts()
        self.view.event(self.model, text)


def _space(n: int | None) -> str:
    return "unknown" if n is None else f"{n / 1e6:,.0f} MB"


def _short(message: str) -> str:
    return message if len(message) <= 90 else message[:89] + "…"


def _writable(folder: Path) -> bool:
    probe = folder / f".spinal-record-probe-{time.monotonic_ns()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def _deferred_interrupts() -> Iterator[None]:
    """Hold back a second Ctrl-C (or SIGTERM) while the device is being put on hold (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

"""`SessionDataset`: the session's kept episodes pulled off the device and converted into the LeRobotDataset.

The same code as `spinal device pull` (`pull_episodes`) and `spinal dataset convert` (`convert_recordings`).
The dataset is converted into a temporary folder and swapped into place, so a failed or interrupted
conversion leaves the previous dataset as it was. Used by `RecordSession` at the end and with `--pull-every`.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from spinal.dataset import ConversionError, ConvertOptions, ConvertReport, convert_recordings
from spinal.dataset.video import VideoError
from spinal.device import DeviceClient, DeviceError
from spinal.device.pull import MARKER_FILE, pull_episodes

LEFT_OUT_DIR = ".left-out"  # pulled episodes the session no longer keeps are moved here, never deleted

Progress = Callable[[str, float], None]


@dataclass
class SyncReport:
    """What one pull + convert did."""

    episode_ids: list[str]
    pulled: list[str] = field(default_factory=list)
    already_here: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)  # kept episodes that could not be pulled, with why
    convert: ConvertReport | None = None
    convert_error: str = ""
    converted_again: bool = False

    @property
    def ok(self) -> bool:
        return not self.missing and not self.convert_error and not (self.convert and self.convert.failed)


class SessionDataset:
    """Pulls episode ids into `raw_dir` and converts them into `out_dir`."""

    def __init__(
        self,
        client: DeviceClient,
        raw_dir: Path,
        out_dir: Path,
        *,
        repo_id: str,
        workers: int = 2,
    ) -> None:
        self.client = client
        self.raw_dir = Path(raw_dir)
        self.out_dir = Path(out_dir)
        self.repo_id = repo_id
        self.workers = workers
        self.converted_ids: tuple[str, ...] | None = None
        self.last_convert: ConvertReport | None = None

    def sync(
        self,
        episode_ids: Sequence[str],
        *,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> SyncReport:
        """Pull what is not here yet, then convert when the set of episodes changed since the last time."""
        emit = progress or (lambda kind, value: None)
        wanted = sorted(set(episode_ids))
        report = SyncReport(list(wanted))
        if wanted:
            emit("pulling", 0)
            try:
                pulled = pull_episodes(
                    self.client,
                    self.raw_dir,
                    only=wanted,
                    cancel=cancel,
                    progress=lambda kind, value: emit(f"pull_{kind}", value if isinstance(value, int) else 0),
                )
            except DeviceError as exc:
                report.missing = {e: str(exc) for e in wanted if not self.has_local(e)}
            else:
                report.pulled = list(pulled.pulled)
                report.already_here = list(pulled.skipped)
                for episode_id, reason in {**pulled.failed, **pulled.not_offered}.items():
                    if not self.has_local(episode_id):  # gone from the device but pulled earlier: fine
                        report.missing[episode_id] = reason
        self._set_aside_others(wanted)
        present = tuple(e for e in wanted if self.has_local(e))
        if not present:
            report.convert_error = "no kept episode is available to convert"
            return report
        if present == self.converted_ids and self.out_dir.exists():
            report.convert = self.last_convert  # nothing changed since the last conversion
            return report
        emit("converting", 0)
        try:
            report.convert = self._convert(lambda kind, amount: emit(f"convert_{kind}", amount))
        except (ConversionError, VideoError, OSError) as exc:
            report.convert_error = str(exc)
            return report
        report.converted_again = True
        self.converted_ids = present
        self.last_convert = report.convert
        return report

    def has_local(self, episode_id: str) -> bool:
        folder = self.raw_dir / episode_id
        return (folder / MARKER_FILE).is_file() and (folder / "episode.json").is_file()

    def _set_aside_others(self, wanted: list[str]) -> None:
        """Episodes pulled earlier but no longer kept (a resumed session re-recorded them) leave the input."""
        if not self.raw_dir.is_dir():
            return
        keep = set(wanted)
        for folder in self.raw_dir.iterdir():
            if folder.is_dir() and (folder / "episode.json").is_file() and folder.name not in keep:
                target = self.raw_dir / LEFT_OUT_DIR / folder.name
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.exists():
                    shutil.rmtree(target)
                folder.rename(target)

    def _convert(self, progress: Callable[[str, float], None]) -> ConvertReport:
        tmp = self.out_dir.with_name(f".{self.out_dir.name}.converting")
        old = self.out_dir.with_name(f".{self.out_dir.name}.previous")
        shutil.rmtree(tmp, ignore_errors=True)
        report = convert_recordings(
            self.raw_dir,
            tmp,
            ConvertOptions(repo_id=self.repo_id, workers=self.workers),
            progress,
        )
        shutil.rmtree(old, ignore_errors=True)
        if self.out_dir.exists():
            self.out_dir.rename(old)
        tmp.rename(self.out_dir)
        shutil.rmtree(old, ignore_errors=True)
        report.output = self.out_dir
        return report


class SyncProgress:
    """Accumulates a sync's progress events into one short line for the view."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.line = ""

    def __call__(self, kind: str, value: float) -> None:
        if kind in ("pull_bytes", "convert_frames"):
            self.totals[kind] = self.totals.get(kind, 0.0) + float(value)
        else:
            self.totals[kind] = float(value)
        if kind.startswith("pull") or kind == "pulling":
            done, total = self.totals.get("pull_bytes", 0.0), self.totals.get("pull_total_bytes", 0.0)
            self.line = f"pulling {done / 1e6:.1f}/{total / 1e6:.1f} MB" if total else "pulling"
        else:
            done, total = self.totals.get("convert_frames", 0.0), self.totals.get("convert_total", 0.0)
            self.line = f"converting {done:.0f}/{total:.0f} frames" if total else "converting"


class BackgroundSync:
    """One `SessionDataset.sync` at a time on its own thread (`--pull-every`), with a line for the view."""

    def __init__(self, dataset: SessionDataset) -> None:
        self.dataset = dataset
        self.cancel = threading.Event()
        self.last: SyncReport | None = None
        self.error = ""
        self._done_line = ""
        self._progress: SyncProgress | None = None
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def line(self) -> str:
        if self.busy and self._progress is not None:
            return self._progress.line
        return self._done_line

    def start(self, episode_ids: Sequence[str]) -> bool:
        if self.busy:
            return False
        self._progress = SyncProgress()
        self.last, self.error = None, ""
        self._thread = threading.Thread(
            target=self._run, args=(list(episode_ids),), name="spinal-record-sync", daemon=True
        )
        self._thread.start()
        return True

    def wait(self, timeout_s: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout_s)
        return not self.busy

    def _run(self, ids: list[str]) -> None:
        try:
            report = self.dataset.sync(ids, progress=self._progress, cancel=self.cancel)
        except Exception as exc:  # a background job must never take the session down
            self.error = str(exc)
            self._done_line = f"failed: {exc}"
            return
        self.last = report
        self.error = report.convert_error
        if report.convert_error:
            self._done_line = f"failed: {report.convert_error}"
        elif report.missing:
            self._done_line = f"{len(report.missing)} episode(s) could not be pulled"
        else:
            self._done_line = f"{len(ids)} episode(s) pulled and converted"

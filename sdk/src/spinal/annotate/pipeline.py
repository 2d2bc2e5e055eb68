"""The annotation run: pick episodes (and a shard), run the modules per episode into staging with resume,
validate everything staged, then write the language columns. Driven by `spinal annotate`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spinal.annotate.backends import make_backend
from spinal.annotate.backends.base import Answer, LabelBackend, LabelRequest
from spinal.annotate.backends.stub import StubBackend
from spinal.annotate.errors import AnnotateError, BackendError, SettingsError, ValidationFailed
from spinal.annotate.job import EpisodeJob
from spinal.annotate.modules import MODULES, AnnotationModule
from spinal.annotate.settings import AnnotateSettings
from spinal.annotate.staging import STAGING_DIRNAME, Staging
from spinal.annotate.validator import ValidationReport, validate_episode
from spinal.language.columns import WriteReport, write_language_columns
from spinal.language.errors import LanguageError
from spinal.language.schema import LANGUAGE_PERSISTENT
from spinal.language.v3_dataset import V3Dataset

Progress = Callable[[int, str], None]


@dataclass
class RunSummary:
    """What a run did, for the CLI to print and tests to check."""

    episodes: list[int] = field(default_factory=list)
    annotated: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    modules_run: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    validation: ValidationReport | None = None
    write: WriteReport | None = None
    backend_stats: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and (self.validation is None or self.validation.ok)


def parse_shard(text: str) -> tuple[int, int]:
    """`i/n` → (i, n) with 0 <= i < n."""
    try:
        i_text, n_text = text.split("/")
        i, n = int(i_text), int(n_text)
    except ValueError:
        raise SettingsError(f"--shard must look like i/n (e.g. 0/4); got {text!r}.") from None
    if n < 1 or not 0 <= i < n:
        raise SettingsError(f"--shard {text}: need 0 <= i < n.")
    return i, n


class AnnotationPipeline:
    """Annotates one dataset with one backend; staging lives in `<dataset>/.annotate_staging` by default."""

    def __init__(
        self,
        root: str | Path,
        settings: AnnotateSettings | None = None,
        *,
        backend: LabelBackend | None = None,
        staging_dir: str | Path | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.dataset = V3Dataset(root)
        self.settings = settings or AnnotateSettings()
        self.backend = backend if backend is not None else make_backend(self.settings.vlm)
        self.staging = Staging(staging_dir or self.dataset.root / STAGING_DIRNAME)
        self.progress = progress or (lambda episode, status: None)
        self.modules: list[AnnotationModule] = [m for m in MODULES if m.enabled(self.settings)]
        self._fingerprints = self._module_fingerprints()

    # ---- setup -------------------------------------------------------------------------------------------

    def _module_fingerprints(self) -> dict[str, str]:
        fps: dict[str, str] = {}
        for module in MODULES:
            parts = [module.name, module.settings_fingerprint(self.settings), self.backend.identity()]
            parts += [fps.get(dep, "") for dep in module.depends_on]
            fps[module.name] = hashlib.blake2b("|".join(parts).encode(), digest_size=8).hexdigest()
        return fps

    def plan_camera(self) -> str | None:
        cameras = self.dataset.camera_keys
        if self.settings.camera is not None:
            if self.settings.camera not in cameras:
                raise SettingsError(
                    f"--camera {self.settings.camera} is not a camera of this dataset; use one of {cameras}."
                )
            return self.settings.camera
        return cameras[0] if cameras else None

    def vqa_cameras(self) -> list[str]:
        cameras = self.dataset.camera_keys
        wanted = self.settings.vqa.cameras or cameras
        unknown = [c for c in wanted if c not in cameras]
        if unknown:
            raise SettingsError(f"VQA camera(s) {unknown} are not in this dataset; use some of {cameras}.")
        return list(wanted)

    def check(self) -> None:
        """Refuse a run that cannot work, before any request is sent."""
        for module in self.modules:
            unsupported = [k for k in module.kinds if not self.backend.supports(k)]
            if unsupported:
                raise SettingsError(
                    f"The {self.backend.name} backend cannot label {module.name} ({', '.join(unsupported)}); "
                    f"disable it (--no-{module.name.replace('_', '-')}) or use another backend."
                )
        uses_frames = any(m.name in ("subtasks", "interjections") for m in self.modules)
        if uses_frames and self.backend.wants_images and self.plan_camera() is None:
            raise SettingsError(
                "This dataset has no video features to show the VLM; pass --camera or disable subtasks."
            )
        if any(m.name == "vqa" for m in self.modules) and not self.vqa_cameras():
            raise SettingsError("VQA is enabled but the dataset records no camera; disable it with --no-vqa.")

    def select_episodes(
        self, only: Sequence[int] | None = None, shard: tuple[int, int] | None = None
    ) -> list[int]:
        episodes = self.dataset.episode_indices
        if only:
            unknown = sorted(set(only) - set(episodes))
            if unknown:
                raise SettingsError(f"Episode(s) {unknown} are not in this dataset (it has {len(episodes)}).")
            episodes = sorted(set(only))
        if shard is not None:
            i, n = shard
            episodes = episodes[i::n]
        return episodes

    # ---- annotate ----------------------------------------------------------------------------------------

    def _job(self, episode: int) -> EpisodeJob:
        return EpisodeJob(
            frames=self.dataset.episode(episode),
            settings=self.settings,
            backend=self.backend,
            plan_camera=self.plan_camera(),
            vqa_cameras=self.vqa_cameras() if self.settings.vqa.enabled else [],
        )

    def annotate_episode(self, episode: int) -> tuple[list[str], list[str]]:
        """Run the enabled modules on one episode, skipping those already staged with the same settings.

        Returns (modules run, warnings)."""
        job = self._job(episode)
        ran: list[str] = []
        for module in self.modules:
            fingerprint = self._fingerprints[module.name]
            staged = self.staging.read(episode, module.name)
            if staged is not None and staged.fingerprint == fingerprint:
                job.staged[module.name] = staged.rows
                continue
            for dep in module.depends_on:
                if dep not in job.staged:
                    previous = self.staging.read(episode, dep)
                    job.staged[dep] = previous.rows if previous is not None else []
            rows = module.run(job)
            self.staging.write(episode, module.name, rows, fingerprint)
            job.staged[module.name] = rows
            ran.append(module.name)
        return ran, job.warnings

    def annotate(self, episodes: Sequence[int]) -> RunSummary:
        """Stage annotations for `episodes` (in parallel); failures are recorded per episode, not raised.

        Once the backend itself fails (unreachable, 5xx after retries), episodes not yet started are not
        attempted: a rerun resumes them when the endpoint is back."""
        self.check()
        self.staging.remove_stale_temp_files()
        summary = RunSummary(episodes=list(episodes))
        start = time.perf_counter()
        backend_down = threading.Event()

        def guarded(ep: int) -> tuple[list[str], list[str]]:
            if backend_down.is_set():
                raise _NotAttempted
            try:
                return self.annotate_episode(ep)
            except BackendError:
                backend_down.set()  # set here, before this worker takes the next episode
                raise

        workers = max(1, min(self.settings.parallel_episodes(), len(episodes) or 1))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="annotate-episode") as pool:
            futures = {pool.submit(guarded, ep): ep for ep in episodes}
            for future in as_completed(futures):
                ep = futures[future]
                try:
                    ran, warnings = future.result()
                except _NotAttempted:
                    summary.failed[ep] = "not attempted: the labelling backend failed on another episode"
                    self.progress(ep, "failed")
                    continue
                except (AnnotateError, LanguageError) as exc:
                    summary.failed[ep] = str(exc)
                    self.progress(ep, "failed")
                    continue
                except Exception as exc:  # a bug in one episode must not lose the others' work
                    summary.failed[ep] = f"{type(exc).__name__}: {exc}"
                    self.progress(ep, "failed")
                    continue
                summary.warnings.extend(warnings)
                summary.modules_run.update(ran)
                (summary.annotated if ran else summary.skipped).append(ep)
                self.progress(ep, "annotated" if ran else "skipped")
        summary.annotated.sort()
        summary.skipped.sort()
        summary.backend_stats = self.backend.stats.as_dict()
        summary.elapsed_s = time.perf_counter() - start
        return summary

    # ---- validate and write ------------------------------------------------------------------------------

    def staged_rows(self, episode: int) -> dict[str, list[dict[str, Any]]]:
        known = {m.name for m in MODULES}
        out: dict[str, list[dict[str, Any]]] = {}
        for name in self.staging.modules(episode):
            if name in known:
                staged = self.staging.read(episode, name)
                if staged is not None:
                    out[name] = staged.rows
        return out

    def validate(self) -> ValidationReport:
        """Validate every staged episode of this dataset."""
        report = ValidationReport()
        columns = {m.name: m.column for m in MODULES}
        episodes = set(self.dataset.episode_indices)
        for ep in self.staging.episodes():
            if ep not in episodes:
                report.errors.append(
                    f"episode {ep} is staged but not in the dataset; remove its staging folder"
                )
                continue
            frames = self.dataset.episode(ep)
            report.extend(
                validate_episode(
                    ep,
                    self.staged_rows(ep),
                    frame_times=[float(t) for t in frames.timestamps],
                    camera_keys=self.dataset.camera_keys,
                    module_columns=columns,
                )
            )
        return report

    def write(self, *, skip_validation: bool = False) -> tuple[ValidationReport, WriteReport]:
        """Validate (unless skipped) and write all staged rows into the dataset's language columns."""
        report = self.validate()
        if not report.ok and not skip_validation:
            raise ValidationFailed(report.errors)
        columns = {m.name: m.column for m in MODULES}
        persistent: dict[int, list[dict[str, Any]]] = {}
        events: dict[int, list[dict[str, Any]]] = {}
        for ep in self.staging.episodes():
            if ep not in set(self.dataset.episode_indices):
                continue
            for module, rows in self.staged_rows(ep).items():
                target = persistent if columns[module] == LANGUAGE_PERSISTENT else events
                target.setdefault(ep, []).extend(rows)
        return report, write_language_columns(self.dataset.root, persistent, events)

    def run(
        self,
        *,
        only: Sequence[int] | None = None,
        shard: tuple[int, int] | None = None,
        write: bool = True,
        skip_validation: bool = False,
    ) -> RunSummary:
        """Annotate, then (unless sharded or told not to) validate and write."""
        summary = self.annotate(self.select_episodes(only, shard))
        if write and shard is None and not summary.failed:
            summary.validation, summary.write = self.write(skip_validation=skip_validation)
        return summary

    # ---- dry run -----------------------------------------------------------------------------------------

    def dry_run(self, episodes: Sequence[int]) -> list[LabelRequest]:
        """The requests a run would send for `episodes`; replies are simulated by the stub so follow-up prompts
        (memory, interjections) show too. Nothing is sent, staged or written."""
        recorder = _RecordingBackend(wants_images=self.backend.wants_images, inner=self.backend)
        real, self.backend = self.backend, recorder
        try:
            self.check()
            for ep in episodes:
                job = self._job(ep)
                for module in self.modules:
                    job.staged[module.name] = module.run(job)
        finally:
            self.backend = real
        return recorder.requests

    def close(self) -> None:
        self.backend.close()


class _NotAttempted(Exception):
    """An episode skipped because the backend already failed on another one."""


class _RecordingBackend:
    """Records requests and answers them with the stub (or the manual labels, which send nothing anyway)."""

    name = "dry-run"

    def __init__(self, *, wants_images: bool, inner: LabelBackend) -> None:
        self.wants_images = wants_images
        self.inner = inner
        self.stub = StubBackend()
        self.stats = self.stub.stats
        self.requests: list[LabelRequest] = []

    def identity(self) -> str:
        return "dry-run"

    def supports(self, kind: str) -> bool:
        return self.inner.supports(kind)

    def answer(self, requests: Sequence[LabelRequest]) -> list[Answer | None]:
        self.requests.extend(requests)
        if self.inner.name == "manual":
            return self.inner.answer(requests)
        return self.stub.answer(requests)

    def interjection_times(self, episode: int, boundaries: Sequence[float]) -> list[float] | None:
        return self.inner.interjection_times(episode, boundaries)

    def close(self) -> None:
        pass

"""`PolicyRuntime`: one loaded model plus its canonical pre/post-processing, usable without any network.

The server's inference worker drives it; the edge's LocalEngine imports it to compute the very same chunks in-process.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from spinal.protocol import DEFAULT_LIMITS, DecodeLimits, Observation

from spinal_server.backends import ModelBackend, detect_format, load_backend
from spinal_server.backends.base import BackendCapabilities
from spinal_server.errors import InferenceError, ModelLoadError
from spinal_server.manifest import Manifest
from spinal_server.processing import ModelInput, Postprocessor, Preprocessor, SessionProcessorState
from spinal_server.sidecar import PolicySpec, load_sidecar, sidecar_path_for

log = logging.getLogger("spinal_server.runtime")


class PolicyRuntime:
    """A model backend and its sidecar: observation in, `(chunk_model, chunk_robot)` out.

    Thread-safety: `prepare`/`finish` are safe from any thread given distinct session states; `forward`
    must be called by one thread at a time (the server's inference worker).
    """

    def __init__(
        self,
        backend: ModelBackend,
        spec: PolicySpec,
        *,
        model_path: Path,
        fingerprint: str,
        limits: DecodeLimits = DEFAULT_LIMITS,
        default_task: str = "",
    ) -> None:
        self.backend = backend
        self.spec = spec
        self.model_path = Path(model_path)
        self.fingerprint = fingerprint
        self.default_task = default_task
        self.preprocess = Preprocessor(spec, limits)
        self.postprocess = Postprocessor(spec)

    # ---- construction -----------------------------------------------------------------------------

    @classmethod
    def from_manifest(cls, manifest: Manifest, *, limits: DecodeLimits = DEFAULT_LIMITS) -> PolicyRuntime:
        """Load `manifest.model` (format, device, dtype, revision, sidecar) exactly as the server does."""
        m = manifest.model
        return cls.from_model_path(
            m.path,
            fmt=m.format,
            device=m.device,
            dtype=m.dtype,
            sidecar=m.sidecar,
            revision=m.revision,
            threads=m.threads,
            limits=limits,
            default_task=manifest.default_task,
        )

    @classmethod
    def from_model_path(
        cls,
        path: str | Path,
        *,
        fmt: str = "auto",
        device: str = "cpu",
        dtype: str | None = None,
        sidecar: str | Path | None = None,
        revision: str | None = None,
        threads: int = 0,
        limits: DecodeLimits = DEFAULT_LIMITS,
        default_task: str = "",
    ) -> PolicyRuntime:
        """Load a model file (or LeRobot directory) with the `policy.json` beside it (or `sidecar`)."""
        path = Path(path)
        if not path.exists():
            raise ModelLoadError(f"model {path} does not exist; check model.path")
        fmt = detect_format(path) if fmt == "auto" else fmt
        if fmt == "lerobot" and sidecar is None:
            from spinal_server.backends.lerobot_backend import spec_from_checkpoint

            spec = spec_from_checkpoint(path)
        else:
            spec = load_sidecar(Path(sidecar) if sidecar else sidecar_path_for(path))
        fingerprint = model_fingerprint(path, spec)
        if fmt != "lerobot":  # lerobot resolves the revision itself (from_pretrained(revision=...))
            _check_revision(revision, spec, fingerprint, path)
        preprocess = Preprocessor(spec, limits)
        backend = load_backend(
            path,
            spec,
            fmt=fmt,
            device=device,
            dtype=dtype,
            threads=threads,
            revision=revision,
            example=lambda batch: _stack(
                [preprocess(example_observation(spec), SessionProcessorState())] * batch
            ),
        )
        runtime = cls(
            backend, spec, model_path=path, fingerprint=fingerprint, limits=limits, default_task=default_task
        )
        runtime.check_output_shape()
        return runtime

    # ---- the request path ---------------------------------------------------------------------------

    @property
    def capabilities(self) -> BackendCapabilities:
        return self.backend.capabilities

    @property
    def supports_rtc(self) -> bool:
        return self.spec.rtc.supported and self.capabilities.supports_rtc

    def new_session_state(self) -> SessionProcessorState:
        """Fresh per-session processor state; keep one per robot session."""
        return SessionProcessorState()

    def prepare(self, obs: Observation, state: SessionProcessorState, *, rtc: bool = False) -> ModelInput:
        """Decode, resize and normalize one observation; caches what postprocessing needs in `state`."""
        return self.preprocess(obs, state, rtc=rtc and self.supports_rtc)

    def forward(self, inputs: Sequence[ModelInput], *, tasks: Sequence[str] | None = None) -> np.ndarray:
        """One model call over prepared observations; returns float32 `[len(inputs), chunk_size, action_dim]`."""
        if not inputs:
            raise InferenceError("forward needs at least one prepared observation")
        if len(inputs) > 1 and not self.capabilities.batchable:
            raise InferenceError(
                f"{self.backend.name} model takes one observation per forward, got {len(inputs)}"
            )
        out = self.backend.run(_stack(inputs), tasks=tasks)
        expected = (len(inputs), self.spec.chunk_size, self.spec.action_dim)
        if out.shape != expected:
            raise InferenceError(
                f"model returned a chunk of shape {out.shape}; policy.json promises {expected} "
                "(batch, chunk_size, len(action_names))"
            )
        if not np.all(np.isfinite(out)):
            raise InferenceError("model returned NaN or infinity in its action chunk")
        return out

    def finish(self, chunk_model: np.ndarray, state: SessionProcessorState) -> np.ndarray:
        """Model-space chunk -> robot-space chunk for the session whose `prepare` filled `state`."""
        return self.postprocess(chunk_model, state)

    def infer(
        self,
        obs: Observation,
        state: SessionProcessorState | None = None,
        *,
        rtc: bool = True,
        task: str | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Prepare, forward at batch 1, finish: `(chunk_model, chunk_robot)`, both float32 `[H, A]`."""
        state = state if state is not None else self.new_session_state()
        prepared = self.prepare(obs, state, rtc=rtc)
        chunk_model = self.forward([prepared], tasks=[task or obs.task or self.default_task])[0]
        return chunk_model, self.finish(chunk_model, state)

    def reset_session(self, state: SessionProcessorState, episode_id: int | None = None) -> None:
        """An episode boundary for one session (never touches the shared model in shared mode)."""
        state.reset()
        state.episode_id = episode_id if episode_id is not None else state.episode_id + 1

    # ---- start-up -----------------------------------------------------------------------------------

    def check_output_shape(self) -> None:
        """Run the synthetic observation once; a chunk that disagrees with policy.json refuses to load."""
        try:
            self.infer(example_observation(self.spec), rtc=False)
        except InferenceError as exc:
            raise ModelLoadError(f"model {self.model_path.name} does not match policy.json: {exc}") from None

    def warmup(self, count: int) -> float:
        """`count` synthetic forwards (RTC ones too, when supported); returns the mean forward time in ms."""
        times = []
        for i in range(count):
            obs = example_observation(self.spec, rtc_prefix=self.supports_rtc and i % 2 == 1)
            t0 = time.perf_counter()
            self.infer(obs, rtc=True)
            times.append((time.perf_counter() - t0) * 1000)
        return float(np.mean(times)) if times else 0.0

    def describe(self) -> dict[str, object]:
        caps = self.capabilities
        return {
            "model": str(self.model_path),
            "backend": self.backend.name,
            "device": caps.device,
            "detail": caps.detail,
            "batchable": caps.batchable,
            "supports_rtc": self.supports_rtc,
            "chunk_stateless": caps.chunk_stateless,
            "fingerprint": self.fingerprint,
        }


def example_observation(spec: PolicySpec, *, rtc_prefix: bool = False) -> Observation:
    """A synthetic observation shaped like the policy's inputs (mid-grey frames at model size, zero state)."""
    images = {name: np.full((cam.height, cam.width, 3), 128, np.uint8) for name, cam in spec.cameras.items()}
    prefix = np.zeros((spec.rtc.execution_horizon, spec.action_dim), np.float32) if rtc_prefix else None
    return Observation(
        state=np.zeros(spec.state_dim, np.float32) if spec.state_dim else None,
        images=images,
        inference_delay_steps=1 if rtc_prefix else 0,
        prefix_model=prefix,
        jpeg_quality=0,
    )


def model_fingerprint(path: Path, spec: PolicySpec) -> str:
    """`sha256:<16 hex>` over the model's bytes and its sidecar: two servers with equal prints serve one policy."""
    digest = hashlib.sha256()
    files = sorted(p for p in Path(path).rglob("*") if p.is_file()) if Path(path).is_dir() else [Path(path)]
    for file in files:
        digest.update(file.name.encode())
        with file.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    digest.update(json.dumps(spec.model_dump(mode="json"), sort_keys=True).encode())
    return "sha256:" + digest.hexdigest()[:16]


def _check_revision(revision: str | None, spec: PolicySpec, fingerprint: str, path: Path) -> None:
    """model.revision is honoured: `sha256:<prefix>` must match the fingerprint, a name must match policy.json."""
    if not revision or revision == "main":
        return
    if revision.startswith("sha256:"):
        if not fingerprint.startswith(revision) and not revision.startswith(fingerprint):
            raise ModelLoadError(
                f"model.revision {revision} does not match {path.name}, whose fingerprint is {fingerprint}"
            )
        return
    if spec.revision is None:
        raise ModelLoadError(
            f"model.revision {revision!r} was asked for but {path.name}'s policy.json records no revision; "
            f'add "revision": "{revision}" to it, or pin the model by fingerprint (model.revision: {fingerprint})'
        )
    if spec.revision != revision:
        raise ModelLoadError(
            f"model.revision {revision!r} was asked for but {path.name} is revision {spec.revision!r} "
            "(policy.json 'revision'); point model.path at that revision or fix model.revision"
        )


def _stack(inputs: Sequence[ModelInput]) -> dict[str, np.ndarray]:
    first = inputs[0].arrays
    if any(item.arrays.keys() != first.keys() for item in inputs):
        raise InferenceError("observations in one batch must have the same inputs")
    return {name: np.stack([item.arrays[name] for item in inputs]) for name in first}

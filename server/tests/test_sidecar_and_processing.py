"""The policy sidecar and the canonical pipeline: validation, normalization, resize, relative actions, RTC."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import simplejpeg
from spinal.protocol import EncodedImage, Observation
from spinal_server.errors import ObservationError, SidecarError
from spinal_server.generated_models import tiny_spec
from spinal_server.processing import (
    Postprocessor,
    Preprocessor,
    SessionProcessorState,
    normalize,
    resize_image,
    unnormalize,
)
from spinal_server.sidecar import FeatureStats, load_sidecar, parse_sidecar


def test_sidecar_round_trips_through_policy_json(tmp_path: Path) -> None:
    spec = tiny_spec(rtc=True, relative=True)
    (tmp_path / "policy.json").write_text(json.dumps(spec.model_dump(mode="json")))
    assert load_sidecar(tmp_path / "policy.json") == spec


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"action_names": []}, "action_names"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"normalization": {"state": {"mode": "mean_std", "mean": [0.0]}}}, "normalization.state"),
        (
            {"normalization": {"action": {"mode": "min_max", "min": [0.0] * 6, "max": [1.0] * 5}}},
            "normalization.action",
        ),
        ({"action_mode": "relative", "state_dim": 3}, "(top level)"),
        ({"rtc": {"supported": True}}, "(top level)"),
        ({"cameras": {"front": {"height": 0, "width": 10}}}, "cameras.front.height"),
        ({"image": {"std": [1.0, 0.0, 1.0]}}, "image.std"),
        ({"format_version": 9}, "(top level)"),
    ],
)
def test_invalid_sidecars_name_the_field(change: dict, field: str) -> None:
    raw = tiny_spec().model_dump(mode="json")
    raw.update(change)
    with pytest.raises(SidecarError) as err:
        parse_sidecar(raw, source="x/policy.json")
    assert f"field {field}" in str(err.value) and "x/policy.json" in str(err.value)


def test_missing_or_broken_sidecar_says_what_to_write(tmp_path: Path) -> None:
    with pytest.raises(SidecarError, match="is missing; write a policy.json"):
        load_sidecar(tmp_path / "policy.json")
    (tmp_path / "policy.json").write_text("{not json")
    with pytest.raises(SidecarError, match="not readable JSON"):
        load_sidecar(tmp_path / "policy.json")


@pytest.mark.parametrize(
    "stats",
    [
        FeatureStats(mode="mean_std", mean=[1.0, -2.0], std=[2.0, 0.5]),
        FeatureStats(mode="min_max", min=[-100.0, 0.0], max=[100.0, 50.0]),
        FeatureStats(mode="identity"),
    ],
)
def test_normalize_then_unnormalize_gives_back_robot_units(stats: FeatureStats) -> None:
    values = np.array([[10.0, 20.0], [-30.0, 5.0]], np.float32)
    np.testing.assert_allclose(unnormalize(normalize(values, stats), stats), values, rtol=1e-5, atol=1e-4)


def test_min_max_maps_the_range_to_minus_one_one() -> None:
    stats = FeatureStats(mode="min_max", min=[-100.0], max=[100.0])
    np.testing.assert_allclose(
        normalize(np.array([-100.0, 0.0, 100.0], np.float32)[:, None], stats)[:, 0], [-1, 0, 1], atol=1e-6
    )


def test_resize_keeps_flat_images_flat_and_gradients_ordered() -> None:
    flat = np.full((480, 640, 3), 77, np.uint8)
    out = resize_image(flat, 96, 128)
    assert out.shape == (96, 128, 3) and np.allclose(out, 77)
    ramp = np.tile(np.arange(640, dtype=np.float32)[None, :, None] * 255 / 639, (480, 1, 3)).astype(np.uint8)
    row = resize_image(ramp, 96, 128)[10, :, 0]
    assert np.all(np.diff(row) > 0) and row[0] < 5 and row[-1] > 250
    same = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    assert np.array_equal(resize_image(same, 48, 64), same.astype(np.float32))
    nearest = resize_image(np.kron(same, np.ones((2, 2, 1), np.uint8)), 48, 64, "nearest")
    assert np.array_equal(nearest, same.astype(np.float32))


def test_preprocess_decodes_jpeg_in_rgb_order_and_normalizes() -> None:
    spec = tiny_spec()
    red = np.zeros((480, 640, 3), np.uint8)
    red[..., 0] = 255
    jpeg = EncodedImage.jpeg(simplejpeg.encode_jpeg(red, quality=95, colorspace="RGB"))
    state = SessionProcessorState()
    model_in = Preprocessor(spec)(
        Observation(state=np.full(6, 10, np.float32), images={"front": jpeg}), state
    )
    image = model_in.arrays["observation.images.front"]
    assert image.shape == (3, 48, 64) and image.dtype == np.float32
    assert image[0].mean() > 0.95 and image[2].mean() < 0.05  # red stays red
    np.testing.assert_allclose(model_in.arrays["observation.state"], np.ones(6), atol=1e-6)  # (10 - 0) / 10
    np.testing.assert_array_equal(state.last_state, np.full(6, 10, np.float32))


@pytest.mark.parametrize(
    ("obs", "message"),
    [
        (Observation(state=np.zeros(6, np.float32)), "no image for camera 'front'"),
        (
            Observation(state=np.zeros(5, np.float32), images={"front": np.zeros((4, 4, 3), np.uint8)}),
            "has 5 values",
        ),
        (Observation(images={"front": np.zeros((4, 4, 3), np.uint8)}), "has no state"),
        (
            Observation(
                state=np.array([np.nan] * 6, np.float32), images={"front": np.zeros((4, 4, 3), np.uint8)}
            ),
            "NaN",
        ),
        (
            Observation(state=np.zeros(6, np.float32), images={"front": np.zeros((4, 4), np.uint8)}),
            "uint8 HWC RGB",
        ),
    ],
)
def test_observations_that_do_not_fit_the_policy_are_refused_clearly(obs: Observation, message: str) -> None:
    with pytest.raises(ObservationError, match=message):
        Preprocessor(tiny_spec())(obs, SessionProcessorState())


def test_relative_actions_are_anchored_on_their_own_sessions_state() -> None:
    spec = tiny_spec(relative=True)
    pre, post = Preprocessor(spec), Postprocessor(spec)
    image = {"front": np.zeros((48, 64, 3), np.uint8)}
    a, b = SessionProcessorState(), SessionProcessorState()
    pre(Observation(state=np.full(6, 2.0, np.float32), images=image), a)
    pre(Observation(state=np.full(6, 7.0, np.float32), images=image), b)
    chunk = np.zeros((10, 6), np.float32)
    assert np.allclose(post(chunk, a), 2.0) and np.allclose(post(chunk, b), 7.0)
    with pytest.raises(ObservationError):
        post(chunk, SessionProcessorState())


def test_rtc_prefix_is_padded_to_the_horizon_and_delay_clamped() -> None:
    spec = tiny_spec(rtc=True, chunk_size=10)
    pre = Preprocessor(spec)
    obs = Observation(
        state=np.zeros(6, np.float32),
        images={"front": np.zeros((48, 64, 3), np.uint8)},
        inference_delay_steps=9,
        prefix_model=np.ones((3, 6), np.float32),
    )
    arrays = pre(obs, SessionProcessorState(), rtc=True).arrays
    assert arrays["prefix"].shape == (5, 6) and arrays["prefix"][:3].all() and not arrays["prefix"][3:].any()
    assert int(arrays["inference_delay"]) == 3  # never longer than the prefix the client actually has
    off = pre(obs, SessionProcessorState(), rtc=False).arrays
    assert int(off["inference_delay"]) == 0 and not off["prefix"].any()
    bad = Observation(state=obs.state, images=obs.images, prefix_model=np.ones((3, 4), np.float32))
    with pytest.raises(ObservationError, match=r"prefix_model must be \[steps, 6\]"):
        pre(bad, SessionProcessorState(), rtc=True)


def test_relative_rtc_prefix_is_reanchored_on_the_new_state() -> None:
    spec = tiny_spec(rtc=True, relative=True, chunk_size=10)
    obs = Observation(
        state=np.full(6, 5.0, np.float32),
        images={"front": np.zeros((48, 64, 3), np.uint8)},
        inference_delay_steps=2,
        prefix_model=np.full(
            (2, 6), 99.0, np.float32
        ),  # ignored: robot-space prefix wins for relative policies
        prefix_robot=np.full((2, 6), 25.0, np.float32),
    )
    prefix = Preprocessor(spec)(obs, SessionProcessorState(), rtc=True).arrays["prefix"]
    np.testing.assert_allclose(prefix[:2], 2.0)  # (25 - 5) / std 10

"""The whole pipeline against a fake OpenAI-compatible server over real HTTP on 127.0.0.1: canned, malformed,
slow and failing replies."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from spinal.annotate import AnnotationPipeline, prompts
from spinal.annotate.backends.base import LabelRequest
from spinal.annotate.backends.openai_compat import OpenAICompatibleBackend
from spinal.annotate.errors import BackendError
from spinal.annotate.fake_server import FakeVlmServer
from spinal.annotate.synthetic import build_dataset
from spinal.language import LANGUAGE_PERSISTENT, iter_frame_language

KINDS = {"task_rephrasings", "subtasks", "memory", "initial_speech", "interjection", "vqa"}


def _run(dataset, settings):
    pipeline = AnnotationPipeline(dataset, settings)
    try:
        return pipeline.run()
    finally:
        pipeline.close()


def test_canned_replies_annotate_every_module_and_write(dataset, fake_vlm, openai_settings):
    summary = _run(dataset, openai_settings(fake_vlm, concurrency=4))
    assert summary.ok and summary.annotated == [0, 1]
    assert set(fake_vlm.kinds) == KINDS
    assert summary.backend_stats["requests"] == fake_vlm.requests
    styles = {r["style"] for f in iter_frame_language(dataset) for r in f.persistent + f.events}
    assert styles == {"task_aug", "subtask", "plan", "memory", "interjection", "vqa", None}


def test_replies_wrapped_in_think_and_fences_are_repaired_without_reprompts(dataset, openai_settings):
    with FakeVlmServer(mode="wrapped") as server:
        summary = _run(dataset, openai_settings(server))
    assert summary.ok
    assert summary.backend_stats["repaired"] == summary.backend_stats["requests"] > 0
    assert summary.backend_stats["reprompts"] == 0 and server.corrections == 0


def test_prose_reply_gets_one_corrective_reprompt(dataset, openai_settings):
    with FakeVlmServer(mode="garbage_first") as server:
        summary = _run(dataset, openai_settings(server))
    stats = summary.backend_stats
    assert summary.ok and stats["unusable"] == 0
    assert stats["reprompts"] == stats["requests"] == server.corrections
    assert server.requests == 2 * stats["requests"]


def test_hopeless_replies_are_skipped_after_one_reprompt(dataset, openai_settings):
    with FakeVlmServer(mode="garbage") as server:
        summary = _run(dataset, openai_settings(server, concurrency=4))
    stats = summary.backend_stats
    assert stats["unusable"] == stats["requests"] == server.corrections
    assert summary.warnings  # what was skipped is reported
    rows = {r["style"] for f in iter_frame_language(dataset) for r in f.persistent + f.events}
    assert rows == {"task_aug"}  # only the canonical task, which needs no model


def test_server_errors_are_retried(dataset, openai_settings):
    with FakeVlmServer(fail_first=3, fail_status=500) as server:
        summary = _run(dataset, openai_settings(server, max_retries=4))
    assert summary.ok and server.failures_sent == 3


def test_a_failing_server_fails_the_episodes_and_writes_nothing(tmp_path, openai_settings):
    dataset = build_dataset(tmp_path / "ds", episode_lengths=(10,) * 6)
    with FakeVlmServer(fail_first=10**6, fail_status=503) as server:
        summary = _run(dataset, openai_settings(server, max_retries=1, concurrency=2))
    assert set(summary.failed) == set(range(6))
    reasons = list(summary.failed.values())
    assert any("HTTP 503" in r for r in reasons)
    # once the endpoint is known to be down, the episodes not yet started are left for a rerun
    assert sum("not attempted" in r for r in reasons) >= 4
    assert server.requests <= 2 * 2  # two episodes in flight, one request each plus its retry
    assert summary.write is None
    assert LANGUAGE_PERSISTENT not in pq.read_schema(dataset / "data/chunk-000/file-000.parquet").names


def test_requests_run_concurrently_up_to_the_limit():
    with FakeVlmServer() as server:
        server.wait_for_peak = 4  # each request waits (bounded) until four are in flight together
        backend = OpenAICompatibleBackend(base_url=server.base_url, model="m", concurrency=4, max_retries=0)
        try:
            context = {"task": "stack the cups"}
            requests = [
                LabelRequest(
                    "initial_speech", 0, prompts.initial_speech(context), context, prompts.check_field("say")
                )
                for _ in range(8)
            ]
            answers = backend.answer(requests)
        finally:
            backend.close()
    assert answers == [{"say": "Okay, I will stack the cups."}] * 8
    assert server.peak_in_flight == 4


def test_concurrency_one_keeps_one_request_in_flight(dataset, openai_settings):
    with FakeVlmServer(delay_s=0.01) as server:
        summary = _run(dataset, openai_settings(server, concurrency=1, settings={"episode_parallelism": 2}))
    assert summary.ok and server.peak_in_flight == 1


def test_a_reply_slower_than_the_timeout_is_a_backend_error():
    with FakeVlmServer(delay_s=3.0) as server:
        backend = OpenAICompatibleBackend(base_url=server.base_url, model="m", max_retries=0, timeout_s=0.3)
        try:
            with pytest.raises(BackendError, match="did not answer"):
                backend._complete([{"role": "user", "content": "TASK: memory"}])
        finally:
            backend.close()


def test_api_key_comes_from_the_named_environment_variable(dataset, openai_settings, monkeypatch):
    monkeypatch.setenv("SPINAL_TEST_VLM_KEY", "sk-test-123")
    with FakeVlmServer() as server:
        summary = _run(dataset, openai_settings(server, api_key_env="SPINAL_TEST_VLM_KEY"))
    assert summary.ok and server.authorization == {"Bearer sk-test-123"}

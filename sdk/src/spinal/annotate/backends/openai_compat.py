"""A labelling backend for any OpenAI-compatible chat endpoint (vLLM, transformers serve, hosted APIs).

Requests run on a bounded thread pool (requests in flight = `concurrency`); transport errors and 5xx are
retried by the `openai` client; an unusable reply gets one corrective reprompt. Used by `spinal annotate`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from spinal.annotate.backends.base import Answer, BackendStats, LabelRequest
from spinal.annotate.backends.json_repair import extract_json
from spinal.annotate.errors import BackendError, SettingsError

_CORRECTION = (
    "Your previous reply could not be used: {problem}. Reply again with only the JSON object described above, "
    "no prose, no code fences."
)


class OpenAICompatibleBackend:
    """Chat completions against `base_url` with `model`; the API key comes from the environment variable named
    `api_key_env` (servers on localhost usually need none) and is never logged."""

    name = "openai"
    wants_images = True

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 16,
        max_retries: int = 3,
        timeout_s: float = 120.0,
        temperature: float = 0.2,
        max_tokens: int = 512,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        try:
            import openai
        except ImportError:  # pragma: no cover - the dev install has it
            raise SettingsError(
                "The OpenAI-compatible backend needs the `openai` package: pip install 'spinal[annotate]'."
            ) from None
        if concurrency < 1:
            raise SettingsError(f"concurrency must be at least 1; got {concurrency}.")
        self._openai = openai
        self.model = model
        self.base_url = base_url
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.extra_body = extra_body
        self.stats = BackendStats()
        key = os.environ.get(api_key_env) or "not-needed"
        self._client = openai.OpenAI(
            base_url=base_url, api_key=key, max_retries=max_retries, timeout=timeout_s
        )
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="vlm-request")

    def identity(self) -> str:
        return f"openai/{self.model}/t={self.temperature}"

    def supports(self, kind: str) -> bool:
        return True

    def interjection_times(self, episode: int, boundaries: Sequence[float]) -> list[float] | None:
        return None

    def answer(self, requests: Sequence[LabelRequest]) -> list[Answer | None]:
        futures = [self._pool.submit(self._answer_one, r) for r in requests]
        return [f.result() for f in futures]

    def _complete(self, messages: list[dict[str, Any]]) -> str:
        errors = self._openai
        try:
            response = self._client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                extra_body=self.extra_body,
            )
        except errors.APIStatusError as exc:
            hint = {
                401: "set the API key in the environment variable named by --api-key-env",
                403: "the API key may not use this model",
                404: f"check --base-url and that the server serves model {self.model!r}",
            }.get(exc.status_code, "check that the server is healthy")
            raise BackendError(
                f"The VLM endpoint {self.base_url} answered HTTP {exc.status_code}; {hint}."
            ) from None
        except (errors.APITimeoutError, errors.APIConnectionError):
            raise BackendError(
                f"The VLM endpoint {self.base_url} did not answer after retries; start the server or fix --base-url."
            ) from None
        if not response.choices:
            return ""
        return response.choices[0].message.content or ""

    def _answer_one(self, request: LabelRequest) -> Answer | None:
        messages = list(request.messages)
        for attempt in range(2):
            text = self._complete(messages)
            value, repaired = extract_json(text)
            problem = (
                "it is not a JSON object"
                if value is None
                else (request.check(value) if request.check else None)
            )
            if problem is None:
                self.stats.add(requests=1, repaired=int(repaired))
                return value
            if attempt == 0:
                self.stats.add(reprompts=1)
                messages = [
                    *messages,
                    {"role": "assistant", "content": text},
                    {"role": "user", "content": _CORRECTION.format(problem=problem)},
                ]
        self.stats.add(requests=1, unusable=1)
        return None

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

"""`DeviceClient`: the workstation side of a spinal device's HTTP API (status, episodes, resumable downloads).

Used by `spinal device status|episodes|pull`; authenticates with `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from pydantic import ValidationError

from spinal.device.errors import (
    ChecksumMismatchError,
    DeviceAuthError,
    DeviceResponseError,
    DeviceUnreachableError,
    DownloadCancelled,
)
from spinal.device.models import EpisodeFile, EpisodeList, EpisodeSummary

PART_SUFFIX = ".part"


@dataclass(frozen=True)
class DownloadResult:
    """How a file arrived: bytes fetched over the network and bytes that were already there (resumed)."""

    path: Path
    fetched: int
    resumed_from: int


class DeviceClient:
    """Talks to one device; thread-safe (parallel downloads share one connection pool)."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise DeviceResponseError(
                f"device URL {base_url!r} must look like http://HOST:PORT (the address the device page shows)"
            )
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DeviceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls --------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """`GET /api/status` as a dict."""
        payload = self._json("GET", "/api/status")
        if not isinstance(payload, dict):
            raise DeviceResponseError(f"{self.base_url}/api/status did not return a JSON object")
        return payload

    def list_episodes(self) -> list[EpisodeSummary]:
        payload = self._json("GET", "/api/episodes")
        try:
            return EpisodeList.model_validate(payload).episodes
        except ValidationError as exc:
            raise DeviceResponseError(
                f"{self.base_url}/api/episodes returned an invalid episode list: {_first(exc)}"
            ) from None

    def get_episode(self, episode_id: str) -> EpisodeSummary:
        payload = self._json("GET", f"/api/episodes/{quote(episode_id, safe='')}")
        try:
            return EpisodeSummary.model_validate(payload)
        except ValidationError as exc:
            raise DeviceResponseError(
                f"episode {episode_id}: invalid description from the device: {_first(exc)}"
            ) from None

    def delete_episode(self, episode_id: str) -> None:
        self._request("DELETE", f"/api/episodes/{quote(episode_id, safe='')}")

    def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        """Any other API call (mode, episode control): JSON body in, decoded JSON (or None) out.

        Errors as for the other calls; a `DeviceResponseError` carries `status_code` and the API's `error` class.
        """
        response = self._request(method, path, body=body, timeout=timeout)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise DeviceResponseError(f"{self.base_url}{path} did not return JSON") from None

    def download(
        self,
        episode_id: str,
        file: EpisodeFile,
        dest: Path,
        *,
        on_bytes: Callable[[int], None] | None = None,
        cancel: threading.Event | None = None,
        retries: int = 3,
    ) -> DownloadResult:
        """Download one file to `dest`, resuming a `dest.part` left by an earlier try; verified by sha256."""
        dest = Path(dest)
        part = dest.with_name(dest.name + PART_SUFFIX)
        resumed_from = part.stat().st_size if part.exists() else 0
        fetched = 0
        restarted = False
        attempt = 0
        while True:
            try:
                fetched += self._fetch_into(episode_id, file, part, on_bytes, cancel)
            except DeviceUnreachableError:
                attempt += 1
                if attempt > retries:
                    raise
                continue
            if _sha256(part) == file.sha256:
                break
            discarded = part.stat().st_size if part.exists() else 0
            part.unlink(missing_ok=True)
            if restarted:
                raise ChecksumMismatchError(
                    f"{episode_id}/{file.name} does not match the device's sha256 after a fresh download; "
                    "the file may be changing on the device (pull again later)"
                )
            restarted = True  # a stale or damaged .part: start over once from zero
            # Nothing of that .part was kept: it is not "resumed", and progress counts the file afresh.
            resumed_from = 0
            if on_bytes and discarded:
                on_bytes(-discarded)
        os.replace(part, dest)
        return DownloadResult(dest, fetched, resumed_from)

    # -- internals ----------------------------------------------------------------------------------

    def _fetch_into(
        self,
        episode_id: str,
        file: EpisodeFile,
        part: Path,
        on_bytes: Callable[[int], None] | None,
        cancel: threading.Event | None,
    ) -> int:
        have = part.stat().st_size if part.exists() else 0
        if have > file.size:
            part.unlink()
            have = 0
        if have == file.size and file.size > 0:
            return 0
        headers = {}
        if have:
            headers = {"Range": f"bytes={have}-", "If-Range": f'"{file.sha256}"'}
        url = f"/api/episodes/{quote(episode_id, safe='')}/files/{quote(file.name, safe='')}"
        fetched = 0
        try:
            with self._http.stream("GET", url, headers=headers) as response:
                if response.status_code == 416:
                    part.unlink(missing_ok=True)
                    return 0
                self._raise_for_status(response, url)
                mode = "ab"
                if response.status_code == 206:
                    start = _content_range_start(response.headers.get("content-range"))
                    if start != have:
                        raise DeviceResponseError(f"{url}: the device resumed at byte {start}, not {have}")
                else:
                    mode = "wb"  # the device sent the whole file (no range support or a changed file)
                    if on_bytes and have:
                        on_bytes(-have)
                with open(part, mode) as out:
                    # Unbuffered: whatever arrived is on disk if the connection breaks, so resume starts there.
                    for chunk in response.iter_bytes():
                        if cancel is not None and cancel.is_set():
                            raise DownloadCancelled(f"download of {episode_id}/{file.name} was cancelled")
                        out.write(chunk)
                        fetched += len(chunk)
                        if on_bytes:
                            on_bytes(len(chunk))
        except httpx.TransportError as exc:
            raise DeviceUnreachableError(f"{self.base_url}: connection lost during {url} ({exc})") from exc
        return fetched

    def _json(self, method: str, path: str) -> Any:
        response = self._request(method, path)
        try:
            return response.json()
        except ValueError:
            raise DeviceResponseError(f"{self.base_url}{path} did not return JSON") from None

    def _request(
        self, method: str, path: str, *, body: dict[str, Any] | None = None, timeout: float | None = None
    ) -> httpx.Response:
        try:
            response = self._http.request(
                method, path, json=body, timeout=self._http.timeout if timeout is None else timeout
            )
        except httpx.TransportError as exc:
            raise DeviceUnreachableError(
                f"cannot reach the device at {self.base_url} ({exc}); check the address and that it is on"
            ) from exc
        self._raise_for_status(response, path)
        return response

    def _raise_for_status(self, response: httpx.Response, path: str) -> None:
        if response.status_code < 400:
            return
        if response.is_stream_consumed is False:
            response.read()
        detail = _detail(response)
        if response.status_code in (401, 403):
            raise DeviceAuthError(
                f"the device refused the token ({response.status_code}); pass --token or set SPINAL_TOKEN "
                "to the token the device page shows"
            )
        raise DeviceResponseError(
            f"{self.base_url}{path}: {response.status_code} {detail}",
            status_code=response.status_code,
            error=_error_class(response),
            detail=detail,
        )


def _detail(response: httpx.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(payload, dict) and "detail" in payload:
        return str(payload["detail"])[:300]
    return str(payload)[:200]


def _error_class(response: httpx.Response) -> str | None:
    try:
        payload = response.json()
    except ValueError:
        return None
    error = payload.get("error") if isinstance(payload, dict) else None
    return error if isinstance(error, str) else None


def _content_range_start(value: str | None) -> int:
    if not value or not value.startswith("bytes "):
        raise DeviceResponseError("a partial response came without a Content-Range header")
    try:
        return int(value.split(" ", 1)[1].split("-", 1)[0])
    except ValueError:
        raise DeviceResponseError(f"unreadable Content-Range {value!r}") from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    if not path.exists():
        return ""
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"

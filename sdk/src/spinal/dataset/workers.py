"""Parallel episode conversion in worker processes that speak JSON lines over stdin/stdout (no pickle).

`EpisodeWorkerPool` is used by `spinal.dataset.convert`; each worker runs `spinal.dataset.episode_worker`.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

ProgressCallback = Callable[[dict[str, Any]], None]
_STOP = object()


class EpisodeWorkerPool:
    """Runs `convert_episode` jobs on `workers` processes; a crashed worker fails only its own job."""

    def __init__(self, workers: int) -> None:
        self._workers = max(1, workers)

    def run(
        self, jobs: list[dict[str, Any]], on_event: ProgressCallback | None = None
    ) -> Iterator[tuple[int, dict]]:
        """Yield (job position, result) as jobs finish, in completion order."""
        todo: queue.Queue = queue.Queue()
        for position, job in enumerate(jobs):
            todo.put((position, job))
        done: queue.Queue = queue.Queue()
        threads = []
        processes: list[subprocess.Popen] = []
        lock = threading.Lock()
        for _ in range(min(self._workers, len(jobs))):
            todo.put(_STOP)
            thread = threading.Thread(
                target=self._drive, args=(todo, done, on_event, processes, lock), daemon=True
            )
            thread.start()
            threads.append(thread)
        try:
            for _ in range(len(jobs)):
                yield done.get()
        finally:
            for process in list(processes):
                if process.poll() is None:
                    process.kill()
                    process.wait()
            for thread in threads:
                thread.join(timeout=10)

    def _drive(self, todo, done, on_event, processes, lock) -> None:
        process = None
        try:
            while True:
                item = todo.get()
                if item is _STOP:
                    return
                position, job = item
                if process is None or process.poll() is not None:
                    process = _start_worker()
                    with lock:
                        processes.append(process)
                done.put((position, _run_job(process, job, on_event)))
        finally:
            if process is not None and process.poll() is None:
                try:
                    process.stdin.close()
                    process.wait(timeout=10)
                except (OSError, subprocess.TimeoutExpired):
                    process.kill()
                    process.wait()


def _start_worker() -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "spinal.dataset.episode_worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )


def _run_job(process: subprocess.Popen, job: dict[str, Any], on_event: ProgressCallback | None) -> dict:
    episode = os.path.basename(str(job.get("episode_dir", "")))
    try:
        process.stdin.write(json.dumps(job) + "\n")
        process.stdin.flush()
        for line in process.stdout:
            message = json.loads(line)
            if message.get("event") == "result":
                return message["result"]
            if on_event is not None:
                on_event(message)
    except (OSError, ValueError):
        pass
    code = process.wait()
    return {
        "ok": False,
        "episode_id": episode,
        "error": f"the worker converting {episode} crashed (exit {code})",
    }

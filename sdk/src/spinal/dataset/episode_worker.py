"""One converter worker process: reads episode jobs as JSON lines on stdin, answers on stdout.

Started by `EpisodeWorkerPool` as `python -m spinal.dataset.episode_worker`; never imported by the package.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO


def _serve(stdin: TextIO, out: TextIO) -> None:
    from spinal.dataset.episode_job import convert_episode

    def emit(message: dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    for line in stdin:
        job = json.loads(line)
        try:
            result = convert_episode(job, emit)
        except Exception as exc:  # report, keep serving: one bad episode must not stop the others
            result = {
                "ok": False,
                "episode_id": os.path.basename(str(job.get("episode_dir", ""))),
                "error": f"unexpected {type(exc).__name__}: {exc}",
            }
        emit({"event": "result", "result": result})


def main() -> None:
    # The protocol owns the real stdout; anything a C library prints goes to stderr instead.
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    _serve(sys.stdin, protocol)


if __name__ == "__main__":
    main()

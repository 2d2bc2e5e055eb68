"""The edge benchmark's peer: a bare sleep-to-deadline loop in its own process, the machine's floor for jitter.

`python -m bench.edge_peer --rate 100 --priority 50 --seconds 20` runs beside the daemon under test and prints
the periods (us) it saw as one JSON line; started by `bench.bench_edge`. It does nothing but sleep to absolute
deadlines with 1 us timer slack, as the control loop does, so any jitter it shows is the OS's and the machine's.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import signal
import sys
import time

_PR_SET_TIMERSLACK = 29


def run(rate_hz: float, priority: int, seconds: float) -> dict[str, object]:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)
    scheduling = "SCHED_OTHER"
    if priority:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
            scheduling = f"SCHED_FIFO {priority}"
        except OSError as exc:
            scheduling = f"SCHED_OTHER (SCHED_FIFO refused: {exc.strerror})"
    stopped = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGTERM, stop)
    period = int(1e9 / rate_hz)
    start = time.monotonic_ns()
    periods: list[float] = []
    previous = None
    for k in range(int(seconds * rate_hz)):
        if stopped:
            break
        remaining = start + k * period - time.monotonic_ns()
        if remaining > 0:
            time.sleep(remaining / 1e9)
        now = time.monotonic_ns()
        if previous is not None:
            periods.append((now - previous) / 1e3)
        previous = now
    return {"scheduling": scheduling, "periods_us": periods}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--priority", type=int, default=0)
    parser.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args()
    print(json.dumps(run(args.rate, args.priority, args.seconds)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Times Firmware.tick() over in-memory buses (compute only, no I/O waits) under MicroPython.

`micropython bench_tick.py [TICKS] [--leader]` prints one JSON line; run by bench/bench_firmware.py.
"""

import json
import sys

_here = sys.path[0] or "."
sys.path.insert(0, _here + "/../../lib")

import time  # noqa: E402

import host  # noqa: E402
from rigs import Bench  # noqa: E402
from spinalfw import proto  # noqa: E402


def main(argv):
    ticks = int(argv[0]) if argv and argv[0].isdigit() else 2000
    leader = "--leader" in argv
    b = Bench(leader=leader)
    if leader:
        b.configure(leader_bus=1, leader_ids=(1, 2, 3, 4, 5, 6))
    else:
        b.configure()
    b.torque_on()
    frames = [host.frame(proto.MSG_TARGETS, i, host.targets_payload([1500 + i] * 6)) for i in range(100)]
    port = b.hal.link
    fw = b.fw
    times = []
    for i in range(ticks):
        if i % 2 == 0:
            f = frames[(i // 2) % 100]
            port.feed(f, len(f))
        b.clock.now += 5
        t0 = time.ticks_us()
        fw.tick()
        times.append(time.ticks_diff(time.ticks_us(), t0))
        port.tx_len = 0
    times.sort()
    print(
        json.dumps(
            {
                "ticks": ticks,
                "mean_us": sum(times) / len(times),
                "p50_us": times[len(times) // 2],
                "p99_us": times[len(times) * 99 // 100],
                "max_us": times[-1],
                "alloc_ticks": fw.alloc_ticks,
            }
        )
    )


main(sys.argv[1:])

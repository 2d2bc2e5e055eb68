"""The synthetic camera's renderer as a child process: joint positions in on stdin, JPEG frames out on stdout.

Started by `SyntheticCamera`, so drawing and encoding never hold the daemon's GIL (a real camera is another
device too). Messages are a 4-byte little-endian length and a payload: float32 joints in, JPEG bytes out; an
empty request means "state unknown". The worker exits when its stdin closes (the daemon went away).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import BinaryIO

import numpy as np
import simplejpeg

from spinal_edge.cameras.arm_drawing import VIEWS, ArmPainter
from spinal_edge.cameras.render_protocol import MAX_JOINTS, read_message, write_message


def serve(width: int, height: int, view: str, quality: int, inp: BinaryIO, out: BinaryIO) -> int:
    painter = ArmPainter(width, height, VIEWS[view])
    while True:
        request = read_message(inp)
        if request is None:
            return 0
        if len(request) % 4 or len(request) > MAX_JOINTS * 4:
            return 2  # not our parent speaking: stop rather than guess
        joints = np.frombuffer(request, dtype="<f4") if request else None
        pixels = painter.render(joints)
        write_message(out, simplejpeg.encode_jpeg(pixels, quality=quality, colorspace="RGB"))


def main() -> int:
    # A real-time daemon's children inherit its scheduling; a renderer must never compete at that level.
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, required=True)
    parser.add_argument("--height", type=int, required=True)
    parser.add_argument("--view", choices=sorted(VIEWS), default="front")
    parser.add_argument("--quality", type=int, default=85)
    args = parser.parse_args()
    return serve(args.width, args.height, args.view, args.quality, sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    sys.exit(main())

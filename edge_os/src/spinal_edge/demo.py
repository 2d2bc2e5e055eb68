"""`make demo`: a whole simulated robot cell on 127.0.0.1.

Until the edge daemon lands this says plainly which parts exist and which are still being built.
"""

from __future__ import annotations

import sys


def main() -> int:
    print("spinal demo: the simulated robot cell is not assembled yet.")
    print("Built so far: the wire protocol (spinal.protocol).")
    print("Still being built: spinal-server, the firmware + HIL rig, and the spinal-edge daemon.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

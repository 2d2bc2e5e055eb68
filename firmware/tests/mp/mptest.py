"""A minimal test runner for MicroPython: `micropython mptest.py MODULE [TEST ...]` or `MODULE --list`.

Run by firmware/tests/test_firmware_micropython.py (pytest) once per test, so each shows up on its own.
"""

import sys

_here = sys.path[0] or "."
sys.path.insert(0, _here)
sys.path.insert(0, _here + "/../../lib")


def main(argv):
    module = __import__(argv[0])
    names = sorted(n for n in dir(module) if n.startswith("test_"))
    if len(argv) > 1 and argv[1] == "--list":
        for n in names:
            print(n)
        return 0
    wanted = argv[1:] or names
    failed = 0
    for name in wanted:
        try:
            getattr(module, name)()
            print("PASS", name)
        except Exception as exc:  # report every failure, then exit non-zero
            failed += 1
            print("FAIL", name)
            sys.print_exception(exc)
    return 1 if failed else 0


sys.exit(main(sys.argv[1:]))

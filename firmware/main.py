"""Entry point of the spinal servo firmware: on a Pico it runs at boot; on a PC `micropython main.py --help`.

Builds the HAL for the platform, boots the Firmware (torque off, servo discovery) and runs the servo loop.
"""

import sys


def _selftest():
    from spinalfw import FIRMWARE_VERSION, framing

    buf = bytearray(b"123456789")
    assert framing.crc16(buf, 0, 9) == 0x29B1, "crc16 check value"
    enc = bytearray(16)
    n = framing.cobs_encode(bytearray(b"\x11\x00\x22"), 3, enc)
    assert bytes(enc[:n]) == b"\x02\x11\x02\x22", "cobs encode"
    import spinalfw.app  # noqa: F401 - importing proves every module of the build loads

    print("spinal firmware %d.%d.%d selftest ok" % FIRMWARE_VERSION)


def main():
    if sys.platform == "rp2":
        import board
        from spinalfw.hal_rp2 import Rp2Hal

        hal = Rp2Hal(board)
        settings = (board.BOARD_NAME, board.RATE_HZ, board.SCAN_FIRST, board.SCAN_LAST, board.BUS_TIMEOUT_US)
    else:
        sys.path.insert(0, (sys.path[0] or ".") + "/lib")
        from spinalfw.hal_unix import UnixHal, parse_args

        args = parse_args(sys.argv[1:])
        if args.selftest:
            _selftest()
            return
        if not args.bus or not args.link:
            print("firmware: --bus and --link are required (ttys of the servo bus and the host link)")
            sys.exit(2)
        hal = UnixHal(args.bus, args.link, args.leader_bus, args.estop)
        settings = (args.board, args.rate, args.scan_first, args.scan_last, args.bus_timeout_us)

    from spinalfw.app import Firmware

    board_name, rate, first, last, timeout_us = settings
    fw = Firmware(hal, board=board_name, rate_hz=rate, scan_first=first, scan_last=last, bus_timeout_us=timeout_us)
    try:
        fw.boot()
        fw.run()
    finally:
        fw.safe_stop()
        if hasattr(hal, "close"):
            hal.close()


main()

"""spinalfw: the spinal servo firmware (MicroPython) for a Pico driving Feetech STS buses.

`main.py` builds a HAL (rp2 or unix) and runs `spinalfw.app.Firmware`; PROTOCOL.md describes the host link.
"""

FIRMWARE_VERSION = (0, 1, 0)

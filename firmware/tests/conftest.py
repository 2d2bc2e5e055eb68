"""pytest settings for the firmware: the files in mp/ are MicroPython tests, run by test_firmware_micropython."""

collect_ignore = ["mp"]

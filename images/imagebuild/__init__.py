"""The recipe that builds the spinal Raspberry Pi SD-card image (`make image` runs `images/build_image.py`).

Stages: apt sources from this machine, wheels for aarch64, the root filesystem (mmdebstrap), and the disk image.
"""

"""spinal-hil: the hardware-in-the-loop rig, simulated or against a real Pico and arm."""

__version__ = "0.1.0"

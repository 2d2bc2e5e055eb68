"""spinal-edge: the weightless control daemon that runs a robot arm from a Raspberry Pi."""

__version__ = "0.1.0"

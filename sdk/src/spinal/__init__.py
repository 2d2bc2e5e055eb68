"""spinal SDK: the wire protocol shared by edge and server, recordings, datasets, and the `spinal` CLI."""

__version__ = "0.1.0"

"""The device's HTTP API: routers the spinal-edge FastAPI app mounts (episodes, ...)."""

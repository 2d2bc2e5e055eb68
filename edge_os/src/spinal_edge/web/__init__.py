"""The on-device web setup page: first-boot setup code, admin login, sessions, CSRF, and the pages.

Mounted into the daemon's FastAPI app by `spinal_edge.web.mount`; the building blocks are importable alone.
"""

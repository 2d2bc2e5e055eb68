"""`python -m spinal_server` runs the `spinal-server` command line."""

from spinal_server.cli import main

main()

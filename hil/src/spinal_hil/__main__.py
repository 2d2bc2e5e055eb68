"""`python -m spinal_hil` runs the spinal-hil command line."""

from spinal_hil.cli import main

main()

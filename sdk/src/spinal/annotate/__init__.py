"""spinal.annotate (in progress)."""

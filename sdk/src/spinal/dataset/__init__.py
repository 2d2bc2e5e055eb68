"""spinal.dataset: LeRobotDataset v3.0 — convert recordings, read, validate, merge, stats, plot, push."""

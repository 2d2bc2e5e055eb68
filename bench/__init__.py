"""spinal benchmarks: each `bench/bench_<name>.py` measures one part against a peer in the same run."""

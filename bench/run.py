"""Run the benchmarks: `python -m bench.run [NAME ...] [--quick]`; writes bench/results/."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from pathlib import Path

from bench.harness import write_results

BENCH_DIR = Path(__file__).resolve().parent


def discover() -> list[str]:
    return sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules([str(BENCH_DIR)])
        if m.name.startswith("bench_")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all): " + ", ".join(discover()))
    parser.add_argument("--quick", action="store_true", help="fewer iterations, for a smoke run")
    args = parser.parse_args(argv)
    names = args.names or discover()
    unknown = sorted(set(names) - set(discover()))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(discover())}")
    failed = []
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        print(f"== bench {name} ...", flush=True)
        t0 = time.monotonic()
        try:
            tables = module.run(quick=args.quick)
        except Exception as exc:  # one broken benchmark must not hide the others' numbers
            print(f"!! bench {name} failed: {exc!r}", file=sys.stderr)
            failed.append(name)
            continue
        path = write_results(name, tables)
        for table in tables:
            print(table.to_markdown())
        print(
            f"== {name}: {time.monotonic() - t0:.1f} s, written to {path.relative_to(BENCH_DIR.parent)}\n",
            flush=True,
        )
    if failed:
        print(f"failed benchmarks: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

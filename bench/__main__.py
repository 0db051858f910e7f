"""Run every benchmark, one after the other, each writing its section of docs/benchmarks.md::

    .venv/bin/python -m bench [--quick] [--only throughput latency ...]

``--quick`` is a smoke run (small sizes, minutes in all); without it expect about an hour on
two cores. Kafka and Redis are started if nothing answers (and left running).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from pathlib import Path

from bench.report import DOCUMENT, progress

BENCHMARKS = (
    "broker",
    "throughput",
    "profile",
    "latency",
    "memory",
    "quality",
    "data_quality",
    "bench_codec",
)
"""Module names under ``bench``, in the order they run."""


def main(argv: Sequence[str] | None = None) -> None:
    """Run the chosen benchmarks in order."""
    options = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    options.add_argument("--quick", action="store_true", help="a small smoke run of each")
    options.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run just these")
    options.add_argument("--output", type=Path, default=DOCUMENT, help="the markdown file")
    args = options.parse_args(argv)
    chosen = [name for name in BENCHMARKS if not args.only or name in args.only]
    for name in chosen:
        progress(f"== bench.{name}")
        module = importlib.import_module(f"bench.{name}")
        module.main([*(["--quick"] if args.quick else []), "--output", str(args.output)])


if __name__ == "__main__":
    main()

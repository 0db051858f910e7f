"""Run every benchmark, one after the other, each writing its section of docs/benchmarks.md::

    .venv/bin/python -m bench [--quick] [--only throughput latency ...] [--output FILE]

``--quick`` is a smoke run (small sizes, minutes in all) that writes to ``bench-quick.md`` in
the current directory (git-ignored), not docs/benchmarks.md, unless ``--output`` is given;
without it expect well over an hour on two cores (``calibration`` alone takes about 11
minutes). Kafka and Redis are started if nothing answers (and left running).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from bench.results import parser, progress

BENCHMARKS = (
    "broker",
    "throughput",
    "shapes",
    "profile",
    "latency",
    "memory",
    "quality",
    "data_quality",
    "bench_codec",
    "core",
    "explain",
    "estimate",
    "calibration",
)
"""Module names under ``bench``, in the order they run."""


def main(argv: Sequence[str] | None = None) -> None:
    """Run the chosen benchmarks in order."""
    options = parser("python -m bench", __doc__)
    options.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run just these")
    args = options.parse_args(argv)
    chosen = [name for name in BENCHMARKS if not args.only or name in args.only]
    for name in chosen:
        progress(f"== bench.{name}")
        module = importlib.import_module(f"bench.{name}")
        module.main([*(["--quick"] if args.quick else []), "--output", str(args.output)])
    progress(f"done: the sections of {', '.join(chosen)} are in {args.output}")


if __name__ == "__main__":
    main()

"""What every benchmark shares: the machine line, load, timing, progress and the markdown file.

Each benchmark renders one ``## `` section (heading, reproduce command, machine, table) and
:func:`write_section` replaces that section of ``docs/benchmarks.md`` (or appends it), so the
benchmarks can be re-run one at a time without touching each other's results. A ``--quick``
smoke run writes to ``bench-quick.md`` in the current directory instead (git-ignored), unless
``--output`` names a file.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

DOCUMENT = Path("docs/benchmarks.md")
QUICK_DOCUMENT = Path("bench-quick.md")
"""Where a ``--quick`` run writes without ``--output``: its small numbers must not replace the
measured ones of :data:`DOCUMENT`."""
STACK = ("faust-streaming", "aiokafka", "confluent-kafka", "river", "pydantic", "redis")
"""The libraries whose versions the streaming benchmarks report."""


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo``."""
    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text() if cpuinfo.exists() else ""
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return found[1] if found else platform.processor() or "unknown"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as text."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def machine(libraries: Iterable[str], load_before: str | None = None) -> list[str]:
    """nproc, CPU model, load, Python and library versions, as markdown list items."""
    load = f"load average at the end {load_average()}"
    if load_before is not None:
        load = f"load average at the start {load_before}, at the end {load_average()}"
    versions = ", ".join(f"{name} {version(name)}" for name in libraries)
    return [
        f"- nproc {len(os.sched_getaffinity(0))}, CPU {cpu_model()}, {load}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), {versions}",
    ]


def written(command: str) -> str:
    """``Reproduce with `command` (written <date>).``"""
    return f"Reproduce with `{command}` (written {datetime.now(UTC):%Y-%m-%d})."


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], numeric: str = "") -> list[str]:
    """A markdown table; ``numeric`` holds ``r`` for each right-aligned column (by position)."""
    align = ["---:" if numeric[i : i + 1] == "r" else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def write_section(path: Path, section: str) -> None:
    """Replace the section whose heading is ``section``'s first line (up to the next ``## ``
    heading) in ``path``, or append it."""
    heading = section.splitlines()[0]
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip("\n") + "\n\n", text, count=1)
        text = text.rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def publish(section: str, output: Path) -> None:
    """Print the section and write it into the benchmarks document."""
    sys.stdout.write(section)
    write_section(output, section)
    progress(f"written to {output}")


def progress(message: str) -> None:
    """A timestamped progress line on stderr (long benchmarks say what they are doing)."""
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


class BenchmarkParser(argparse.ArgumentParser):
    """Parses ``--output`` left out as :data:`QUICK_DOCUMENT` under ``--quick``, else as
    :data:`DOCUMENT`.

    >>> options = parser("bench", None)
    >>> [str(options.parse_args(argv).output) for argv in ([], ["--quick"])]
    ['docs/benchmarks.md', 'bench-quick.md']
    >>> str(options.parse_args(["--quick", "--output", "docs/benchmarks.md"]).output)
    'docs/benchmarks.md'
    """

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if parsed.output is None:
            parsed.output = QUICK_DOCUMENT if parsed.quick else DOCUMENT
        return parsed, extras


def parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark has: ``--quick``, ``--output``
    (default: :data:`DOCUMENT`, or :data:`QUICK_DOCUMENT` under ``--quick``)."""
    result = BenchmarkParser(prog=prog, description=description)
    result.add_argument("--quick", action="store_true", help="a small smoke run")
    result.add_argument(
        "--output",
        type=Path,
        help=f"the markdown file (default: {DOCUMENT}, {QUICK_DOCUMENT} with --quick)",
    )
    return result


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by the nearest-rank method; NaN when empty.

    >>> percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50), percentile(list(range(1, 101)), 99)
    (3.0, 99)
    """
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def best_rates(
    works: Sequence[Callable[[], object]], items: int, rounds: int, min_seconds: float
) -> list[float]:
    """Best items/s of each work. Every round times each work once, in turn, so that changes in
    machine load during the run hit all of them alike."""
    best = [0.0] * len(works)
    for work in works:
        work()
    for _ in range(rounds):
        for i, work in enumerate(works):
            passes, start = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - start) < min_seconds or passes == 0:
                work()
                passes += 1
            best[i] = max(best[i], passes * items / elapsed)
    return best

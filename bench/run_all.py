"""Run every benchmark in bench/ and write bench/results.md.

Each ``bench/*.py`` except this file (and files starting with ``_``, for shared helpers) runs as
its own process with this Python, in sorted order. A benchmark prints one figure per line on
stdout (``name value unit``; ratios ``name_ratio_vs_<peer> value x``); progress goes to stderr.
The results file starts with the date, the machine and the versions that matter for speed.
Exits non-zero when a benchmark failed (after writing what the others measured).
"""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results.md"
PACKAGES = ["pygeoapi", "numpy", "shapely", "pyproj", "fiona", "flask", "onnxruntime"]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions() -> list[str]:
    found = [f"python {platform.python_version()}", f"sqlite {sqlite3.sqlite_version}"]
    for name in PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    try:
        import fiona
        import pyproj
        import shapely

        found += [
            f"GEOS {shapely.geos_version_string}",
            f"PROJ {pyproj.proj_version_str}",
            f"GDAL {fiona.__gdal_version__}",
        ]
    except ImportError:
        pass
    return found


def header() -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return "\n".join(
        [
            "# Benchmark results",
            "",
            f"- date: {now}",
            f"- machine: {cores} cores (nproc), {cpu_model()}, {platform.system()} "
            f"{platform.release()}",
            f"- versions: {', '.join(versions())}",
            "",
            "Written by `make bench` (`bench/run_all.py`); see `bench/README.md` for the "
            "conventions.",
            "",
        ]
    )


def benchmarks() -> list[Path]:
    this = Path(__file__).resolve()
    return sorted(
        p for p in BENCH_DIR.glob("*.py") if p.resolve() != this and not p.name.startswith("_")
    )


def run(script: Path) -> tuple[str, bool]:
    """Run one benchmark; its section of results.md and whether it succeeded."""
    print(f"running {script.name} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, str(script)], cwd=BENCH_DIR.parent, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    lines = [line for line in completed.stdout.splitlines() if line.strip()]
    section = [f"## {script.stem}", "", f"{seconds:.0f} s", "", "```", *lines, "```", ""]
    ok = completed.returncode == 0
    if not ok:
        tail = completed.stderr.strip().splitlines()[-15:]
        section[2] += f", FAILED with exit code {completed.returncode}"
        section += ["stderr (last lines):", "", "```", *tail, "```", ""]
    for line in lines:
        print(f"  {line}", file=sys.stderr)
    if not ok:
        print(f"  FAILED ({completed.returncode})", file=sys.stderr)
    return "\n".join(section), ok


def main() -> int:
    sections, failures = [], []
    for script in benchmarks():
        section, ok = run(script)
        sections.append(section)
        if not ok:
            failures.append(script.name)
    RESULTS.write_text(header() + "\n" + "\n".join(sections))
    print(f"wrote {RESULTS}", file=sys.stderr)
    if failures:
        print(f"failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

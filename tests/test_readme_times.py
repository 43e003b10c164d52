"""README's notebook table states the times of the newest course_runtime measurement of each profile, and nothing else."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from course_utils.timing import runtime_files

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def readme_seconds(seconds: float) -> str:
    """How the README writes a measured time: ``6.8 s`` under a minute, ``915 s (15.2분)`` above."""
    return f"{seconds:.1f} s" if seconds < 60 else f"{seconds:.0f} s ({seconds / 60:.1f}분)"


def notebook_table(text: str) -> tuple[list[str], dict[str, list[str]]]:
    """The columns and rows (by notebook name) of the README's first table whose first column is 노트북."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| 노트북 |"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells
    return header, rows


def test_readme_seconds_formats_both_ranges():
    assert readme_seconds(6.84) == "6.8 s" and readme_seconds(915.2) == "915 s (15.3분)"


def test_the_readme_notebook_table_holds_the_newest_measurement_of_each_profile():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    header, rows = notebook_table(readme)
    profiles = header[2:]
    assert profiles, "the table has no profile columns"
    for profile in profiles:
        runs = runtime_files(profile, RESULTS)
        if not runs:
            pytest.fail(f"README shows a '{profile}' column but benchmarks/results has no course_runtime_{profile}_*.json")
        newest = runs[0]
        column = header.index(profile)
        for row in newest["rows"]:
            shown = rows[row["notebook"]][column]
            assert shown == readme_seconds(row["seconds"]), (
                f"README {row['notebook']} / {profile}: '{shown}', but {newest['file']} measured "
                f"{readme_seconds(row['seconds'])}")
        total = newest["total_seconds"]
        assert re.search(rf"{profile}[^\n]*합계 {total:.0f} s", readme), (
            f"README does not state {profile}'s total {total:.0f} s from {newest['file']}")

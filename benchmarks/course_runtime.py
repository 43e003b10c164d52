"""Benchmark 3: seconds per notebook — under nbval in `smoke` (as CI runs them) or under `make course`.

    .venv/bin/python benchmarks/course_runtime.py --profile smoke   # pytest --nbval-lax, one notebook at a time
    .venv/bin/python benchmarks/course_runtime.py --profile cpu     # tools/run_course.py (what `make course` runs)
    .venv/bin/python benchmarks/course_runtime.py --profile cpu --inplace   # the same, storing the outputs too
    .venv/bin/python benchmarks/course_runtime.py --profile demo    # an instructor's demo (any profile works)
    .venv/bin/python benchmarks/course_runtime.py --profile cpu --inplace --notebooks 05 10   # re-measure some, keep
                                                    # the newest whole run's other rows (same machine kind; JSON: rerun)

The result records the machine's kind (``course_utils.timing.machine_kind``): notebook 00 shows these seconds as
measured on a machine of the same kind, and as an estimate elsewhere.

Each smoke notebook runs in its own pytest process (kernel start included), `--repeat` times; the
median is reported. Writes benchmarks/results/course_runtime_<profile>_<date>.json.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.common import machine_info, write_result  # noqa: E402


def nbval_seconds(notebook: Path) -> float:
    env = {**os.environ, "COURSE_PROFILE": "smoke", "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "--nbval-lax", "-p", "no:cacheprovider", str(notebook)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{notebook.name} failed under nbval:\n{done.stdout[-3000:]}")
    return seconds


def previous_run(profile: str) -> dict:
    """The newest whole-course measurement of ``profile`` on a machine of this kind: a partial re-run (``--notebooks``)
    replaces its rows and keeps the others, saying which (``rerun``)."""
    from course_utils.timing import machine_kind, runtime_files

    runs = [r for r in runtime_files(profile, ROOT / "benchmarks" / "results") if r.get("machine_kind") == machine_kind()]
    if not runs:
        raise SystemExit(f"--notebooks with --profile {profile} re-measures some notebooks of an earlier whole-course run "
                         f"on this kind of machine ({machine_kind()}), and there is none: run the whole course first")
    return runs[0]


def merged_rows(earlier: dict, rows: list[dict]) -> tuple[list[dict], dict]:
    """``earlier``'s rows with ``rows`` in place of (or beside) the notebooks of the same name, in notebook order, and
    what the result says of itself: the whole run the other rows come from, and each re-run (notebooks, date)."""
    import datetime

    new = {r["notebook"]: r for r in rows}
    merged = {r["notebook"]: r for r in earlier["rows"]} | new
    extra = {"whole_run": earlier.get("whole_run", earlier["file"]),  # where the rows not re-run were measured
             "rerun": [*earlier.get("rerun", []), {"notebooks": sorted(new), "date": datetime.date.today().isoformat()}]}
    return [merged[name] for name in sorted(merged)], extra


def source_commit() -> dict:
    """Which commit the notebooks ran from, and whether the working tree matched it when the run began (one run of one
    commit: a stored output that came from uncommitted code says so here)."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return {"commit": git("rev-parse", "HEAD"), "tree_clean": git("status", "--porcelain", "--untracked-files=no") == ""}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke", help="smoke (under nbval, as CI) or any other profile (make course)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per notebook (smoke); the median is reported")
    parser.add_argument("--notebooks", nargs="*", default=None, help="names like 01 05 (default: all); the newest whole "
                        "run's other rows on this kind of machine are kept (cpu: a notebook needing 05's adapter after 05)")
    parser.add_argument("--inplace", action="store_true", help="cpu: also store the outputs in the notebooks (make notebooks)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    books = sorted((ROOT / "notebooks").glob("[01][0-9]_*.ipynb"))
    if args.notebooks:
        books = [b for b in books if any(b.name.startswith(n) for n in args.notebooks)]
    rows, extra = [], source_commit()
    earlier = previous_run(args.profile) if args.notebooks else None
    if args.profile == "smoke":
        for book in books:
            runs = [nbval_seconds(book) for _ in range(args.repeat)]
            rows.append({"notebook": book.stem, "seconds": statistics.median(runs), "runs": runs})
            print(f"{book.stem}: {rows[-1]['seconds']:.1f} s (nbval, smoke, median of {len(runs)})", flush=True)
    else:
        from tools import run_course

        os.environ["COURSE_PROFILE"] = args.profile
        results = []
        only = ["--only", *args.notebooks] if args.notebooks else []
        if run_course.main((["--inplace"] if args.inplace else []) + only, results) != 0:
            raise SystemExit("make course failed; see above")
        rows = [{"notebook": name, "seconds": seconds} for name, seconds, _ in results]
    if earlier:
        rows, more = merged_rows(earlier, rows)
        more["rerun"][-1] |= extra  # this re-run's commit; the kept rows keep the whole run's ("commit" below)
        extra = more | {k: earlier[k] for k in ("commit", "tree_clean") if k in earlier}
    total = sum(r["seconds"] for r in rows)
    print("\n| notebook | seconds |\n|---|---|")
    for r in rows:
        print(f"| {r['notebook']} | {r['seconds']:.1f} |")
    print(f"| total | {total:.1f} |")
    write_result(f"course_runtime_{args.profile}", {**machine_info(), "profile": args.profile, "rows": rows,
                                                    "total_seconds": total, **extra}, args.out)
    return {"rows": rows, "total_seconds": total}


if __name__ == "__main__":
    main()

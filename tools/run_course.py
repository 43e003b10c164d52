"""Run the whole course headless: notebooks 01 -> 07 in order with the active profile.

    make course                      # profile: COURSE_PROFILE, else gpu8gb with CUDA, else cpu
    COURSE_PROFILE=smoke make course

Executed copies and HTML go to outputs/<profile>/. A failing notebook stops the run and names the
notebook and the failing cell. The end prints each notebook's time and its summary (정리) numbers.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"


def _write(path: Path, text: str) -> None:
    """Replace ``path`` atomically (temp file + rename): a re-run never leaves a half-written output."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def summary_text(nb) -> str:
    """Stdout of the code cell after the '## 정리' heading (it prints the run's key numbers), else the last one."""
    codes = [c for c in nb.cells if c.cell_type == "code"]
    last = codes[-1]
    for i, c in enumerate(nb.cells):
        if c.cell_type == "markdown" and c.source.lstrip().startswith("## 정리"):
            last = next((d for d in nb.cells[i + 1:] if d.cell_type == "code"), last)
            break
    return "".join(o.get("text", "") for o in last.get("outputs", []) if o.get("output_type") == "stream"
                   and o.get("name") == "stdout")


def main(argv=None, results: list | None = None) -> int:
    """Run the notebooks; ``results`` (when given) receives (name, seconds, summary) per finished notebook."""
    import argparse

    sys.path.insert(0, str(ROOT))
    from course_utils.profiles import active_profile

    parser = argparse.ArgumentParser(description="Run the course notebooks in order, headless.")
    parser.add_argument("--notebooks", type=Path, default=NOTEBOOKS, help="folder of 0*.ipynb notebooks")
    parser.add_argument("--outputs", type=Path, default=ROOT / "outputs", help="executed copies go to OUTPUTS/<profile>/")
    args = parser.parse_args(argv)
    profile = active_profile()
    os.environ["COURSE_PROFILE"] = profile.name
    out = args.outputs / profile.name
    out.mkdir(parents=True, exist_ok=True)
    books = sorted(args.notebooks.glob("0*.ipynb"))
    if not books:
        print(f"No notebooks (0*.ipynb) in {args.notebooks}", file=sys.stderr)
        return 1
    print(f"course: {len(books)} notebooks, profile {profile.name} (model {profile.model}); results in {out}")
    results = [] if results is None else results
    for path in books:
        print(f"▶ {path.stem} ...", flush=True)
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=3600, kernel_name="python3", resources={"metadata": {"path": str(args.notebooks)}})
        start = time.perf_counter()
        try:
            client.execute()
        except CellExecutionError as err:
            failing, message = None, str(err).strip().splitlines()[-1]
            for i, cell in enumerate(nb.cells):
                errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
                if errors:
                    failing, message = i, f"{errors[0]['ename']}: {errors[0]['evalue']}"
                    break
            _write(out / path.name, nbformat.writes(nb))
            print(f"✗ {path.name} failed in cell {failing}: {message}", file=sys.stderr)
            print(f"  the executed copy with the error is {out / path.name}", file=sys.stderr)
            return 1
        seconds = time.perf_counter() - start
        _write(out / path.name, nbformat.writes(nb))
        html, _ = HTMLExporter().from_notebook_node(nb)
        _write(out / path.with_suffix(".html").name, html)
        print(f"  done in {seconds:.1f} s", flush=True)
        results.append((path.stem, seconds, summary_text(nb)))
    print("\n=== summary ===")
    for name, seconds, text in results:
        print(f"\n{name} ({seconds:.1f} s)")
        for line in text.strip().splitlines():
            print(f"  {line}")
    print(f"\ntotal {sum(s for _, s, _ in results):.1f} s, profile {profile.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

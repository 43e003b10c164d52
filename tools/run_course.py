"""Run the whole course headless: notebooks 01 -> 07 in order with the active profile.

    make course                      # profile: COURSE_PROFILE, else gpu8gb with CUDA, else cpu
    COURSE_PROFILE=smoke make course
    make notebooks                   # = COURSE_PROFILE=cpu python tools/run_course.py --inplace

Executed copies and HTML go to outputs/<profile>/; with --inplace the executed outputs are also stored
in the notebooks themselves (the committed outputs learners see). A failing notebook stops the run
and names the notebook and the failing cell; an --inplace run never writes a failed notebook back.
The end prints each notebook's time and its summary (정리) numbers.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"


def kernel_manager(socket_dir: Path):
    """A python3 kernel that talks over local IPC sockets in ``socket_dir`` where the OS has them (Linux,
    macOS): over TCP, ipykernel warns at every start that the traffic is unencrypted. Windows has no IPC
    sockets in ZeroMQ, so the kernel stays on localhost TCP there."""
    from jupyter_client import KernelManager

    if os.name == "nt":
        return KernelManager(kernel_name="python3")
    return KernelManager(kernel_name="python3", transport="ipc", ip=str(socket_dir / "kernel"))


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
    from course_utils.files import write_text
    from course_utils.profiles import active_profile

    parser = argparse.ArgumentParser(description="Run the course notebooks in order, headless.")
    parser.add_argument("--notebooks", type=Path, default=NOTEBOOKS, help="folder of NN_*.ipynb notebooks")
    parser.add_argument("--outputs", type=Path, default=ROOT / "outputs", help="executed copies go to OUTPUTS/<profile>/")
    parser.add_argument("--inplace", action="store_true", help="also store the outputs in the notebooks themselves")
    parser.add_argument("--only", nargs="+", default=None, help="run only these notebooks (name prefixes, e.g. 00 05)")
    args = parser.parse_args(argv)
    profile = active_profile()
    os.environ["COURSE_PROFILE"] = profile.name
    out = args.outputs / profile.name
    out.mkdir(parents=True, exist_ok=True)
    books = sorted(args.notebooks.glob("[01][0-9]_*.ipynb"))
    if args.only:
        books = [b for b in books if b.name.startswith(tuple(args.only))]
    if not books:
        print(f"No notebooks (NN_*.ipynb) in {args.notebooks}", file=sys.stderr)
        return 1
    print(f"course: {len(books)} notebooks, profile {profile.name} (model {profile.model}); results in {out}")
    results = [] if results is None else results
    for path in books:
        print(f"▶ {path.stem} ...", flush=True)
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        try:
            with tempfile.TemporaryDirectory() as sockets:
                km = kernel_manager(Path(sockets))
                try:
                    NotebookClient(nb, timeout=3600, km=km, resources={"metadata": {"path": str(args.notebooks)}}).execute()
                finally:
                    if km.has_kernel:  # a kernel manager we made is ours to stop
                        km.shutdown_kernel()
        except DeadKernelError as err:
            write_text(out / path.name, nbformat.writes(nb))
            print(f"✗ {path.name}: the kernel died ({err}); out of memory is the usual cause: close other programs, "
                  f"or use a smaller profile (COURSE_PROFILE=smoke)", file=sys.stderr)
            return 1
        except CellExecutionError as err:
            failing, message = None, str(err).strip().splitlines()[-1]
            for i, cell in enumerate(nb.cells):
                errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
                if errors:
                    failing, message = i, f"{errors[0]['ename']}: {errors[0]['evalue']}"
                    break
            write_text(out / path.name, nbformat.writes(nb))
            print(f"✗ {path.name} failed in cell {failing}: {message}", file=sys.stderr)
            print(f"  the executed copy with the error is {out / path.name}", file=sys.stderr)
            return 1
        seconds = time.perf_counter() - start
        write_text(out / path.name, nbformat.writes(nb))
        if args.inplace:
            write_text(path, nbformat.writes(nb))
        html, _ = HTMLExporter().from_notebook_node(nb)
        write_text(out / path.with_suffix(".html").name, html)
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

"""Benchmark 7: each notebook's peak memory against its model, measured in the kernel that runs it (issue 41).

    .venv/bin/python benchmarks/notebook_memory.py --profile demo            # every lesson, in order
    .venv/bin/python benchmarks/notebook_memory.py --profile demo --notebooks 05 07

Each lesson runs headless (nbclient, its own kernel) with two cells added around it: the first imports what the
lessons import (torch, transformers, peft, bitsandbytes, trl, datasets, the course) and reads the kernel's resident
memory; the last reads the kernel's peak resident memory (``ru_maxrss``). The row is
``(peak - after imports) / the profile's model in fp32`` (its parameter count x 4 bytes): how many fp32 copies of the
model the notebook needed at its worst. Training's own memory (activations, logits, optimizer states) counts too.
The bar (issue 41): 07 at most 4, every other lesson at most 3. Linux only (``resource``). Writes
results/notebook_memory_<profile>_<date>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.common import machine_info, write_result  # noqa: E402

BAR = {"07": 4.0}  # every other lesson: DEFAULT_BAR
DEFAULT_BAR = 3.0
FIRST = """import json, resource, psutil
import torch, transformers, peft, bitsandbytes, trl, datasets  # noqa: what the lessons import
import course_utils.notebook, course_utils.train, course_utils.merge  # noqa
__memory_after_imports = psutil.Process().memory_info().rss"""
LAST = """print("__memory__" + json.dumps({"after_imports": __memory_after_imports,
                                     "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))"""


def measure(book: Path, profile: str) -> dict:
    """Run ``book`` with ``profile`` in its own kernel; the memory it reports and the seconds it took."""
    import nbformat
    from nbclient import NotebookClient

    from tools.run_course import kernel_manager

    nb = nbformat.read(book, as_version=4)
    nb.cells = [nbformat.v4.new_code_cell(FIRST), *nb.cells, nbformat.v4.new_code_cell(LAST)]
    os.environ.update(COURSE_PROFILE=profile, HF_HUB_OFFLINE="1")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as sockets:
        client = NotebookClient(nb, timeout=3600, kernel_name="python3", km=kernel_manager(Path(sockets)),
                                resources={"metadata": {"path": str(book.parent)}})
        client.execute()
    seconds = time.perf_counter() - start
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("output_type") == "stream")
    return {**json.loads(text.split("__memory__", 1)[1]), "seconds": seconds}


def main(argv=None) -> dict:
    from course_utils.models import count_params, meta_model
    from course_utils.profiles import get_profile
    from course_utils.units import GIB

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--notebooks", nargs="*", default=None, help="names like 05 07 (default: every lesson)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    fp32 = 4 * count_params(meta_model(profile.model)).total
    books = sorted((ROOT / "notebooks").glob("[01][0-9]_*.ipynb"))
    if args.notebooks:
        books = [b for b in books if any(b.name.startswith(n) for n in args.notebooks)]
    rows = []
    for book in books:
        m = measure(book, args.profile)
        ratio = (m["peak"] - m["after_imports"]) / fp32
        bar = BAR.get(book.name[:2], DEFAULT_BAR)
        rows.append({"notebook": book.stem, **m, "model_fp32_bytes": fp32, "ratio": ratio, "bar": bar,
                     "within_bar": ratio <= bar})
        print(f"{book.stem}: peak {m['peak'] / GIB:.2f} GiB, after imports {m['after_imports'] / GIB:.2f} GiB, "
              f"({m['peak'] - m['after_imports']:.3g} B) / model fp32 {fp32 / GIB:.2f} GiB = {ratio:.2f} "
              f"(bar {bar:g}) {'✓' if ratio <= bar else '✗'}, {m['seconds']:.0f} s", flush=True)
    result = {**machine_info(), "profile": args.profile, "model": profile.model, "rows": rows}
    write_result(f"notebook_memory_{args.profile}", result, args.out)
    return result


if __name__ == "__main__":
    main()

"""Write a notebook from a list of cells: ``md("...")`` and ``code("...")`` (used by build_notebooks.py)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import nbformat

CHECK = "# NBVAL_CHECK_OUTPUT\n"


def md(text: str):
    return nbformat.v4.new_markdown_cell(text.strip("\n"))


def code(text: str, check: bool = False):
    src = text.strip("\n")
    return nbformat.v4.new_code_cell((CHECK + src) if check else src)


def write(path: Path, cells) -> None:
    """Write atomically; keep the stored outputs of cells whose source did not change."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    old = {}
    if path.exists():
        for c in nbformat.read(path, as_version=4).cells:
            if c.cell_type == "code":
                old[c.source] = c
    for c in cells:
        if c.cell_type == "code" and c.source in old:
            c.outputs = old[c.source].outputs
            c.execution_count = old[c.source].execution_count
    nb.cells = cells
    for i, c in enumerate(nb.cells):
        c.id = f"cell-{i:02d}"
        # slides (make slides): the title and every '## ' section start a new slide
        starts = c.cell_type == "markdown" and (i == 0 or c.source.startswith("## "))
        c.metadata["slideshow"] = {"slide_type": "slide" if starts else "-"}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".ipynb")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        nbformat.write(nb, f)
    os.replace(tmp, path)

"""Where a lesson's code is in the take-home scripts (``scripts/``): the lines a learner finds it on.

The scripts import no ``course_utils``; this module only reads them, so a lesson can end with "this is
``scripts/train.py``, lines a-b" measured from the file itself rather than typed into prose.
"""
from __future__ import annotations

import ast
from pathlib import Path

SCRIPTS = ("prepare_dataset", "train", "inference", "merge_lora")


def scripts_dir() -> Path:
    """The repository's ``scripts/`` folder: beside the package in a checkout, else beside the notebooks' folder (the
    working directory of a lesson, also on Colab, where the package is installed elsewhere)."""
    for folder in (Path(__file__).resolve().parent.parent, Path.cwd().parent, Path.cwd()):
        if (folder / "scripts" / "train.py").is_file():
            return folder / "scripts"
    raise FileNotFoundError("scripts/ 폴더를 찾지 못했습니다: 저장소의 notebooks/ 폴더에서 노트북을 여세요 "
                            "(scripts/는 notebooks/ 옆에 있습니다)")


def definitions(script: str) -> dict[str, ast.AST]:
    """The top-level functions and assignments of ``scripts/<script>.py`` by name."""
    if script not in SCRIPTS:
        raise ValueError(f"script={script!r}: choose one of {', '.join(SCRIPTS)}")
    tree = ast.parse((scripts_dir() / f"{script}.py").read_text(encoding="utf-8"))
    found = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            found[node.name] = node
        elif isinstance(node, ast.Assign):
            found.update({t.id: node for t in node.targets if isinstance(t, ast.Name)})
    return found


def lines(script: str, *names: str) -> tuple[int, int]:
    """(first, last) line of the named top-level functions of ``scripts/<script>.py``, taken together."""
    found = definitions(script)
    missing = [n for n in names if n not in found]
    if missing:
        raise KeyError(f"scripts/{script}.py has no top-level {', '.join(missing)}")
    nodes = [found[n] for n in names]
    return min(n.lineno for n in nodes), max(n.end_lineno for n in nodes)


def where(script: str, *names: str) -> str:
    """One line for the learner: ``scripts/train.py 24–45행: prompt_of, tokenize``."""
    first, last = lines(script, *names)
    return f"scripts/{script}.py {first}–{last}행: {', '.join(names)}"


def call_lines(script: str, callee: str) -> tuple[int, int]:
    """(first, last) line of the first call of ``callee`` (``TrainingArguments``, ``model.generate``) in the script."""
    tree = ast.parse((scripts_dir() / f"{script}.py").read_text(encoding="utf-8"))
    calls = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func) == callee),
                   key=lambda n: n.lineno)
    if not calls:
        raise KeyError(f"scripts/{script}.py does not call {callee}")
    return calls[0].lineno, calls[0].end_lineno

"""Check the course notebooks (run by `make test`); with --sync, first bring each pair up to date.

    python tools/check_notebooks.py            # check only: exit 1 and name every problem
    python tools/check_notebooks.py --sync     # jupytext --sync every pair (the newer file wins), then check

What it checks:
- every .ipynb has its paired py:percent .py (and the reverse), and both hold the same cells: the same
  types, sources and slide marks. JupyterLab with jupytext writes both on save; an edit made with
  another tool is brought over by `--sync`;
- every lesson (notebooks/NN_*.ipynb) has its 학습 목표, 예상 소요 시간 and 정리 sections;
- every exercise check ``check_NN_…`` defined in course_utils/exercises/ is used in lesson NN and in
  notebooks/solutions/NN_solutions;
- no stored output holds an error, a traceback, a warning that says "incorrect" or "deprecated", anything
  on stderr (a library's message: fix its cause, or silence it with the reason in a comment), or a progress
  bar ("0%|          | 0/236": library chatter, not lesson content);
- no stored output line addressed to the learner is English (``english_lines``): a line without Hangul that holds
  a word which is not a name (identifiers, units, model and library names: ``LATIN_OK``). A cell whose output is
  code, YAML, commands or a model's structure carries the tag ``verbatim-output`` and is not read.
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("## 학습 목표", "## 예상 소요 시간", "## 정리")
BAD_WARNING = re.compile(r"incorrect|deprecat", re.IGNORECASE)
PROGRESS_BAR = re.compile(r"\d+%\|.*\| *\d+/\d+")  # tqdm's "37%|███▋      | 81/220"
HANGUL = re.compile(r"[\uac00-\ud7a3]")
VERBATIM = "verbatim-output"  # cell tag: the output is code, YAML, commands or a model's structure, not prose
LINE_OK = re.compile(r"\s*(<Figure size \d+x\d+ with \d+ Axes>|(python3?|py|make|ollama|cd|vllm|pip|accelerate) "
                     r"|trainable params: [\d,]+ \|\| all params: )")
# Latin words that name things, not sentences: units, formats, libraries, models, recipe values the lessons explain.
# Identifiers (snake_case, dotted, CamelCase, with digits), paths and ALL-CAPS acronyms are names by their shape.
LATIN_OK = frozenset("""
mib gib kib lora qlora dora adamw adam nf4 fp16 fp32 bf16 int8 chrf eos bos pad gguf safetensors json jsonl yaml
gemma smollm smollm2 tinyllama phi qwen gpt gpt2 llama instruct koalpaca alpaca kogpt linux macos windows wsl wsl2 colab
cpu gpu cuda avx avx2 avx512 rtx torch pytorch peft transformers trl bitsandbytes accelerate ollama vllm python pip
attention all-linear cosine linear constant true false none null greedy top-p top-k ok dequantized
apple silicon google intel record line field max amd nvidia ampere tensorboard jupyterlab lab make powershell bash cmd smoke demo cpu-tuned
rslora pissa olora loftq held-out dpo orpo sft fact loop runon guess own-loop own-runon own-wrong optim
""".split())


def _rel(path: Path) -> str:
    """``path`` relative to the working folder when it is below it (shorter messages)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def notebooks(folder: Path) -> list[Path]:
    """Every .ipynb under ``folder`` (lessons and solutions), checkpoints excluded."""
    return sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def sync(folder: Path) -> None:
    """``jupytext --sync`` every paired notebook: the more recently modified file of each pair wins."""
    from jupytext.cli import jupytext

    paths = [str(p) for p in notebooks(folder)] + [str(p) for p in folder.rglob("*.py")
                                                   if not p.with_suffix(".ipynb").exists()]
    if paths:
        jupytext(["--sync", "--quiet", *paths])


def _cells(nb) -> list[tuple]:
    return [(c.cell_type, c.source, c.metadata.get("slideshow", {}).get("slide_type"), tuple(c.metadata.get("tags", ())))
            for c in nb.cells]


def pairing_problems(folder: Path) -> list[str]:
    import jupytext
    import nbformat

    problems = []
    for py in sorted(folder.rglob("*.py")):
        if ".ipynb_checkpoints" not in py.parts and not py.with_suffix(".ipynb").exists():
            problems.append(f"{_rel(py)}: no paired .ipynb. Create it with: jupytext --sync {_rel(py)}")
    for path in notebooks(folder):
        py = path.with_suffix(".py")
        if not py.exists():
            problems.append(f"{_rel(path)}: no paired .py. Create it with: jupytext --sync {_rel(path)}")
            continue
        a, b = _cells(nbformat.read(path, as_version=4)), _cells(jupytext.read(py))
        if a != b:
            where = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
            problems.append(f"{_rel(path)} and {_rel(py)} differ (first at cell {where}; {len(a)} vs {len(b)} cells). Save it in "
                            f"JupyterLab, or run: python tools/check_notebooks.py --sync (the newer file wins)")
    return problems


OPENING = "이 노트북을 마치면"


def section_problems(folder: Path) -> list[str]:
    import nbformat

    problems = []
    for path in sorted(folder.glob("[01][0-9]_*.ipynb")):
        lines = {line.strip() for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"
                 for line in c.source.splitlines()}
        missing = [s for s in SECTIONS if s not in lines]
        if missing:
            problems.append(f"{_rel(path)}: missing section(s) {missing}. Every lesson has {', '.join(SECTIONS)}")
        problems += opening_problems(path)
    return problems


def opening_problems(path: Path) -> list[str]:
    """A lesson opens, right under its title, with what the learner can do after it: one paragraph of three lines
    or fewer that starts with "이 노트북을 마치면" (issue 42)."""
    import nbformat

    first = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
    paragraphs = [p for p in first.source.split("\n\n") if p.strip()]
    opening = paragraphs[1] if len(paragraphs) > 1 and paragraphs[0].startswith("# ") else ""
    if not opening.startswith(OPENING) or len(opening.splitlines()) > 3:
        return [f"{_rel(path)}: the paragraph under the title must say what the learner can do after the lesson, in "
                f"three lines or fewer, starting with {OPENING!r} (found: {opening[:60]!r})"]
    return []


def exercise_checks(exercises: Path) -> dict[str, list[str]]:
    """Lesson number -> names of the ``check_NN_…`` functions defined in the exercise modules."""
    found: dict[str, list[str]] = {}
    for module in sorted(exercises.glob("*.py")):
        for node in ast.parse(module.read_text(encoding="utf-8")).body:
            m = re.fullmatch(r"check_(\d\d)_\w+", getattr(node, "name", ""))
            if isinstance(node, ast.FunctionDef) and m:
                found.setdefault(m.group(1), []).append(node.name)
    return found


def exercise_problems(folder: Path, exercises: Path) -> list[str]:
    import nbformat

    problems = []
    for nn, names in exercise_checks(exercises).items():
        for kind, pattern in (("lesson", f"{nn}_*.ipynb"), ("solution", f"solutions/{nn}_solutions.ipynb")):
            paths = sorted(folder.glob(pattern))
            if not paths:
                problems.append(f"no {kind} notebook {_rel(folder / pattern)} for the checks {names}")
                continue
            code = "\n".join(c.source for c in nbformat.read(paths[0], as_version=4).cells if c.cell_type == "code")
            problems += [f"{_rel(paths[0])}: the exercise check {name} is never called; every check of lesson {nn} is "
                         f"used in the lesson and in its solution" for name in names if not re.search(rf"\b{name}\(", code)]
    return problems


def _texts(output) -> list[tuple[str, str]]:
    """(kind, text) of one stored output: stream name or 'data'."""
    if output.get("output_type") == "stream":
        return [(output.get("name", "stdout"), output.get("text", ""))]
    data = output.get("data", {})
    return [("data", data[k]) for k in ("text/plain", "text/html") if isinstance(data.get(k), str)]


def output_problems(folder: Path) -> list[str]:
    import nbformat

    problems = []
    for path in notebooks(folder):
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    problems.append(f"{_rel(path)}, cell {i}: stored error {output.get('ename')}: {output.get('evalue')}")
                for kind, text in _texts(output):
                    if "Traceback (most recent call last)" in text:
                        problems.append(f"{_rel(path)}, cell {i}: a traceback in the stored output")
                    if kind == "stderr" and text.strip():
                        problems.append(f"{_rel(path)}, cell {i}: stderr in the stored output "
                                        f"({text.strip().splitlines()[0][:120]!r}): fix its cause or silence it with the reason")
                    if bar := PROGRESS_BAR.search(text):
                        problems.append(f"{_rel(path)}, cell {i}: a progress bar in the stored output "
                                        f"({bar.group(0)[:60]!r}): turn the library's bar off")
                    for line in text.splitlines():
                        if BAD_WARNING.search(line) and (kind == "stderr" or "warn" in line.lower()):
                            problems.append(f"{_rel(path)}, cell {i}: stored warning {line.strip()[:160]!r}: fix its cause "
                                            f"(an 'incorrect' or 'deprecated' warning is never left in a lesson)")
    return problems


def _words(line: str) -> list[str]:
    """The plain words of a line: tokens that are not identifiers, paths, numbers or acronyms by their shape."""
    words = []
    for token in re.split(r"[\s,;:()\[\]{}<>'\"`|=·→←×+*]+", line):
        token = token.strip(".!?-")
        if len(token) < 3 or re.search(r"[\d_/.\\@#$%^&~]", token) or token.isupper():
            continue
        if re.search(r"[a-z][A-Z]", token):  # CamelCase: a class name
            continue
        if re.fullmatch(r"[A-Za-z][A-Za-z'-]*", token):
            words.append(token.lower())
    return words


def english_lines(text: str) -> list[str]:
    """Lines of ``text`` a learner reads as English: no Hangul, and a word that is not a name (``LATIN_OK``).
    A command line and matplotlib's figure repr are names too."""
    return [line for line in text.splitlines()
            if not HANGUL.search(line) and not LINE_OK.match(line) and any(w not in LATIN_OK for w in _words(line))]


def _html_text(html: str) -> str:
    """The text of an HTML table, one cell per line (a Styler's labels live only there)."""
    return "\n".join(t.strip() for t in re.split(r"<[^>]+>", re.sub(r"<style.*?</style>", "", html, flags=re.S))
                     if t.strip())


def english_problems(folder: Path) -> list[str]:
    """Stored output lines of the lessons that are English prose or labels (see ``english_lines``)."""
    import nbformat

    problems = []
    for path in notebooks(folder):
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if VERBATIM in cell.get("metadata", {}).get("tags", []):
                continue
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if "application/vnd.jupyter.widget-view+json" in data:
                    continue  # a widget: its labels are checked where the widget is built, not in this repr
                texts = [output.get("text", "")] if output.get("output_type") == "stream" else [
                    _html_text(data["text/html"]) if "text/html" in data else data.get("text/plain", "")]
                for text in texts:
                    problems += [f"{_rel(path)}, cell {i}: English output {line.strip()[:100]!r}: say it in Korean "
                                 f"(a name the lesson explains goes in LATIN_OK; code or YAML: tag the cell "
                                 f"{VERBATIM})" for line in english_lines(text)]
    return problems


# One term per idea (notebooks/용어.md): a rejected name -> the glossary's. Searched in Korean lines only (an English
# appendix may say "held-out"); "held-out" is allowed in parentheses after the Korean term, e.g. 평가 세트(held-out).
REJECTED_TERMS = {
    "반복 벌점": "반복 패널티", "하한": "바닥", "학습하는 값": "학습 파라미터", "원안": "처음 설계", "탐침": "확인 질문",
    "묶": "패킹(packing), 모으다, 공유하다", "0인 어댑터": "학습 전 어댑터(B = 0)", "대상 모듈": "타깃 모듈",
    "개발 세트": "검증 세트", "테스트 세트": "시험 세트", "held-out": "평가 세트, 검증 세트 또는 시험 세트",
}
_REJECTED = re.compile("|".join(r"(?<![(\-])held-out" if t == "held-out" else re.escape(t) for t in REJECTED_TERMS))


def term_lines(text: str) -> list[tuple[str, str]]:
    """(rejected term, line) for each Korean line of ``text`` that uses a rejected name (``REJECTED_TERMS``)."""
    return [(m.group(0), line.strip()) for line in text.splitlines() if HANGUL.search(line)
            for m in _REJECTED.finditer(line)]


def term_problems(folder: Path, readme: Path | None = None) -> list[str]:
    """Rejected synonyms in the lessons (markdown, code and stored outputs) and in the README's Korean lines."""
    import nbformat

    problems = []

    def report(where: str, text: str) -> None:
        problems.extend(f"{where}: {term!r} in {line[:90]!r}: the course says {REJECTED_TERMS[term]} "
                        f"(notebooks/용어.md)" for term, line in term_lines(text))

    for path in notebooks(folder):
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            report(f"{_rel(path)}, cell {i}", cell.source)
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                report(f"{_rel(path)}, cell {i} output", output.get("text", "") + data.get("text/plain", "")
                       + (_html_text(data["text/html"]) if "text/html" in data else ""))
    if readme is not None and readme.exists():
        report(readme.name, readme.read_text(encoding="utf-8"))
    return problems


def claims(folder: Path) -> list[str]:
    """Numbers typed in the README and the lessons' markdown against the stored outputs (tools/check_claims.py);
    only for the course's own notebooks folder (a test's copy has no README beside it)."""
    if folder.resolve() != (ROOT / "notebooks").resolve():
        return []
    sys.path.insert(0, str(Path(__file__).parent))
    from check_claims import all_problems

    return all_problems(ROOT)


def check(folder: Path = ROOT / "notebooks", exercises: Path = ROOT / "course_utils" / "exercises") -> list[str]:
    """Every problem found, one line each (empty when all is well)."""
    return (pairing_problems(folder) + section_problems(folder) + exercise_problems(folder, exercises)
            + output_problems(folder) + english_problems(folder) + claims(folder)
            + term_problems(folder, ROOT / "README.md" if folder.resolve() == (ROOT / "notebooks").resolve() else None))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Check the course notebooks (pairing, sections, exercises, outputs).")
    parser.add_argument("--sync", action="store_true", help="jupytext --sync every pair first (the newer file wins)")
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks")
    parser.add_argument("--exercises", type=Path, default=ROOT / "course_utils" / "exercises")
    args = parser.parse_args(argv)
    if args.sync:
        sync(args.notebooks)
    problems = check(args.notebooks, args.exercises)
    for p in problems:
        print(f"✗ {p}", file=sys.stderr)
    print(f"notebooks: {len(notebooks(args.notebooks))} checked, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

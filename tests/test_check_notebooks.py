"""tools/check_notebooks.py: the notebooks are the source, paired with py:percent files that cannot drift.

Each test works on a copy of real notebooks in a temporary folder, never on the repository's own files.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import check_notebooks  # noqa: E402


@pytest.fixture
def course(tmp_path):
    """A copy of lesson 03 and its solution (both files of each pair), the jupytext config and the exercises."""
    nb = tmp_path / "notebooks"
    (nb / "solutions").mkdir(parents=True)
    shutil.copy(ROOT / "notebooks" / "jupytext.toml", nb)
    for stem in ("03_lora_config", "solutions/03_solutions"):
        for suffix in (".ipynb", ".py"):
            shutil.copy(ROOT / "notebooks" / f"{stem}{suffix}", nb / f"{stem}{suffix}")
    ex = tmp_path / "exercises"
    ex.mkdir()
    shutil.copy(ROOT / "course_utils" / "exercises" / "lora_config.py", ex)
    return nb, ex


def newer(path: Path) -> None:
    """Make ``path`` the more recently modified file of its pair (what an edit does)."""
    t = path.stat().st_mtime + 10
    os.utime(path, (t, t))


def test_the_repository_notebooks_pass():
    assert check_notebooks.check() == []


def test_a_markdown_edit_in_the_ipynb_reaches_the_py(course):
    nb_dir, ex = course
    path = nb_dir / "03_lora_config.ipynb"
    nb = nbformat.read(path, as_version=4)
    title = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown")
    nb.cells[title].source = nb.cells[title].source.replace("그것만 학습합니다.", "그것만 학습합니다 (instructor's edit).")
    nbformat.write(nb, path)
    newer(path)
    problems = check_notebooks.check(nb_dir, ex)
    assert any("03_lora_config.ipynb and" in p and f"differ (first at cell {title}" in p for p in problems), problems
    check_notebooks.sync(nb_dir)
    assert "그것만 학습합니다 (instructor's edit)." in (nb_dir / "03_lora_config.py").read_text(encoding="utf-8")
    assert check_notebooks.check(nb_dir, ex) == []


def test_an_edit_in_the_py_reaches_the_ipynb_and_keeps_outputs_and_ids(course):
    nb_dir, ex = course
    path = nb_dir / "03_lora_config.ipynb"
    before = nbformat.read(path, as_version=4)
    py = nb_dir / "03_lora_config.py"
    py.write_text(py.read_text(encoding="utf-8").replace("## 1. W + (α/r)·B·A", "## 1. W + (α/r)·B·A (py edit)"),
                  encoding="utf-8")
    newer(py)
    check_notebooks.sync(nb_dir)
    after = nbformat.read(path, as_version=4)
    assert any("## 1. W + (α/r)·B·A (py edit)" in c.source for c in after.cells)
    assert [c.id for c in after.cells] == [c.id for c in before.cells]
    assert [c.get("outputs") for c in after.cells] == [c.get("outputs") for c in before.cells]
    assert check_notebooks.check(nb_dir, ex) == []


def test_a_broken_pairing_fails_the_command_line(course):
    nb_dir, ex = course
    py = nb_dir / "03_lora_config.py"
    cells = len(nbformat.read(nb_dir / "03_lora_config.ipynb", as_version=4).cells)
    py.write_text(py.read_text(encoding="utf-8") + "\n# %%\nprint('only in the .py')\n", encoding="utf-8")
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "check_notebooks.py"), "--notebooks", str(nb_dir),
                          "--exercises", str(ex)], capture_output=True, text=True)
    assert run.returncode == 1
    assert "03_lora_config.ipynb and" in run.stderr and f"{cells} vs {cells + 1} cells" in run.stderr
    (nb_dir / "solutions" / "03_solutions.py").unlink()
    assert any("03_solutions.ipynb: no paired .py" in p for p in check_notebooks.check(nb_dir, ex))


def test_sections_exercises_and_outputs_are_checked(course):
    nb_dir, ex = course
    path = nb_dir / "03_lora_config.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = cell.source.replace("## 정리", "## 요약").replace("이 노트북을 마치면 모델", "모델")
        if cell.cell_type == "code" and "check_03_challenge" in cell.source:
            cell.source = cell.source.replace("check_03_challenge(answer)", "print(answer)")
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("stream", name="stderr", text="UserWarning: bitsandbytes::gemv_4bit: an "
                                           "autograd kernel was not registered ... may lead to silently incorrect behavior\n"),
                    nbformat.v4.new_output("error", ename="ValueError", evalue="boom", traceback=[]),
                    nbformat.v4.new_output("stream", name="stderr", text="Converting and de-quantizing GGUF tensors...:"
                                           "   0%|          | 0/236 [00:00<?, ?it/s]")]
    nbformat.write(nb, path)
    check_notebooks.sync(nb_dir)  # pairing is fine after a sync: the other checks must still fail
    problems = "\n".join(check_notebooks.check(nb_dir, ex))
    assert "missing section(s) ['## 정리']" in problems
    assert "03_lora_config.ipynb: the paragraph under the title must say what the learner can do" in problems
    assert "check_03_challenge is never called" in problems
    assert "stored warning" in problems and "silently incorrect" in problems
    assert "stored error ValueError: boom" in problems
    assert "a progress bar in the stored output ('0%|          | 0/236')" in problems
    assert "stderr in the stored output ('UserWarning: bitsandbytes::gemv_4bit" in problems


def test_ruff_fails_on_a_seeded_defect(tmp_path):
    """`make test` runs ruff over the paired .py files: an unused import in a lesson fails it."""
    py = tmp_path / "notebooks" / "03_lora_config.py"
    py.parent.mkdir()
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copy(ROOT / "notebooks" / "03_lora_config.py", py)
    ruff = [sys.executable, "-m", "ruff", "check", "--no-cache", "notebooks"]
    assert subprocess.run(ruff, cwd=tmp_path, capture_output=True, text=True).returncode == 0
    py.write_text(py.read_text(encoding="utf-8") + "\n# %%\nimport json\n", encoding="utf-8")  # never used
    run = subprocess.run(ruff, cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 1 and "F401" in run.stdout


def test_english_output_lines_are_flagged_and_names_are_not():
    english = check_notebooks.english_lines
    assert english("held-out answer loss after 40 steps: 1.9860") == ["held-out answer loss after 40 steps: 1.9860"]
    assert english("trainable: 737,280 / total: 268,835,456") != []
    assert english("gemma-3-270m · float32 · nf4 · LoRA r=8 · 2.83 MiB") == []  # names, units, numbers
    assert english("평가 손실 (held-out loss): 1.73") == []  # Korean, with the English term beside it
    assert english("python -m course_utils.train --profile cpu --output outputs/x") == []  # a command
    assert english("<Figure size 700x400 with 1 Axes>") == []


def test_a_stored_english_output_is_a_problem_unless_the_cell_is_verbatim(course):
    nb_dir, ex = course
    path = nb_dir / "03_lora_config.ipynb"
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="the adapter was saved\n")]
    nbformat.write(nb, path)
    assert any("English output 'the adapter was saved'" in p for p in check_notebooks.english_problems(nb_dir))
    cell.metadata["tags"] = [check_notebooks.VERBATIM]
    nbformat.write(nb, path)
    assert not any("the adapter was saved" in p for p in check_notebooks.english_problems(nb_dir))


def test_a_number_typed_in_the_readme_that_the_outputs_do_not_hold_is_a_problem(tmp_path):
    from check_claims import CLAIMS, claim_problems

    (tmp_path / "notebooks").mkdir()
    for name in ("01_vram_budgeting", "05_training", "06_inference", "10_preference_tuning"):
        shutil.copy(ROOT / "notebooks" / f"{name}.ipynb", tmp_path / "notebooks")
    shutil.copytree(ROOT / "benchmarks" / "results", tmp_path / "benchmarks" / "results")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (tmp_path / "README.md").write_text(readme, encoding="utf-8")
    assert claim_problems(tmp_path) == []
    seeded = readme.replace("→ 23/32", "→ 24/32", 1)
    assert seeded != readme
    (tmp_path / "README.md").write_text(seeded, encoding="utf-8")
    assert claim_problems(tmp_path) == [
        f"README.md: '{CLAIMS[0].name}': the text says eos_tuned = 24/32, the stored outputs say 23/32. "
        "Take the number from the output"]
    (tmp_path / "README.md").write_text(readme.replace("시험 세트 답변 손실 2.674", "답변 손실은 2.674"), encoding="utf-8")
    assert any("is no longer found" in p for p in claim_problems(tmp_path))


def test_a_number_in_a_lessons_markdown_must_be_printed_by_that_lesson(tmp_path):
    """Issue 43: a measured-looking number (decimal, percentage, count) typed in any lesson's markdown must be in
    that lesson's stored outputs, unless check_claims.DEFINED names it as a definition."""
    from check_claims import markdown_number_problems

    (tmp_path / "notebooks").mkdir()
    for path in (ROOT / "notebooks").glob("[01][0-9]_*.ipynb"):
        shutil.copy(path, tmp_path / "notebooks")
    assert markdown_number_problems(tmp_path) == []
    path = tmp_path / "notebooks" / "05_training.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("학습 후 평가 손실은 9.871로 71.3 % 줄었고, 확인 질문 21/23을 맞혔습니다."))
    nbformat.write(nb, path)
    problems = markdown_number_problems(tmp_path)
    assert [p.split(" says ")[1].split(",")[0] for p in problems] == ["9.871", "71.3 %", "21/23"]
    assert all(p.startswith("notebooks/05_training.ipynb: the markdown says") for p in problems)


def test_readme_profile_facts_must_be_the_profiles(tmp_path):
    """Issue 43: the README said `demo` ran 40 steps on 24 held-out records in one place and 30 on 16 in another;
    a line about one profile must state its profiles.yaml values."""
    from check_claims import profile_fact_problems

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (tmp_path / "README.md").write_text(readme, encoding="utf-8")
    assert profile_fact_problems(tmp_path) == []
    demo = next(line for line in readme.splitlines() if line.startswith("| `demo` |"))
    wrong = demo.replace("24 스텝", "40 스텝").replace("평가 레코드 16개", "평가 레코드 24개")
    (tmp_path / "README.md").write_text(readme.replace(demo, wrong), encoding="utf-8")
    problems = profile_fact_problems(tmp_path)
    assert len(problems) == 2 and '`demo` "40 스텝", but profiles.yaml says 24' in problems[0]
    assert '"평가 레코드 24개", but profiles.yaml says 16' in problems[1]


def test_two_lessons_that_print_one_measurement_must_agree(tmp_path):
    """Issue 43: the merged model's held-out loss read 1.7337 in 07 and 1.7339 in 08."""
    from check_claims import agreement_problems

    (tmp_path / "notebooks").mkdir()
    for name in ("05_training", "07_merging", "08_deployment"):
        shutil.copy(ROOT / "notebooks" / f"{name}.ipynb", tmp_path / "notebooks")
    assert agreement_problems(tmp_path) == []
    path = tmp_path / "notebooks" / "08_deployment.ipynb"
    text = path.read_text(encoding="utf-8")
    seeded = re.sub(r"내보내는 폴더 (\d\.\d{4})", lambda m: f"내보내는 폴더 {float(m.group(1)) + 0.0002:.4f}", text, count=1)
    assert seeded != text
    path.write_text(seeded, encoding="utf-8")
    problems = agreement_problems(tmp_path)
    assert len(problems) == 1 and problems[0].startswith("07 and 08: the merged model's held-out loss")


def glossary_anchor(heading: str) -> str:
    """The anchor GitHub and JupyterLab give a markdown heading: lower case, spaces to '-', punctuation dropped."""
    import re

    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_lesson_links_the_glossary_and_every_link_lands_on_a_term():
    import re

    glossary = (ROOT / "notebooks" / "용어.md").read_text(encoding="utf-8")
    anchors = {glossary_anchor(line.lstrip("#")) for line in glossary.splitlines() if line.startswith("### ")}
    assert len(anchors) >= 40 and "확인-질문-probe" in anchors and "α-lora_alpha" in anchors
    for lesson in sorted((ROOT / "notebooks").glob("[01][0-9]_*.py")):
        text = lesson.read_text(encoding="utf-8")
        links = re.findall(r"\]\(용어\.md(?:#([^)]+))?\)", text)
        assert links, f"{lesson.name} never links the glossary (notebooks/용어.md)"
        missing = [a for a in links if a and a not in anchors]
        assert not missing, f"{lesson.name} links terms the glossary does not have: {missing}"


def test_lesson_06_stays_short():
    """Issue 42: 06 has at most 30 cells and 120 lines of stored output (cpu); long tables go to files."""
    nb = nbformat.read(ROOT / "notebooks" / "06_inference.ipynb", as_version=4)
    lines = 0
    for cell in nb.cells:  # a cell's stream outputs read as one text (a streamed answer arrives in pieces)
        outputs = cell.get("outputs", [])
        lines += len("".join(o.get("text", "") for o in outputs if o.output_type == "stream").splitlines())
        lines += sum(len(o.get("data", {}).get("text/plain", "").splitlines()) for o in outputs
                     if o.output_type != "stream")
    assert len(nb.cells) <= 30 and lines <= 120, (len(nb.cells), lines)


def test_a_rejected_synonym_in_a_lesson_or_the_readme_is_named_with_the_glossarys_term(tmp_path):
    """Issue 43: one term per idea. The lessons (prose, code, stored outputs) and the README use none of the rejected
    names; a seeded one in a lesson's markdown, an output and the README is caught with the term to use instead."""
    from check_notebooks import REJECTED_TERMS, term_lines, term_problems

    assert term_problems(ROOT / "notebooks", ROOT / "README.md") == []
    for path in (ROOT / "notebooks").glob("[01][0-9]_*.ipynb"):
        shutil.copy(path, tmp_path)
    path = tmp_path / "06_inference.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("어댑터의 탐침 정답은 늘었습니다."))
    cell = nbformat.v4.new_code_cell("print(1)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="반복 벌점 1.1로 생성했습니다\n")]
    nb.cells.append(cell)
    nbformat.write(nb, path)
    readme = tmp_path / "README.md"
    readme.write_text("평가 세트(held-out)는 그대로 두고, held-out 손실을 봅니다.\nThe held-out loss, in English.\n",
                      encoding="utf-8")
    problems = term_problems(tmp_path, readme)
    assert len(problems) == 3
    assert "'탐침'" in problems[0] and "확인 질문" in problems[0] and "cell" in problems[0]
    assert "'반복 벌점'" in problems[1] and "output" in problems[1] and "반복 패널티" in problems[1]
    assert problems[2].startswith("README.md: 'held-out'")
    assert set(REJECTED_TERMS) >= {"탐침", "원안", "묶", "0인 어댑터", "반복 벌점", "하한", "학습하는 값"}
    assert term_lines("대상 모듈을 고릅니다") == [("대상 모듈", "대상 모듈을 고릅니다")]
    assert term_lines("평가 대상은 시험 세트입니다") == []  # 대상 alone is an ordinary word

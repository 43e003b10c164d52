import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent


def _notebook(path, code):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in code]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_runner_stops_at_the_failing_notebook_and_names_it(tmp_path):
    books = tmp_path / "nbs"
    books.mkdir()
    _notebook(books / "01_ok.ipynb", ["print('정리: 1 + 1 =', 1 + 1)"])
    _notebook(books / "02_broken.ipynb", ["x = 1", "raise ValueError('deliberately broken')"])
    _notebook(books / "03_never.ipynb", ["print('should not run')"])
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "run_course.py"), "--notebooks", str(books),
                          "--outputs", str(tmp_path / "out")], capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ, "COURSE_PROFILE": "smoke"})
    assert run.returncode == 1
    assert "▶ 01_ok" in run.stdout and "done in" in run.stdout
    assert "02_broken.ipynb failed in cell 1: ValueError: deliberately broken" in run.stderr
    assert "03_never" not in run.stdout
    assert (tmp_path / "out" / "smoke" / "01_ok.html").exists()
    assert (tmp_path / "out" / "smoke" / "02_broken.ipynb").exists()


def test_runner_prints_a_summary(tmp_path):
    books = tmp_path / "nbs"
    books.mkdir()
    _notebook(books / "01_a.ipynb", ["x = 2", "print(f'held-out loss: 2.0 -> {x / 2}')"])
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "run_course.py"), "--notebooks", str(books),
                          "--outputs", str(tmp_path / "out")], capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ, "COURSE_PROFILE": "smoke"})
    assert run.returncode == 0, run.stderr
    assert "=== summary ===" in run.stdout and "held-out loss: 2.0 -> 1.0" in run.stdout


def test_running_the_course_twice_overwrites_its_outputs(tmp_path):
    """A second run replaces every output of the first (same files, new content), leaving nothing stale."""
    books = tmp_path / "nbs"
    books.mkdir()
    _notebook(books / "01_a.ipynb", ["import time, pathlib", "stamp = time.time_ns()",
                                     "pathlib.Path('made_by_notebook.txt').write_text(str(stamp))",
                                     "print('stamp', stamp)"])
    out = tmp_path / "out" / "smoke"
    stamps = []
    for _ in range(2):
        run = subprocess.run([sys.executable, str(ROOT / "tools" / "run_course.py"), "--notebooks", str(books),
                              "--outputs", str(tmp_path / "out")], capture_output=True, text=True, timeout=300,
                             env={**__import__("os").environ, "COURSE_PROFILE": "smoke"})
        assert run.returncode == 0, run.stderr
        executed = nbformat.read(out / "01_a.ipynb", as_version=4)
        stamps.append(executed.cells[-1].outputs[0]["text"])
        assert stamps[-1] in (out / "01_a.html").read_text()
        assert stamps[-1].split()[1] == (books / "made_by_notebook.txt").read_text()
    assert stamps[0] != stamps[1]  # the second run's outputs replaced the first's
    assert sorted(p.name for p in out.iterdir()) == ["01_a.html", "01_a.ipynb"]

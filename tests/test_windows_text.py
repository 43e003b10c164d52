"""Commands a Windows learner is shown must run in PowerShell 5.1: no `make` without its `python -m
course_utils.course` equivalent on the same line, no `&&` chains, no bash-only `VAR=value` prefixes — in the README
(outside blocks marked ```bash), in every stored notebook output, and in notebook 00's advice for every platform."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAKE = re.compile(r"\bmake (course|test|notebooks|lab|tensorboard|slides|benchmarks|deploy-check|\.venv)")
EQUIVALENT = "-m course_utils.course"
ENV_PREFIX = re.compile(r"(?<![\w$:])COURSE_PROFILE=\w+")  # bash's `COURSE_PROFILE=smoke make test` / `export ...`


def problems(lines: list[tuple[str, str]]) -> list[str]:
    """(where, text) lines a Windows learner could copy that would not run in PowerShell."""
    found = []
    for where, line in lines:
        if "&&" in line:
            found.append(f"{where}: `&&` chain (PowerShell 5.1 has none): {line.strip()[:120]}")
        if MAKE.search(line) and EQUIVALENT not in line:
            found.append(f"{where}: `make` without `python {EQUIVALENT} ...` beside it: {line.strip()[:120]}")
        if ENV_PREFIX.search(line) and "$env:COURSE_PROFILE" not in line:
            found.append(f"{where}: bash-only `COURSE_PROFILE=...` without the PowerShell form: {line.strip()[:120]}")
    return found


def readme_lines(text: str) -> list[tuple[str, str]]:
    """README lines outside ```bash blocks (a bash block is for Linux, macOS and WSL2 only)."""
    lines, in_bash, in_block = [], False, False
    for n, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("```"):  # a fence, also indented inside a list item
            in_block = not in_block
            in_bash = in_block and line.strip() in ("```bash", "```sh")
            continue
        if not in_bash:
            lines.append((f"README.md:{n}", line))
    return lines


def output_lines(notebook: Path) -> list[tuple[str, str]]:
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    lines = []
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            texts = [out.get("text", "")] + [v for k, v in out.get("data", {}).items() if k.startswith("text/")]
            for text in texts:
                for line in ("".join(text) if isinstance(text, list) else text).splitlines():
                    lines.append((f"{notebook.name} cell {i}", line))
    return lines


def test_the_check_finds_what_powershell_rejects():
    bad = [("x", "cd outputs/08_gguf && ollama create m -f Modelfile"), ("x", "`make .venv/.installed`를 실행하세요"),
           ("x", "강사 시연은 `COURSE_PROFILE=smoke`만 바꾸면 됩니다")]
    assert len(problems(bad)) == 3
    good = [("x", "| 테스트 | `make test` | `python -m course_utils.course test` |"),
            ("x", "bash: `export COURSE_PROFILE=demo`, PowerShell: `$env:COURSE_PROFILE=\"demo\"`"),
            ("x", "ollama create lora-course-cpu -f Modelfile")]
    assert problems(good) == []
    assert readme_lines("a\n```bash\nmake test && echo\n```\nb") == [("README.md:1", "a"), ("README.md:5", "b")]


def test_the_readme_gives_every_command_in_a_form_powershell_runs():
    assert problems(readme_lines((ROOT / "README.md").read_text(encoding="utf-8"))) == []


def test_the_readmes_windows_and_colab_sections_name_no_make_and_no_unknown_address():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    windows = text.split("### Windows (PowerShell)", 1)[1].split("\n### ", 1)[0]
    assert not MAKE.search(windows) and "&&" not in windows and "$env:COURSE_PROFILE" in text
    colab = text.split("### Google Colab", 1)[1].split("\n## ", 1)[0]
    assert "<이 저장소의 주소>" not in colab and "git archive" in colab  # a zip the README tells how to make


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("**/[01][0-9]_*.ipynb")), ids=lambda p: p.stem)
def test_stored_notebook_outputs_show_no_command_powershell_rejects(notebook):
    assert problems(output_lines(notebook)) == []


def test_notebook_00s_advice_runs_in_powershell_on_every_platform_and_failure():
    from course_utils.setup_check import diagnose, where_to_run
    from course_utils.units import GIB

    healthy = {"python": "3.11.7", "torch": "2.13.0", "torch_cuda_build": None, "cuda_available": False,
               "nvidia_smi": False, "gpu_name": None, "gpu_memory_bytes": None, "cpu_count": 4,
               "bitsandbytes": {"installed": True, "version": "0.50.2", "nf4_works": True, "device": "cpu"},
               "profile": "cpu", "profile_from_env": False, "network": False, "hub_offline": True,
               "offline_models": {"gemma-3-270m": {"installed": True, "cached": True}}, "cache_root": "/c",
               "free_disk_bytes": 50 * GIB}
    broken = [{"os": "Windows", "machine": "AMD64"}, {"os": "Darwin", "machine": "arm64"}, {"colab": True},
              {"os": "Linux", "machine": "x86_64"}, {"profile": "gpu8gb"}, {"free_disk_bytes": GIB},
              {"offline_models": {"gemma-3-270m": {"installed": False, "cached": False}}},
              {"bitsandbytes": {"installed": False}}, {"nvidia_smi": True}]
    lines = [(f"00 {change}", f"{c.value} {c.advice}") for change in broken for c in diagnose({**healthy, **change})]
    lines += [("00 where_to_run", " ".join(row.values())) for row in where_to_run()]
    assert problems(lines) == []

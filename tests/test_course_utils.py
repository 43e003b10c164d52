"""API drift: every keyword argument course_utils passes to transformers, peft, bitsandbytes,
accelerate and datasets must exist in the installed version.

The course's source is parsed (ast); each call whose callee resolves to one of those libraries
(`TrainingArguments(...)`, `peft.LoraConfig(...)`, `AutoModelForCausalLM.from_pretrained(...)`, ...)
has its keyword names checked against `inspect.signature` of the installed callable. Where the
callable takes `**kwargs` and forwards them (transformers' `from_pretrained`), the keyword must be
read by name in the source of the code that consumes it. Calls on instances (`model.generate`) are
not resolved statically and are covered by the notebooks running under nbval.
"""
from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

LIBRARIES = ("transformers", "peft", "bitsandbytes", "accelerate", "datasets")
ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "course_utils"


def _consumers(dotted: str) -> list:
    """Where forwarded **kwargs of an Auto class end up being read."""
    import transformers

    name = next((part for part in reversed(dotted.split(".")) if part[:1].isupper()), "")
    if name.startswith("AutoModel"):
        return [transformers.PreTrainedModel.from_pretrained]
    if name.endswith("Streamer"):  # extra keywords go to tokenizer.decode
        return [transformers.PreTrainedTokenizerBase.decode]
    if name == "AutoConfig":  # 5.23: PreTrainedConfig._get_config_dict reads gguf_file from **kwargs
        return [transformers.PreTrainedConfig.get_config_dict, transformers.PreTrainedConfig._get_config_dict]
    if name == "AutoTokenizer":
        return [transformers.PreTrainedTokenizerBase.from_pretrained, transformers.PreTrainedTokenizerBase._from_pretrained]
    return []


def resolve(dotted: str):
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def library_calls(source: str, where: str) -> list[tuple[str, str, list[str]]]:
    """(where:line, dotted callee, keyword names) for calls into the checked libraries."""
    tree = ast.parse(source)
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in LIBRARIES:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in LIBRARIES:
                    names[alias.asname or alias.name.split(".")[0]] = alias.asname and alias.name or alias.name.split(".")[0]
    calls = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        chain, f = [], node.func
        while isinstance(f, ast.Attribute):
            chain.insert(0, f.attr)
            f = f.value
        if isinstance(f, ast.Name) and f.id in names:
            keywords = [k.arg for k in node.keywords if k.arg is not None]
            if keywords:
                calls.append((f"{where}:{node.lineno}", ".".join([names[f.id], *chain]), keywords))
    return calls


def drift_problems(calls) -> tuple[list[str], int]:
    """(problems, number of keyword uses checked)."""
    problems, checked = [], 0
    for where, dotted, keywords in calls:
        try:
            obj = resolve(dotted)
        except (ImportError, AttributeError):
            problems.append(f"{where}: {dotted} no longer exists")
            continue
        try:
            params = inspect.signature(obj).parameters
        except (TypeError, ValueError):
            problems.append(f"{where}: cannot read the signature of {dotted}")
            continue
        takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
        sources = None
        for kw in keywords:
            checked += 1
            if kw in params:
                continue
            if takes_kwargs:  # forwarded: a consumer must take it as a parameter or read it by name
                if sources is None:
                    sources = "".join(inspect.getsource(c) for c in [obj, *_consumers(dotted)])
                consumer_params = {n for c in _consumers(dotted) for n in inspect.signature(c).parameters}
                if kw in consumer_params or f'"{kw}"' in sources or f"'{kw}'" in sources:
                    continue
            problems.append(f"{where}: {dotted}(..., {kw}=...) — no such keyword in the installed version")
    return problems, checked


def test_every_keyword_passed_to_the_libraries_exists():
    """The package and the lesson cells (notebooks/*.py: the calls a learner copies) alike."""
    lessons = sorted((ROOT / "notebooks").glob("[0-9]*.py"))
    calls = [c for path in [*sorted(PACKAGE.glob("*.py")), *lessons]
             for c in library_calls(path.read_text(encoding="utf-8"), path.name)]
    lesson_callees = {dotted for where, dotted, _ in calls if where.split(":")[0] in {p.name for p in lessons}}
    for expected in ("transformers.TrainingArguments", "peft.LoraConfig", "transformers.BitsAndBytesConfig"):
        assert expected in lesson_callees, f"no lesson writes {expected}(...): {sorted(lesson_callees)}"
    problems, checked = drift_problems(calls)
    assert not problems, "\n".join(problems)
    callees = {dotted for _, dotted, _ in calls}
    for expected in ("transformers.TrainingArguments", "peft.LoraConfig", "transformers.BitsAndBytesConfig"):
        assert expected in callees, f"the scan no longer sees {expected}: {sorted(callees)}"
    assert checked >= 40, checked


def test_the_check_catches_a_renamed_keyword():
    code = ("from transformers import TrainingArguments, AutoModelForCausalLM\n"
            "TrainingArguments(output_dir='x', gradient_checkpointing_kwargz={})\n"
            "AutoModelForCausalLM.from_pretrained('x', torch_dtypo=1)\n"
            "import peft\npeft.LoraConfig(r=8, lora_alfa=16)\n")
    problems, checked = drift_problems(library_calls(code, "example.py"))
    assert checked == 5
    assert [p.split(": ", 1)[1].split("(")[0] for p in problems] == [
        "transformers.TrainingArguments", "transformers.AutoModelForCausalLM.from_pretrained", "peft.LoraConfig"]


# ---- platform neutrality: the package imports and works where Unix-only modules do not exist (Windows) ---------

UNIX_ONLY = ("fcntl", "resource", "termios", "pwd", "grp")


def test_every_module_imports_and_works_without_unix_only_modules(tmp_path):
    """In a fresh interpreter where fcntl, resource, termios, pwd and grp cannot be imported (as on Windows):
    import every course_utils module and tools/run_course.py, take the cache lock, read the peak memory.

    The libraries are imported before the modules are blocked: on Linux their own backends use them (psutil's
    Linux backend imports resource; on Windows psutil has another backend). What is tested is that no course
    code needs them."""
    import subprocess
    import sys

    modules = sorted(p.stem for p in (ROOT / "course_utils").glob("*.py") if p.stem != "__init__")
    modules += sorted(f"exercises.{p.stem}" for p in (ROOT / "course_utils" / "exercises").glob("*.py"))
    script = f"""
import sys
import psutil, torch, transformers, peft, accelerate, bitsandbytes, filelock  # noqa: E401
from transformers import Trainer  # loads its lazy submodules now, while resource is still importable
for name in {UNIX_ONLY!r}:
    sys.modules[name] = None  # `import {{name}}` now raises ImportError
import importlib, runpy
for name in {modules!r}:
    importlib.import_module("course_utils." + name)
runpy.run_path({str(ROOT / "tools" / "run_course.py")!r}, run_name="not_main")
from filelock import FileLock
from pathlib import Path
with FileLock(Path({str(tmp_path)!r}) / ".convert.lock"):
    pass
from course_utils.memory import peak_memory_bytes
assert peak_memory_bytes() > 10 * 1024**2
print("ok", len({modules!r}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == f"ok {len(modules)}"


def test_every_text_file_is_opened_with_an_explicit_encoding():
    """Korean text on a Windows default code page (cp949) is a classic failure: every text open in course_utils
    names its encoding (open() in text mode, Path.open/read_text/write_text)."""
    found = []
    for path in sorted((ROOT / "course_utils").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            keywords = {k.arg for k in node.keywords}
            if name == "open" and isinstance(func, ast.Name) or name == "open" and isinstance(func, ast.Attribute) \
                    and not isinstance(func.value, ast.Name):
                mode = node.args[1].value if len(node.args) > 1 and isinstance(node.args[1], ast.Constant) else "r"
                if "b" not in str(mode) and "encoding" not in keywords:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} open() without encoding")
            if isinstance(func, ast.Attribute) and name in ("read_text", "write_text") and "encoding" not in keywords \
                    and not (isinstance(func.value, ast.Name) and func.value.id in ("files",)):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}() without encoding")
    assert found == []


def test_pad_counts_columns_so_hangul_tables_line_up():
    """Issue 43: f"{s:<n}" counts characters, a Hangul syllable takes two columns; pad counts columns."""
    from course_utils.textwidth import pad, width

    assert width("모델") == 4 and width("gpt2") == 4 and width("LoRA+그래디언트") == 15
    header, row = pad("모델", 8) + pad("합계", 6, ">"), pad("gpt2", 8) + pad("2.53", 6, ">")
    assert width(header) == width(row) == 14
    assert width(header[:header.index("합")]) == width(row[:row.index("2.53")]) == 10  # the columns start together
    assert pad("아주 긴 머리글", 4) == "아주 긴 머리글"  # never cut
    assert f"{'모델':<8}" != pad("모델", 8)  # what the character count got wrong
    with pytest.raises(ValueError, match="align"):
        pad("x", 3, "^")

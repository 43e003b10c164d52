"""The training command line (`python -m course_utils.train`, which shares notebook 05's function).

Bad input gets a clear error that names the culprit and the fix, and writes nothing: each case runs the
entry point with a profiles file and a data file the test writes; after the error the output folder must
not exist.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import fast_raw

from course_utils.train import main as train_cli

LONG = "가" * 100_000

# (case id, profile change, data file (name, text) or None, extra CLI args, culprit regex, fix regex)
CLI_CASES = [
    ("array-in-jsonl", None, ("d.jsonl", '[{"instruction": "a", "output": "b"}]\n'),
     [], r"d\.jsonl, line 1: \.jsonl 파일은 한 줄에 객체 하나여야", r"배열은 \.json 파일로 저장하세요"),
    ("input-is-a-number", None, ("d.jsonl", '{"instruction": "a", "input": 3, "output": "b"}\n'),
     [], r"쓸 수 있는 레코드가 없습니다 \(1건 읽음, 0건 남김; 건너뜀: 문자열이 아닌 필드\(non-string field\) 1 \(.*d\.jsonl, line 1\)",
     r"보고서가 가리키는 레코드를 고치세요"),
    ("input-is-a-number-strict", lambda p: p["data"].update(on_invalid="error"),
     ("d.jsonl", '{"instruction": "a", "input": 3, "output": "b"}\n'),
     [], r"line 1, field 'input': 문자열이어야 하는데 int입니다", r"JSON 문자열로 쓰세요"),
    ("invalid-json-line", None, ("d.jsonl", '{"instruction": "a", "output": "b"}\n{"instruction": "c", \n'),
     [], r"d\.jsonl, line 2: JSON이 잘못되었습니다", r"그 줄을 고치거나 지우세요"),
    ("empty-output", None, ("d.jsonl", '{"instruction": "a", "output": ""}\n'),
     [], r"쓸 수 있는 레코드가 없습니다 \(1건 읽음, 0건 남김; 건너뜀: 빈 필드\(empty field\) 1", r"보고서가 가리키는 레코드를 고치세요"),
    ("empty-output-strict", lambda p: p["data"].update(on_invalid="error"), ("d.jsonl", '{"instruction": "a", "output": ""}\n'),
     [], r"line 1, field 'output': 비어 있습니다", r"이 레코드를 지우세요"),
    ("unknown-key", None, ("d.jsonl", '{"instruction": "a", "output": "b", "score": 1}\n'),
     [], r"line 1: 알 수 없는 키 \['score'\]", r"그 키의 이름을 바꾸거나 지우세요"),
    ("unknown-format", None, ("d.jsonl", '{"question": "a", "answer": "b"}\n'),
     [], r"line 1: 알 수 없는 형식입니다 \(키: answer, question\)", r"'instruction', 'output'이 있고"),
    ("object-not-array-in-json", None, ("d.json", '{"instruction": "a", "output": "b"}'),
     [], r"d\.json: 레코드의 JSON 배열", r"\.jsonl 파일로 저장하세요"),
    ("csv-file", None, ("d.csv", "instruction,output\na,b\n"),
     [], r"d\.csv: 알 수 없는 파일 형식 '\.csv'", r"\.json\(배열\)이나 \.jsonl"),
    ("100k-character-output", lambda p: p["train"].update(heldout_records=1),  # one in dev, one in test, one trained on
     ("d.jsonl", "".join(json.dumps({"instruction": q, "output": LONG}) + "\n" for q in "abc")),
     [], r"건너뜀: 256 토큰보다 긺\(longer than 256 tokens\) 1 \(.*d\.jsonl, line \d: \d+ 토큰\)",
     r"seq_len\(지금 256\)을 늘리거나 data\.on_long을 'truncate'로 바꾸세요"),
    ("data-file-missing", lambda p: p["data"].update(source="no/such/file.jsonl"), None,
     [], r"no/such/file\.jsonl: 파일이 없습니다", r"프로필의 data\.source를 확인하세요"),
    ("lora-r-zero", lambda p: p["lora"].update(r=0), None,
     [], r"lora\.r must be a whole number >= 1", r"got 0"),
    ("typo-key", lambda p: p.update(seq_lenght=128), None,
     [], r"unknown key\(s\) \['seq_lenght'\]", r"Valid keys: .*seq_len"),
    ("seq-len-above-model-max", lambda p: p.update(seq_len=100_000), None,
     [], r"seq_len=100000 is above smollm2-135m-first-8-layers's maximum of 8192", r"Set seq_len to 8192 or less"),
    ("unknown-model", lambda p: p.update(model="llama-7b"), None,
     [], r"model 'llama-7b' is not in the registry", r"Valid models: gpt2"),
    ("bad-quantization", lambda p: p.update(quantization="nf3"), None,
     [], r"quantization='nf3' is not valid", r"Choose one of: none, int8, nf4"),
    ("learning-rate-out-of-range", lambda p: p["train"].update(learning_rate=5), None,
     [], r"train\.learning_rate must be between 0 and 1", r"got 5"),
    ("bad-on-long", lambda p: p["data"].update(on_long="cut"), None,
     [], r"data\.on_long='cut' is not valid", r"Choose one of: drop, truncate"),
    ("max-records-negative", lambda p: p["data"].update(max_records=-1), None,
     [], r"data\.max_records must be null \(all\) or a whole number >= 1", r"got -1"),
    ("bad-on-invalid", lambda p: p["data"].update(on_invalid="ignore"), None,
     [], r"data\.on_invalid='ignore' is not valid", r"Choose one of: skip, error"),
    ("steps-and-epochs", lambda p: p["train"].update(epochs=3), None,
     [], r"set exactly one of train\.max_steps .* and train\.epochs", r"Got max_steps=4, epochs=3"),
    ("save-not-multiple-of-eval", lambda p: p["train"].update(save_steps=3), None,
     [], r"train\.save_steps \(3\) must be a multiple of train\.eval_steps \(2\)", r"best checkpoint"),
    ("unknown-model-on-cli", None, None,
     ["--model", "llama-7b"], r"--model 'llama-7b' is not in the registry", r"Valid models: gpt2"),
    ("gpu-profile-without-cuda", None, None,
     ["--profile", "gpu8gb", "--model", "phi-2"], r"profile 'gpu8gb' needs a CUDA GPU, but torch .* sees no CUDA device",
     r"Use --profile cpu on this machine"),
    ("unknown-profile-on-cli", None, None,
     ["--profile", "smok"], r"Unknown profile 'smok'", r"smoke"),
    ("output-is-a-file", None, None,
     ["--output", "{tmp}/taken/out"], r"taken is a file, not a folder", r"Choose another --output"),
]


def _profiles_file(tmp_path: Path, change, source: str | None = None) -> Path:
    """The course's profiles with the smoke profile changed (and reading ``source`` when given)."""
    raw = fast_raw()
    if source:
        raw["smoke"]["data"]["source"] = source
    if change:
        change(raw["smoke"])
    path = tmp_path / "profiles.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize("case,change,data,args,culprit,fix", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_training_entry_point_refuses_bad_input(tmp_path, case, change, data, args, culprit, fix):
    if data:
        (tmp_path / data[0]).write_text(data[1], encoding="utf-8")
    (tmp_path / "taken").write_text("a file where the output folder should go")
    out = tmp_path / "out"
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    source = str(tmp_path / data[0]) if data else None
    argv = ["--profiles", str(_profiles_file(tmp_path, change, source)), "--profile", "smoke"]
    argv += ([] if "--output" in args else ["--output", str(out)]) + args  # the last --profile given wins
    with pytest.raises(SystemExit) as exc:
        train_cli(argv)
    message = str(exc.value.code)
    assert message.startswith("error: ")
    assert re.search(culprit, message), message
    assert re.search(fix, message), message
    assert not out.exists() and not (tmp_path / "taken" / "out").exists()  # nothing written


def _run_cli(*args, env=None):
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "course_utils.train", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "COURSE_PROFILE": "smoke", **(env or {})}, timeout=600)


def test_the_command_line_has_no_library_noise_and_names_the_missing_gpu(tmp_path):
    """One line on stderr: the bitsandbytes kernels-community notice is silenced, the error names CUDA and cpu."""
    done = _run_cli("--profile", "gpu8gb", "--model", "phi-2", "--output", tmp_path / "X")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "needs a CUDA GPU" in done.stderr and "--profile cpu" in done.stderr
    assert "kernels-community" not in done.stderr + done.stdout
    assert not (tmp_path / "X").exists()

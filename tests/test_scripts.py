"""The four take-home scripts (``scripts/``) against the course's own pipeline, on the smoke stand-in, offline.

A learner copies ``scripts/`` into a project of their own, so the scripts import only the libraries (never
``course_utils``) and write the recipe's values as literal defaults. These tests keep them and the package equal:
the same records and token ids, the same LoRA weights after the first optimizer steps, the same greedy answers,
the same merged model. Each script is also run as a learner runs it, in a fresh process.
"""
from __future__ import annotations

import ast
import dataclasses
import importlib.util
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from course_utils.data import DATA_DIR
from course_utils.loading import model_source
from course_utils.profiles import get_profile
from course_utils.splits import split_source

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
NAMES = ("prepare_dataset", "train", "inference", "merge_lora")
LIBRARIES = {"torch", "transformers", "peft", "bitsandbytes", "datasets", "trl"}
STEPS = 3  # the optimizer steps both pipelines take before their weights are compared


def script(name: str):
    """A script imported as a module (its functions, without running ``main``)."""
    spec = importlib.util.spec_from_file_location(f"take_home_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def refused(name: str, *args: str, cwd: Path) -> str:
    """``python scripts/<name>.py args`` run in this process where it must stop: the message it exits with (what a
    learner reads on stderr, ``sys.exit(message)``). A refusal stops before anything is loaded, so a fresh process
    would only add its imports (5-7 s each); the runs that do the work use ``run``."""
    import contextlib

    with contextlib.chdir(cwd), pytest.raises(SystemExit) as stop:
        script(name).main(list(args))
    assert isinstance(stop.value.code, str), f"{name}.py exited with {stop.value.code!r}, not a message"
    return stop.value.code


def run(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python scripts/<name>.py args`` in a fresh process, offline, as a learner runs it."""
    done = subprocess.run([sys.executable, str(SCRIPTS / f"{name}.py"), *args], cwd=cwd, capture_output=True,
                          text=True, encoding="utf-8", env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode != 0:
        raise AssertionError(f"{name}.py failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done


@pytest.mark.parametrize("name", NAMES)
def test_a_script_imports_only_the_libraries_and_stays_short(name):
    source = (SCRIPTS / f"{name}.py").read_text(encoding="utf-8")
    assert len(source.splitlines()) <= 200
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{name}.py imports relatively"
            imported.add(node.module.split(".")[0])
    outside = imported - LIBRARIES - set(sys.stdlib_module_names)
    assert not outside, f"{name}.py imports {sorted(outside)}: a take-home script uses the libraries only"


def test_the_scripts_defaults_are_the_learners_recipe():
    """gpu8gb's values, written as literals in the scripts: a change of the recipe must change both."""
    from course_utils.models import get_spec

    g = get_profile("gpu8gb")
    t = script("train").parse_args([])
    assert t.model_name == get_spec(g.model).hub_id
    assert (t.num_epochs, t.max_steps, t.batch_size, t.gradient_accumulation_steps) == (g.train.epochs, -1, g.batch_size,
                                                                                      g.grad_accum)
    assert (t.learning_rate, t.warmup_steps, t.max_length, t.seed) == (g.train.learning_rate, g.train.warmup_steps,
                                                                       g.seq_len, g.train.seed)
    assert (t.lora_r, t.lora_alpha, t.quantization, t.dtype) == (g.lora.r, g.lora.alpha, g.quantization, g.dtype)
    assert t.eval_steps == g.train.eval_steps == g.train.save_steps
    p = script("prepare_dataset").parse_args([])
    assert (p.eval_records, p.num_samples, p.max_length, p.seed, p.model_name) == (
        g.train.heldout_records, g.data.max_records, g.seq_len, g.train.seed, t.model_name)
    assert script("prepare_dataset").HUB[p.dataset] == g.data.source
    for name in ("inference", "merge_lora"):
        a = script(name).parse_args(["--prompt", "x"] if name == "inference" else [])
        assert (a.quantization, a.dtype, a.lora_weights) == (g.quantization, g.dtype, "outputs/train/adapter")


@pytest.fixture(scope="module")
def smoke():
    """The smoke recipe for ``STEPS`` optimizer steps, its checkpoint and held-out loss after the last one. Not after
    each: the Trainer's evaluation (the script's) starts a DataLoader, which draws its base seed from torch's random
    state, and the course's own evaluation does not; after an evaluation the two draw different dropout masks."""
    p = get_profile("smoke")
    return dataclasses.replace(p, train=dataclasses.replace(p.train, max_steps=STEPS, epochs=None, save_steps=STEPS,
                                                            eval_steps=STEPS))


@pytest.fixture(scope="module")
def runs(smoke, tmp_path_factory):
    """The course's training and the scripts' (prepare_dataset.py, then train.py) on the same source and recipe."""
    from course_utils.train import train

    folder = tmp_path_factory.mktemp("scripts")
    model = model_source(smoke.model)
    source = DATA_DIR / smoke.data.source.removeprefix("bundled:")
    run("prepare_dataset", "--dataset", str(source), "--output_dir", "data", "--model_name", model,
        "--eval_records", str(smoke.train.heldout_records), "--num_samples", str(smoke.data.max_records),
        "--max_length", str(smoke.seq_len), "--seed", str(smoke.train.seed), cwd=folder)
    t = smoke.train
    flags = ["--model_name", model, "--dataset_path", "data/train.jsonl", "--eval_path", "data/dev.jsonl", "--max_steps", str(STEPS), "--batch_size", str(smoke.batch_size),
             "--gradient_accumulation_steps", str(smoke.grad_accum), "--learning_rate", str(t.learning_rate),
             "--warmup_steps", str(t.warmup_steps), "--max_length", str(smoke.seq_len),
             "--lora_r", str(smoke.lora.r), "--lora_alpha", str(smoke.lora.alpha), "--seed", str(t.seed)]
    said = run("train", *flags, "--eval_steps", str(STEPS), "--output_dir", "run", cwd=folder).stdout
    course = train(smoke, folder / "course", progress=lambda m: None)
    return {"folder": folder, "model": model, "flags": flags, "said": said, "course": course}


def test_prepare_dataset_holds_out_and_keeps_the_records_the_course_does(smoke, runs):
    train_records, dev, test, _ = split_source(smoke.data.source, smoke.train.heldout_records, smoke.train.seed,
                                               smoke.data.on_invalid, smoke.data.max_records)
    fields = ("instruction", "input", "output")
    assert dev and test and not {r["instruction"] for r in dev} & {r["instruction"] for r in test}
    for name, want in (("train", train_records), ("dev", dev), ("test", test)):
        got = [json.loads(line) for line in (runs["folder"] / "data" / f"{name}.jsonl").read_text("utf-8").splitlines()]
        assert got == [{k: r[k] for k in fields} for r in want], name


def test_train_py_tokenizes_as_the_course_does(smoke, runs):
    """Token ids and labels (-100 on the prompt) of every training and held-out record: equal."""
    from course_utils.loading import load_tokenizer
    from course_utils.prompts import prepare_data

    tokenizer = load_tokenizer(smoke.model)
    course_train, course_dev, _, _ = prepare_data(smoke, tokenizer)
    take_home = script("train")
    for name, want in (("train", course_train), ("dev", course_dev)):
        records = take_home.read_jsonl(runs["folder"] / "data" / f"{name}.jsonl")
        got = [take_home.tokenize(r, tokenizer, smoke.seq_len)[0] for r in records]
        assert [g["input_ids"] for g in got] == [w["input_ids"] for w in want]
        assert [g["labels"] for g in got] == [w["labels"] for w in want]
        assert any(-100 in g["labels"] for g in got) and all(g["labels"][-1] == tokenizer.eos_token_id for g in got)


def adapter_weights(folder: Path) -> dict:
    return load_file(folder / "adapter_model.safetensors")


def largest_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys() and a
    return max((a[k] - b[k]).abs().max().item() for k in a)


def test_train_py_learns_the_weights_the_course_learns(runs):
    """QLoRA nf4, gradient accumulation, checkpointing, 8-bit AdamW, dropout: the LoRA weights after each of the
    first optimizer steps agree within 1e-5 (measured: bit for bit), and both moved away from the start."""
    folder, course = runs["folder"], runs["course"]
    script_step = adapter_weights(folder / "run" / "checkpoints" / f"checkpoint-{STEPS}")
    course_step = adapter_weights(course.adapter_dir.parent / "checkpoints" / f"checkpoint-{STEPS}")
    assert largest_difference(script_step, course_step) <= 1e-5
    assert max(w.abs().max().item() for k, w in script_step.items() if "lora_B" in k) > 1e-3  # B started at 0
    assert largest_difference(adapter_weights(folder / "run" / "adapter"), adapter_weights(course.adapter_dir)) <= 1e-5
    assert "학습 레코드 8개" in runs["said"] and "검증 레코드 4개, 계산 dtype float32" in runs["said"]


def test_train_py_refuses_an_earlier_run_and_resumes_one_that_stopped(runs, tmp_path):
    """Nothing is lost: without --resume an earlier run is refused and left as it was, and a finished run is not
    resumed. A run stopped after step 2 (its checkpoints up to 2, no adapter) goes on with --resume and ends with the
    uninterrupted run's weights: the checkpoint brings back the optimizer, the schedule, the data order and the
    random state."""
    import shutil

    folder = runs["folder"]
    before = {p: p.stat().st_mtime_ns for p in (folder / "run").rglob("*")}
    said = refused("train", *runs["flags"], "--output_dir", "run", cwd=folder)
    assert "이전 학습이 있습니다" in said and "--resume" in said
    assert {p: p.stat().st_mtime_ns for p in (folder / "run").rglob("*")} == before
    assert "이미 끝났습니다" in refused("train", *runs["flags"], "--output_dir", "run", "--resume", cwd=folder)

    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    run("train", *runs["flags"], "--eval_steps", "1", "--output_dir", str(whole), cwd=folder)
    shutil.copytree(whole, stopped)
    shutil.rmtree(stopped / "adapter")
    shutil.rmtree(stopped / "checkpoints" / f"checkpoint-{STEPS}")
    assert (stopped / "checkpoints" / f"checkpoint-{STEPS - 1}").is_dir()
    run("train", *runs["flags"], "--eval_steps", "1", "--output_dir", str(stopped), "--resume", cwd=folder)
    resumed = adapter_weights(stopped / "checkpoints" / f"checkpoint-{STEPS}")
    assert largest_difference(resumed, adapter_weights(whole / "checkpoints" / f"checkpoint-{STEPS}")) <= 1e-5
    assert largest_difference(resumed, adapter_weights(stopped / "checkpoints" / f"checkpoint-{STEPS - 1}")) > 1e-4


def test_inference_py_answers_what_the_course_answers(runs):
    """Greedy answers (with the course's repetition penalty) of the script's adapter and of the course's: equal."""
    from course_utils.adapter import load_trained
    from course_utils.data import read_records
    from course_utils.inference import answer_with_stats

    folder = runs["folder"]
    questions = [r["instruction"] for r in read_records(folder / "data" / "test.jsonl")[:3]] + ["한국의 수도는?"]
    course_model, tokenizer, meta = load_trained(runs["course"].adapter_dir)
    want = [answer_with_stats(course_model, tokenizer, q, "", meta["template"], 12)["answer"] for q in questions]
    del course_model
    take_home = script("inference")  # on the course's adapter folder, which holds no tokenizer: the base's is read
    model, tok = take_home.load(runs["model"], str(runs["course"].adapter_dir), "nf4")
    assert [take_home.answer(model, tok, q, max_new_tokens=12) for q in questions] == want
    said = run("inference", "--lora_weights", "run/adapter", "--prompt", questions[-1], "--max_new_tokens", "12",
               cwd=folder).stdout
    assert said.strip() == want[-1]


def test_merge_lora_py_saves_the_model_the_course_merges(runs):
    """The merged model's answer logits on the held-out records: the script's and the course's differ by no more than
    the merge's own rounding (merged vs not merged, measured here); the folder carries the training prompt as its
    chat template and the course's decoding."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from course_utils.adapter import heldout_of, load_trained
    from course_utils.loss import answer_logits
    from course_utils.merge import merge_adapter
    from course_utils.prompts import format_koalpaca, pad_id, prompt_ids

    folder = runs["folder"]
    unmerged, tokenizer, meta = load_trained(runs["course"].adapter_dir)
    _, examples = heldout_of(meta, tokenizer)
    pad = pad_id(tokenizer)
    reference, _ = answer_logits(unmerged, examples, pad)
    del unmerged
    merge_adapter(runs["course"].adapter_dir, folder / "course_merged", progress=lambda m: None)
    course, _ = answer_logits(AutoModelForCausalLM.from_pretrained(folder / "course_merged"), examples, pad)
    said = run("merge_lora", "--lora_weights", "run/adapter", "--output_dir", "merged", "--dtype", "float32",
               cwd=folder).stdout
    assert "merged" in said and not (folder / "merged.partial").exists()
    merged = AutoModelForCausalLM.from_pretrained(folder / "merged")
    got, _ = answer_logits(merged, examples, pad)
    floor = (course - reference).abs().max().item()  # what merging itself changes
    assert 0 < floor < 1e-2
    assert (got - course).abs().max().item() <= floor
    assert merged.generation_config.repetition_penalty == 1.1 and not merged.generation_config.do_sample
    saved = AutoTokenizer.from_pretrained(folder / "merged")
    question = "한국의 수도는 어디인가요?"
    text = saved.apply_chat_template([{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True)
    assert saved(text, add_special_tokens=False).input_ids == prompt_ids(format_koalpaca({"instruction": question, "output": ""})[0],
                                                                         tokenizer)
    assert "이미 있습니다" in refused("merge_lora", "--lora_weights", "run/adapter", "--output_dir", "merged", cwd=folder)


def test_merge_lora_py_saves_a_greedy_config_for_a_base_that_samples(runs, tmp_path):
    """A base whose generation_config samples (Gemma-3's and Qwen's hub configs set top_k, top_p, temperature):
    transformers refuses to save do_sample=False beside those values, so the merge clears them."""
    import shutil

    from transformers import GenerationConfig

    base = tmp_path / "sampling-base"
    shutil.copytree(runs["model"], base)
    GenerationConfig(do_sample=True, top_k=64, top_p=0.95, temperature=0.7, bos_token_id=1, eos_token_id=2,
                     pad_token_id=2).save_pretrained(base)
    run("merge_lora", "--base_model", str(base), "--lora_weights", str(runs["folder"] / "run" / "adapter"),
        "--output_dir", "merged", "--dtype", "float32", cwd=tmp_path)
    saved = GenerationConfig.from_pretrained(tmp_path / "merged")
    assert (saved.do_sample, saved.repetition_penalty, saved.top_k, saved.top_p) == (False, 1.1, None, None)


def test_prepare_dataset_names_what_it_skips_and_refuses_to_overwrite(runs, tmp_path):
    """A local file with a copy, an empty answer, a non-string field and a record too long: each skipped, counted and
    named by its line; a record without 'output' stops with its line named; an existing output is left as it was."""
    good = [{"instruction": f"질문 {i}", "output": f"답 {i}입니다."} for i in range(6)]
    lines = good + [good[0], {"instruction": "빈 답", "output": " "}, {"instruction": 3, "output": "x"},
                    {"instruction": "긴 답", "output": "아주 " * 300}]
    source = tmp_path / "mine.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines), encoding="utf-8")
    said = run("prepare_dataset", "--dataset", str(source), "--output_dir", "out", "--eval_records", "1",
               "--model_name", runs["model"], "--max_length", "64", cwd=tmp_path).stdout
    assert "line 7" in said and "line 8" in said and "line 9" in said and "line 10" in said
    assert "중복: 1개" in said and "빈 instruction 또는 output: 1개" in said and "64 토큰보다 긺: 1개" in said
    written = (tmp_path / "out" / "train.jsonl").read_text("utf-8").splitlines()
    held = [(tmp_path / "out" / f"{name}.jsonl").read_text("utf-8").splitlines() for name in ("dev", "test")]
    assert len(written) == 4 and [len(h) for h in held] == [1, 1] and held[0] != held[1]
    before = (tmp_path / "out" / "train.jsonl").read_bytes()
    again = refused("prepare_dataset", "--dataset", str(source), "--output_dir", "out", "--model_name", runs["model"],
                    "--eval_records", "2", cwd=tmp_path)
    assert "아무것도 바꾸지 않았습니다" in again
    assert (tmp_path / "out" / "train.jsonl").read_bytes() == before
    broken = tmp_path / "broken.jsonl"
    broken.write_text(source.read_text("utf-8") + '{"instruction": "따옴표가 없음, "output": "x"}\n', encoding="utf-8")
    bad_json = refused("prepare_dataset", "--dataset", str(broken), "--output_dir", "out3", "--model_name", runs["model"],
                       cwd=tmp_path)
    assert "broken.jsonl, line 11" in bad_json and "JSON" in bad_json
    missing = refused("prepare_dataset", "--dataset", "nowhere.JSONL", "--output_dir", "out3", cwd=tmp_path)
    assert "nowhere.JSONL 파일이 없습니다" in missing
    source.write_text(source.read_text("utf-8") + json.dumps({"instruction": "답 없음"}) + "\n", encoding="utf-8")
    broken = refused("prepare_dataset", "--dataset", str(source), "--output_dir", "out2", "--model_name", runs["model"],
                     cwd=tmp_path)
    assert "line 11" in broken and "'output'" in broken
    assert not (tmp_path / "out2").exists()


def test_prepare_dataset_reads_a_hub_dataset_through_datasets(runs, tmp_path):
    """The hub path (``datasets.load_dataset``) on a local stand-in: a dataset folder in KoAlpaca v1.1's layout."""
    hub = tmp_path / "beomi-KoAlpaca-stand-in"
    hub.mkdir()
    records = [{"instruction": f"질문 {i}", "output": f"답 {i}입니다.", "url": f"https://example.org/{i}"}
               for i in range(10)]
    (hub / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    said = run("prepare_dataset", "--dataset", str(hub), "--output_dir", "out", "--eval_records", "2",
               "--model_name", runs["model"], cwd=tmp_path).stdout
    assert "레코드 10개를 읽었습니다" in said
    written = [json.loads(line) for line in (tmp_path / "out" / "train.jsonl").read_text("utf-8").splitlines()]
    assert len(written) == 6 and set(written[0]) == {"instruction", "input", "output"}


def readme_commands() -> list[tuple[str, str, list[str]]]:
    """(shell, script name, arguments) of every README line that runs a take-home script."""
    import shlex

    found = []
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        for shell, python, marker in (("bash", "python3", "scripts/"),
                                      ("powershell", ".venv/Scripts/python.exe", "scripts\\")):
            if line.startswith(python.replace("/", "\\") if shell == "powershell" else python) and marker in line:
                words = shlex.split(line.replace("\\", "/") if shell == "powershell" else line)
                found.append((shell, Path(words[1]).stem, words[2:]))
    return found


def test_the_readme_runs_each_script_in_bash_and_powershell_with_its_own_flags():
    """Every script has a README command for bash and one for PowerShell, and each parses with the script's flags
    (argparse exits on an unknown one)."""
    commands = readme_commands()
    assert {(shell, name) for shell, name, _ in commands} == {(s, n) for s in ("bash", "powershell") for n in NAMES}
    for _, name, args in commands:
        script(name).parse_args(args)
    pairs = {}
    for shell, name, args in commands:
        pairs.setdefault(name, {})[shell] = [a.replace("\\", "/") for a in args]
    assert all(p["bash"] == p["powershell"] for p in pairs.values())  # the same run, in either shell


class Built(Exception):
    """Raised by a stand-in once the script has built what the test reads (nothing runs on a card)."""


@pytest.mark.parametrize(("dtype", "native_bf16", "used"), [("float16", True, "float16"), ("bfloat16", True, "bfloat16"),
                                                            ("bfloat16", False, "float16")])
def test_train_py_on_a_card_loads_and_trains_in_the_cards_dtype(dtype, native_bf16, used, fake_cuda, monkeypatch, runs,
                                                                capsys):
    """The CUDA branch a learner runs, read where it is decided: the base goes to cuda:0 in the chosen dtype with the
    4-bit layers computing in it, the Trainer mixes precision in that dtype only (fp16 or bf16, never both) with the
    paged 8-bit AdamW, and nothing asks for the CPU. On a card without native bf16 (a T4) the default bf16 becomes
    fp16, as the course does. The model is a tiny CPU stand-in; the Trainer is never built."""
    from conftest import tiny_model

    take_home = script("train")
    loaded, arguments = {}, {}
    fake_cuda.bf16 = native_bf16

    def from_pretrained(name, **kwargs):
        loaded.update(kwargs)
        return tiny_model("tinyllama-1.1b")

    def training_arguments(**kwargs):
        arguments.update(kwargs)
        raise Built

    monkeypatch.setattr(take_home.AutoModelForCausalLM, "from_pretrained", from_pretrained)
    monkeypatch.setattr(take_home, "TrainingArguments", training_arguments)
    folder = runs["folder"]
    with pytest.raises(Built):
        take_home.main(["--model_name", runs["model"], "--dataset_path", str(folder / "data" / "train.jsonl"),
                        "--eval_path", str(folder / "data" / "dev.jsonl"),
                        "--output_dir", str(folder / f"gpu-{dtype}-{native_bf16}"), "--dtype", dtype])
    want = getattr(torch, used)
    assert loaded["dtype"] == want and loaded["device_map"] == {"": "cuda:0"}
    assert loaded["quantization_config"].bnb_4bit_compute_dtype == want
    assert loaded["quantization_config"].bnb_4bit_quant_type == "nf4" and loaded["quantization_config"].load_in_4bit
    assert (arguments["fp16"], arguments["bf16"]) == (used == "float16", used == "bfloat16")
    assert f"계산 dtype {used}" in capsys.readouterr().out  # the learner reads which precision it trains in
    assert arguments["optim"] == "paged_adamw_8bit" and arguments["use_cpu"] is False
    assert arguments["activation_checkpointing"] is True


def test_inference_py_puts_the_question_on_the_models_device():
    """A 4-bit model sits on cuda:0 while a tokenizer's output is made on the CPU; here ``meta`` plays cuda:0."""
    from conftest import ForwardReached, device_checked, tiny_model

    from course_utils.loading import load_tokenizer

    model = device_checked(tiny_model("tinyllama-1.1b"))
    with pytest.raises(ForwardReached, match="meta"):
        script("inference").answer(model, load_tokenizer("smollm2-135m-instruct"), "한국의 수도는?", max_new_tokens=2)


def test_merge_lora_py_on_a_card_loads_the_base_in_the_training_dtype(fake_cuda, monkeypatch, runs, tmp_path):
    """On a card the base is loaded to cuda:0 in the training dtype (the weights the adapter saw, no fp32 copy on an
    8 GB card), with its 4-bit layers computing in it."""
    take_home = script("merge_lora")
    loaded = {}

    def from_pretrained(name, **kwargs):
        loaded.update(kwargs)
        raise Built

    monkeypatch.setattr(take_home.AutoModelForCausalLM, "from_pretrained", from_pretrained)
    with pytest.raises(Built):
        take_home.merged_model(runs["model"], str(runs["folder"] / "run" / "adapter"), "nf4", "float16")
    assert loaded["dtype"] == torch.float16 and loaded["device_map"] == {"": "cuda:0"}
    assert loaded["quantization_config"].bnb_4bit_compute_dtype == torch.float16
    # the default bf16 on a card without it (a T4): fp16, as train.py trained, and said
    fake_cuda.bf16 = False
    for name in ("merge_lora", "inference"):
        said = []
        module = script(name)
        monkeypatch.setattr(module, "print", said.append, raising=False)
        assert module.gpu_dtype("bfloat16") == torch.float16 and module.gpu_dtype("float32") == torch.float32
        assert said == ["이 GPU는 bf16을 직접 계산하지 못해 fp16으로 계산합니다 (train.py도 그렇게 학습했습니다)"]


def lesson_definitions(notebook: str) -> dict[str, str]:
    """The top-level functions a lesson's code defines (its paired .py), as ``ast.dump`` by name."""
    tree = ast.parse((ROOT / "notebooks" / notebook).read_text(encoding="utf-8"))
    return {n.name: ast.dump(n) for n in tree.body if isinstance(n, ast.FunctionDef)}


@pytest.mark.parametrize(("notebook", "name", "functions"), [
    ("04_koalpaca_formatting.py", "train", ("prompt_of", "tokenize")),
])
def test_a_lesson_writes_the_scripts_functions_as_they_are(notebook, name, functions):
    """The function a lesson writes is the script's, character for character in its syntax tree (docstring included):
    a learner who copies the lesson's cell has the take-home script's code."""
    taken = script(name)
    lesson = lesson_definitions(notebook)
    for function in functions:
        assert function in lesson, f"{notebook} no longer writes {function}"
        assert lesson[function] == ast.dump(ast.parse(inspect.getsource(getattr(taken, function))).body[0])


# What each lesson writes in its own code (the calls a learner needs to write the scripts alone), and the script that
# holds the same call. A lesson that stops writing one fails here.
LESSON_CALLS = {
    "03_lora_config.py": ["LoraConfig", "get_peft_model"],
    "04_koalpaca_formatting.py": ["DataCollatorForSeq2Seq", "tokenizer"],
    "05_training.py": ["BitsAndBytesConfig", "AutoModelForCausalLM.from_pretrained", "prepare_model_for_kbit_training",
                       "LoraConfig", "get_peft_model", "TrainingArguments", "AnswerOnlyTrainer", "trainer.train"],
    "06_inference.py": ["PeftModel.from_pretrained", "model.generate"],
    "08_deployment.py": ["conversion_command"],
    "07_merging.py": ["model.merge_and_unload", "merged.save_pretrained", "tokenizer.save_pretrained",
                      "AutoModelForCausalLM.from_pretrained"],
    "09_hyperparameters.py": ["optuna.create_study", "trial.suggest_float", "trial.suggest_categorical",
                              "study.optimize"],
    "10_preference_tuning.py": ["DPOConfig", "ORPOConfig"],
}


@pytest.mark.parametrize("notebook", sorted(LESSON_CALLS))
def test_each_lesson_writes_the_calls_the_scripts_need(notebook):
    tree = ast.parse((ROOT / "notebooks" / notebook).read_text(encoding="utf-8"))
    written = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    missing = [call for call in LESSON_CALLS[notebook] if call not in written]
    assert not missing, f"{notebook} no longer writes {missing}"


def test_where_names_the_lines_that_hold_the_code():
    from course_utils.takehome import call_lines, lines, where

    text = (SCRIPTS / "train.py").read_text(encoding="utf-8").splitlines()
    first, last = lines("train", "prompt_of", "tokenize")
    assert text[first - 1].startswith("def prompt_of(") and text[last - 1].strip() == "return example, len(input_ids)"
    assert where("train", "prompt_of", "tokenize") == f"scripts/train.py {first}–{last}행: prompt_of, tokenize"
    start, end = call_lines("train", "TrainingArguments")
    assert "TrainingArguments(" in text[start - 1] and text[end - 1].strip() == ")"
    with pytest.raises(KeyError, match="no top-level"):
        lines("train", "collate")
    with pytest.raises(ValueError, match="choose one of"):
        lines("finetune", "main")


def test_the_stored_outputs_name_the_scripts_lines_as_they_are_now():
    """A lesson's stored output says where its code is in a script (``takehome.where``); when a script changes, the
    line numbers in the stored outputs must be made again (``make notebooks``)."""
    import re

    from course_utils.takehome import where

    said = []
    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
            for out in cell.get("outputs", []):
                text = "".join(out.get("text", ""))
                said += [(notebook.name, m) for m in re.finditer(r"scripts/(\w+)\.py (\d+)–(\d+)행: ([\w, ]+?)(?= —|$)", text, re.M)]
    for notebook, match in said:
        assert match.group(0) == where(match.group(1), *match.group(4).split(", ")), notebook
    assert {n for n, _ in said} >= {"04_koalpaca_formatting.ipynb", "06_inference.ipynb", "07_merging.ipynb"}


def lesson_node(notebook: str, kind, match):
    """The first top-level node of a lesson's code (its paired .py) of type ``kind`` for which ``match`` holds."""
    tree = ast.parse((ROOT / "notebooks" / notebook).read_text(encoding="utf-8"))
    return next(n for n in tree.body if isinstance(n, kind) and match(n))


def lesson_imports(notebook: str) -> dict:
    """A namespace holding every name the lesson's code imports."""
    tree = ast.parse((ROOT / "notebooks" / notebook).read_text(encoding="utf-8"))
    namespace: dict = {}
    imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)) and getattr(n, "module", "") != "__future__"]
    exec(compile(ast.Module(imports, []), notebook, "exec"), namespace)  # noqa: S102 (our own notebook's imports)
    return namespace


def test_05_resumes_with_trainer_train_and_a_checkpoint():
    calls = [n for n in ast.walk(ast.parse((ROOT / "notebooks" / "05_training.py").read_text(encoding="utf-8")))
             if isinstance(n, ast.Call) and ast.unparse(n.func) == "trainer.train"]
    assert any(k.arg == "resume_from_checkpoint" for c in calls for k in c.keywords)


def test_05_builds_the_model_the_course_trains(tmp_path):
    """05 writes the load (BitsAndBytesConfig, from_pretrained, prepare_model_for_kbit_training, LoraConfig,
    get_peft_model) instead of the course's prepare_run doing it: on the smoke profile (nf4) the lesson's model has
    the course's weights, bit for bit (LoRA's random start included), and the same loss before training."""
    from course_utils.train import prepare_run

    namespace = lesson_imports("05_training.py")
    node = lesson_node("05_training.py", ast.FunctionDef, lambda n: n.name == "load_for_training")
    exec(compile(ast.Module([node], []), "05_training.py", "exec"), namespace)  # noqa: S102
    profile = get_profile("smoke")
    course = prepare_run(profile, tmp_path / "course")
    lesson = prepare_run(profile, tmp_path / "lesson", model=namespace["load_for_training"](profile))
    theirs = dict(course.model.named_parameters())
    mine = dict(lesson.model.named_parameters())
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert type(mine["base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight"]).__name__ == "Params4bit"
    assert lesson.loss_before == course.loss_before


def test_a_lesson_model_whose_lora_is_not_the_profiles_is_refused_with_the_difference(tmp_path):
    from peft import LoraConfig, get_peft_model

    from course_utils.loading import load_model
    from course_utils.train import prepare_run

    model = get_peft_model(load_model("smollm2-135m-first-8-layers"), LoraConfig(
        r=4, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    with pytest.raises(ValueError, match=r"r: 셀 4, 프로필 8; target_modules: 셀 \['q_proj', 'v_proj'\]") as err:
        prepare_run(get_profile("smoke"), tmp_path / "run", model=model)
    assert "셀의 값(BitsAndBytesConfig, LoraConfig)을 프로필에 맞게 고치세요" in str(err.value)
    assert not (tmp_path / "run").exists()  # refused before the folder was touched


def test_05s_training_arguments_are_the_recipe_and_the_profile_changes_only_what_differs(tmp_path, capsys):
    """05's TrainingArguments literals are gpu8gb's recipe (scripts/train.py's defaults); with_profile turns them into
    exactly what the course's command uses on another profile, and prints each value it changed."""
    import types

    from course_utils.trainer import argument_differences, training_arguments, with_profile

    node = lesson_node("05_training.py", ast.Assign, lambda n: ast.unparse(n.targets[0]) == "args"
                       and isinstance(n.value, ast.Call) and ast.unparse(n.value.func) == "TrainingArguments")
    from transformers import TrainingArguments

    gpu8gb = get_profile("gpu8gb")
    namespace = {"TrainingArguments": TrainingArguments, "torch": torch, "cuda": False, "profile": gpu8gb,
                 "run": types.SimpleNamespace(checkpoint_dir=tmp_path)}
    recipe = eval(compile(ast.Expression(node.value), "05_training.py", "eval"), namespace)  # noqa: S307
    assert argument_differences(recipe, training_arguments(gpu8gb, tmp_path)) == {}
    assert with_profile(recipe, gpu8gb) is recipe
    for name in ("smoke", "cpu"):
        profile = get_profile(name)
        capsys.readouterr()
        adapted = with_profile(recipe, profile)
        assert argument_differences(adapted, training_arguments(profile, tmp_path)) == {}
        printed = capsys.readouterr().out
        assert f"learning_rate: 0.0002 -> {profile.train.learning_rate}" in printed
        assert "seed:" not in printed  # unchanged values are not listed


def test_a_lesson_model_loaded_without_4_bits_on_a_4_bit_profile_is_refused(tmp_path):
    from peft import LoraConfig, get_peft_model

    from course_utils.loading import load_model
    from course_utils.train import prepare_run

    model = get_peft_model(load_model("smollm2-135m-first-8-layers"), LoraConfig(
        r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        task_type="CAUSAL_LM"))
    with pytest.raises(ValueError, match="양자화: 셀 없음, 프로필 nf4"):
        prepare_run(get_profile("smoke"), tmp_path / "run", model=model)


def test_resuming_a_folder_without_a_complete_checkpoint_says_so(tmp_path):
    from course_utils.train import prepare_run

    (tmp_path / "run" / "checkpoints" / "checkpoint-2").mkdir(parents=True)  # cut short: no trainer_state.json
    with pytest.raises(ValueError, match="이어서 할 체크포인트가 .*없습니다"):
        prepare_run(get_profile("smoke"), tmp_path / "run", resume=True)


def test_with_profile_keeps_a_learners_edit_the_profile_does_not_change(tmp_path, capsys):
    import dataclasses

    from course_utils.trainer import training_arguments, with_profile

    recipe = training_arguments(get_profile("gpu8gb"), tmp_path)
    edited = dataclasses.replace(recipe, learning_rate=1e-4, save_total_limit=3)
    assert with_profile(edited, get_profile("gpu8gb")) is edited  # nothing to change: the learner's values stay
    on_cpu = with_profile(edited, get_profile("cpu"))
    assert on_cpu.save_total_limit == 3  # cpu keeps the recipe's 2: the learner's 3 stays
    assert on_cpu.learning_rate == get_profile("cpu").train.learning_rate  # cpu changes the rate: the profile's
    assert "learning_rate: 0.0001 -> 0.001" in capsys.readouterr().out

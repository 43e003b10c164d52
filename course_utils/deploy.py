"""Deploy the merged model: GGUF files made by llama.cpp's own converter, an Ollama Modelfile, and checks.

The converter is ``convert_hf_to_gguf.py`` (with its ``conversion`` package and the ``gguf-py`` it was written
for) from the llama.cpp sources vendored in the ``llama-cpp-python`` source distribution on PyPI, pinned
below. ``fetch_converter`` downloads that sdist once (PyPI only, no Hub) and keeps just those files in the
course cache; the converter runs in the course's environment with ``gguf-py`` first on ``PYTHONPATH``.

Gemma's tokenizer is SentencePiece: the converter reads it from ``tokenizer.model``, which a model that came
from a GGUF (as the offline Gemma did) has no file for; without it the converter writes a GPT-2 style
tokenizer that neither transformers nor llama.cpp can use. ``save_merged`` therefore writes
``tokenizer.model`` from the base GGUF's own vocabulary (tokens, scores, types), and a test checks it
tokenizes like the course's tokenizer.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import torch

LLAMA_CPP_PYTHON = "0.3.36"  # llama.cpp vendored in this sdist: convert_hf_to_gguf.py + conversion/ + gguf-py 0.19
CONVERTER_FILES = ("convert_hf_to_gguf.py", "conversion", "gguf-py", "LICENSE")
OUTTYPES = ("f16", "q8_0")


def converter_dir() -> Path:
    from .gguf import cache_root

    return cache_root() / f"llama.cpp-from-llama-cpp-python-{LLAMA_CPP_PYTHON}"


def fetch_converter(progress=print) -> Path:
    """The converter folder; downloads the llama-cpp-python sdist once (about 77 MB, PyPI) when it is missing. A file
    lock makes a second process (a test beside a notebook) wait for the first download instead of replacing it."""
    from filelock import FileLock

    target = converter_dir()
    if (target / "convert_hf_to_gguf.py").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(target.parent / ".converter.lock"):
        if not (target / "convert_hf_to_gguf.py").exists():
            _download_converter(target, progress)
    return target


def _download_converter(target: Path, progress) -> None:
    from .files import atomic_folder

    progress(f"llama.cpp의 변환기를 llama-cpp-python {LLAMA_CPP_PYTHON} sdist에서 가져옵니다 (PyPI, 한 번만)...")
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q",
                               "-d", tmp, f"llama-cpp-python=={LLAMA_CPP_PYTHON}"], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"could not download llama-cpp-python=={LLAMA_CPP_PYTHON} from PyPI (needed once for "
                               f"the GGUF converter): {done.stderr.strip()[-500:]}")
        sdist = next(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        prefix = f"{sdist.name[: -len('.tar.gz')]}/vendor/llama.cpp/"
        with tarfile.open(sdist) as tar, atomic_folder(target) as out:
            members = [m for m in tar.getmembers() if m.name.startswith(prefix)
                       and m.name[len(prefix):].split("/")[0] in CONVERTER_FILES and (m.isfile() or m.isdir())]
            for m in members:
                m.name = m.name[len(prefix):]
            tar.extractall(out, members=members, filter="data")


def conversion_command(merged_dir, outfile, outtype: str = "f16") -> list[str]:
    """The converter's command line, as a learner types it in a llama.cpp checkout (``export_gguf`` runs exactly this,
    with this Python and the converter's folder)."""
    return ["python", "convert_hf_to_gguf.py", str(merged_dir), "--outfile", str(outfile), "--outtype", outtype]


def export_gguf(merged_dir, out_dir, outtype: str = "f16", progress=print) -> Path:
    """Convert a merged model folder to ``<out_dir>/model-<outtype>.gguf`` with llama.cpp's converter."""
    from .files import atomic_file

    if outtype not in OUTTYPES:
        raise ValueError(f"outtype={outtype!r}: choose one of {', '.join(OUTTYPES)}")
    converter = fetch_converter(progress)
    out = Path(out_dir) / f"model-{outtype}.gguf"
    with atomic_file(out) as tmp:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(converter / "gguf-py"), os.environ.get("PYTHONPATH", "")])}
        _, script, *args = conversion_command(merged_dir, tmp, outtype)
        done = subprocess.run([sys.executable, str(converter / script), *args], capture_output=True, text=True, env=env)
        if done.returncode:
            raise RuntimeError(f"convert_hf_to_gguf.py failed for {merged_dir}: {done.stderr.strip()[-1500:]}")
    notice = Path(merged_dir) / "NOTICE"
    if notice.exists():
        (Path(out_dir) / "NOTICE").write_text(notice.read_text(encoding="utf-8"), encoding="utf-8")
    return out


def modelfile(gguf_name: str, tokenizer, decoding: dict, max_new_tokens: int) -> str:
    """An Ollama Modelfile for the exported GGUF: the training prompt format, EOS as stop, the course's decoding."""
    lines = [f"FROM ./{gguf_name}",
             '# the prompt format the adapter was trained on (### 질문: … ### 답변:); BOS comes from the GGUF',
             'TEMPLATE """### 질문: {{ .Prompt }}\n\n### 답변:"""',
             f'PARAMETER stop "{tokenizer.eos_token}"',
             'PARAMETER stop "### 질문:"',
             f"PARAMETER num_predict {max_new_tokens}",
             f"PARAMETER repeat_penalty {decoding.get('repetition_penalty', 1.0)}",
             f"PARAMETER temperature {decoding.get('temperature', 1.0) if decoding.get('do_sample') else 0}"]
    return "\n".join(lines) + "\n"


def round_to_fp16(model):
    """``model`` with its weights rounded to fp16 and back, in place: what an F16 export can at best reproduce."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    return model


def first_difference(model, tokenizer, question: str, a: str, b: str) -> dict:
    """Where two greedy answers part: the merged model's logit margin (top-1 minus the other answer's token) at
    the first token that differs — a small margin means a near tie that rounding can flip."""
    from .inference import prompt_tensor

    ids_a, ids_b = tokenizer(" " + a, add_special_tokens=False).input_ids, tokenizer(" " + b, add_special_tokens=False).input_ids
    k = next((i for i, (x, y) in enumerate(zip(ids_a, ids_b, strict=False)) if x != y), min(len(ids_a), len(ids_b)))
    prompt = prompt_tensor(model, tokenizer, question)
    with torch.no_grad():
        answer = torch.tensor([ids_a[:k]], dtype=torch.long, device=prompt.device)  # the prompt is on the model's device
        logits = model(input_ids=torch.cat([prompt, answer], dim=1)).logits[0, -1]
    other = ids_b[k] if k < len(ids_b) else tokenizer.eos_token_id
    mine = ids_a[k] if k < len(ids_a) else tokenizer.eos_token_id
    return {"question": question, "token": k, "margin": float(logits[mine] - logits[other])}


def differences(model, tokenizer, questions: list[str], expected: list[str], got: list[str]) -> list[dict]:
    """``first_difference`` for every question whose two answers are not the same text (``model`` is the side
    whose logit margin is read: the merged model)."""
    return [first_difference(model, tokenizer, q, a, b) for q, a, b in zip(questions, expected, got, strict=True)
            if a != b]


def compare_exports(merged_dir, tokenizer, files: dict, examples: list[dict], questions: list[str], pad: int,
                    logit_examples: int = 8, max_new_tokens: int = 24) -> dict:
    """How each GGUF export (``files``: name -> path), read back by transformers, compares with the merged model in
    ``merged_dir`` it came from (read in fp32 on the CPU). Per file: max |Δlogit| at the answer positions of the first
    ``logit_examples`` examples (``loss.answer_logits``: logits are vocabulary-sized) beside the floor of rounding the merged weights to
    fp16, held-out answer loss of both over all ``examples``, and the greedy answers to ``questions`` (same or not;
    where not, the merged model's logit margin at the first differing token).

    One model in memory at a time: the merged model's side is measured once (its logits, loss and answers, then the
    same model rounded to fp16 in place for the floor) and freed; each GGUF is read, measured and freed in turn;
    the merged model is read once more only if some answers differ, for their margins."""
    from transformers import AutoModelForCausalLM

    from .gguf import read_gguf
    from .inference import generate_batch
    from .loss import answer_logits, heldout_loss, max_diff
    from .memory import free

    def merged():
        return AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32)

    few = examples[:logit_examples]
    asked = [(q, "") for q in questions]
    model = merged()
    reference, _ = answer_logits(model, few, pad)
    loss_merged = heldout_loss(model, examples, pad)
    a = [x["answer"] for x in generate_batch(model, tokenizer, asked, max_new_tokens=max_new_tokens)]
    floor = max_diff(answer_logits(round_to_fp16(model), few, pad)[0], reference)
    del model
    free()
    checks, answers = {}, {}
    for name, path in files.items():
        model, gguf_tokenizer = read_gguf(path)
        logits, _ = answer_logits(model, few, pad)
        answers[name] = [y["answer"] for y in generate_batch(model, gguf_tokenizer, asked, max_new_tokens=max_new_tokens)]
        checks[name] = {
            "file": Path(path).name, "MiB": Path(path).stat().st_size / 2**20,
            "max_dlogit": max_diff(logits, reference), "fp16_floor": floor,
            "loss_merged": loss_merged, "loss_gguf": heldout_loss(model, examples, pad),
            "tokenizer_same": all(tokenizer(q).input_ids == gguf_tokenizer(q).input_ids for q in questions)}
        del model
        free()
    model = merged() if any(answers[name] != a for name in files) else None
    for name in files:
        differ = differences(model, tokenizer, questions, a, answers[name]) if model is not None else []
        checks[name].update(same_answers=len(questions) - len(differ), questions=len(questions), differences=differ)
    del model
    free()
    return checks

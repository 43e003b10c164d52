"""Merge a LoRA adapter into its base model, verify the merge, save and reload it.

``merge_and_unload`` adds (alpha / r) * B @ A to each adapted weight and removes the adapter layers,
so the result is a plain transformers model. The check is numeric: the largest absolute difference
between the logits of the adapter model and of the merged model on the same inputs.

What is deployed is what was evaluated: an adapter trained on an nf4 base (QLoRA) learned on the nf4-rounded
weights, so by default it is merged into those weights de-quantized (07's merge "(3)"), which reproduces the
nf4 + adapter model that training scored. Merging into the original full-precision weights is an explicit
choice (``into="original"``): a different model, whose held-out loss the merge command measures and prints.

One model at a time, in the dtype it trained in: the 4-bit base is de-quantized layer by layer in place
(``quantization.dequantize_layers``) into the dtype it was loaded in (bf16 on gpu8gb, fp16 on a card without bf16: exactly the weights the adapter
saw, never an fp32 copy on the card), the adapter's update B·A is computed in fp32 and added with one rounding, and
the merged model is saved in that dtype (2.2 GB for TinyLlama instead of 4.4 GB in fp32). On a machine with CUDA the
merge runs on the GPU; without it, on the CPU in fp32 (fp16 arithmetic there is slow and inexact), and the
result is still saved in the training dtype.

    python -m course_utils.merge --lora_weights outputs/train/adapter --output_dir outputs/merged
    python -m course_utils.merge --base_model tinyllama-1.1b --lora_weights A --output_dir M --into original
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .files import atomic_folder
from .prompts import KOALPACA

GEMMA_NOTICE = """This model is a derivative of Gemma (google/gemma-3-270m), merged with a LoRA adapter
trained in the course "LoRA on an 8 GB GPU". Gemma is provided under and subject to the Gemma Terms
of Use found at https://ai.google.dev/gemma/terms . Any use, reproduction or distribution of this
model must follow those terms, including the use restrictions of the Gemma Prohibited Use Policy
(https://ai.google.dev/gemma/prohibited_use_policy).
"""
MIT_NOTICE = """This model is a derivative of {hub_id}, merged with a LoRA adapter trained in the course
"LoRA on an 8 GB GPU". {hub_id} is released under the MIT License: keep its copyright notice and the MIT
permission notice (the LICENSE file of https://huggingface.co/{hub_id}) with every copy of this model.
"""


MERGED_METADATA = "course_merged.json"  # beside a merged model: which adapter went into which weights
INTO = {"dequantized": "nf4를 푼(de-quantized) 가중치: QLoRA 어댑터가 학습하고 평가받은 가중치",
        "original": "원래의 전체 정밀도 가중치"}


def save_merged(model, tokenizer, out_dir, base_model: str | None = None, template: str = KOALPACA,
                max_new_tokens: int = 48, record: dict | None = None, dtype: torch.dtype | None = None) -> Path:
    """``save_pretrained`` (safetensors) + tokenizer into ``out_dir`` atomically, with what deploying needs.

    ``dtype``: the dtype the weights are saved in (the adapter's training dtype, ``training_dtype``); the model is
    cast to it first (in place). None saves the model as it is.

    - the prompt format the adapter was trained on as the tokenizer's ``chat_template`` (``template`` koalpaca;
      a ``chat``-template adapter keeps the tokenizer's own), so chat servers send the prompts it knows;
    - ``generation_config.json`` with the EOS and the course's decoding defaults (``DEFAULT_DECODING``);
    - for a base that came from a SentencePiece GGUF (Gemma), ``tokenizer.model`` rebuilt from that GGUF's
      vocabulary, which llama.cpp's converter needs (``deploy``);
    - ``NOTICE`` with the Gemma Terms for a Gemma derivative (``base_model`` a registry key);
    - ``course_merged.json`` with ``record`` (``merge_record``: which adapter, merged into which weights, its
      held-out records and losses) when given.
    """
    import copy

    from .inference import DEFAULT_DECODING
    from .prompts import koalpaca_chat_template

    tok = copy.deepcopy(tokenizer)
    if template == KOALPACA:
        tok.chat_template = koalpaca_chat_template(tok)
    config = model.generation_config
    config.eos_token_id, config.pad_token_id, config.max_new_tokens = tok.eos_token_id, tok.pad_token_id, max_new_tokens
    for key, value in DEFAULT_DECODING.items():
        setattr(config, key, value)
    config.temperature = config.top_p = config.top_k = None  # the base's sampling values: invalid when greedy
    if dtype is not None:
        model.to(dtype)
    with atomic_folder(out_dir) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        write_deploy_files(tmp, base_model, record)
    return Path(out_dir)


def write_deploy_files(folder, base_model: str | None, record: dict | None) -> None:
    """What a merged model's folder needs besides ``save_pretrained``'s files (notebook 07 writes those itself):
    ``tokenizer.model`` rebuilt from a SentencePiece GGUF base (llama.cpp's converter reads it), ``NOTICE`` for a
    Gemma or MIT derivative, and ``course_merged.json`` with ``record`` when given."""
    from .models import get_spec

    folder = Path(folder)
    spec = get_spec(base_model) if base_model else None
    if spec is not None and spec.source == "gguf":
        from .gguf import gguf_path, sentencepiece_model_from_gguf

        spm = sentencepiece_model_from_gguf(gguf_path(spec))
        if spm is not None:
            (folder / "tokenizer.model").write_bytes(spm)
    if spec is not None and "Gemma" in spec.license:
        (folder / "NOTICE").write_text(GEMMA_NOTICE, encoding="utf-8")
    elif spec is not None and spec.license == "MIT":  # gpu8gb's Mi:dm 2.0 Mini, GPT-2, Phi-2
        (folder / "NOTICE").write_text(MIT_NOTICE.format(hub_id=spec.hub_id), encoding="utf-8")
    if record is not None:
        (folder / MERGED_METADATA).write_text(json.dumps(record, indent=2, ensure_ascii=False), encoding="utf-8")


def merge_into(meta: dict, into: str | None = None) -> str:
    """Which weights an adapter is merged into: ``dequantized`` (default for an nf4-trained adapter) or ``original``
    (the only choice for an adapter trained on a full-precision base, and an explicit one for a QLoRA adapter)."""
    quantized = meta.get("quantization", "none") == "nf4"
    into = into or ("dequantized" if quantized else "original")
    if into not in INTO:
        raise ValueError(f"into={into!r}: choose one of {', '.join(INTO)}")
    if into == "dequantized" and not quantized:
        raise ValueError(f"into='dequantized': this adapter was trained on a {meta.get('quantization', 'none')!r} base, "
                         f"not an nf4 one; its base weights are the original ones (into='original')")
    return into


def training_dtype(meta: dict) -> torch.dtype:
    """The dtype an adapter trained in (its base's unquantized weights and the 4-bit layers' compute dtype): what the
    merged model is saved in."""
    return getattr(torch, meta.get("dtype", "float32"))


def merge_dtype(meta: dict) -> torch.dtype:
    """The dtype a merge computes in: the training dtype on a GPU (peft computes B·A in fp32, the LoRA weights' dtype,
    and adds it to the 16-bit weight in place: one rounding), fp32 on a CPU (no fast, exact fp16 there)."""
    return training_dtype(meta) if torch.cuda.is_available() else torch.float32


def load_for_merge(adapter_dir, into: str | None = None, dtype: torch.dtype | None = None,
                   device: str | None = None):
    """(peft model on the weights it will be merged into, tokenizer, adapter metadata, ``into``), in ``dtype``
    (default ``merge_dtype``) on ``device`` (default: the GPU when there is one): one model, nothing else loaded.

    The base is loaded as training loaded it (for a QLoRA adapter, ``course_adapter.json`` says nf4: 4-bit, in its
    training dtype, on the GPU when there is one) and de-quantized layer by layer in place
    (``quantization.dequantize_layers``): exactly the weights the adapter was trained on. Only then is it moved to
    ``device`` and ``dtype`` (07 checks the merge in fp32 on the CPU: never an fp32 copy on an 8 GB card).
    ``into="original"`` loads the original full-precision weights instead.
    """
    from peft import PeftModel

    from .adapter import check_adapter, read_adapter_metadata
    from .loading import load_model, load_tokenizer
    from .quantization import dequantize_layers, quantization_config

    meta = read_adapter_metadata(adapter_dir)
    check_adapter(adapter_dir, meta["base_model"])
    into = merge_into(meta, into)
    cuda = torch.cuda.is_available()
    dtype, device = dtype or merge_dtype(meta), device or ("cuda" if cuda else "cpu")
    loaded = training_dtype(meta) if cuda else torch.float32  # as training loaded it (fp32 on a CPU, as load_trained)
    if into == "dequantized":
        base = load_model(meta["base_model"], dtype=loaded, quantization_config=quantization_config("nf4", loaded))
        base = dequantize_layers(base)  # in place, in the dtype it was loaded in: the weights the adapter trained on
    else:
        base = load_model(meta["base_model"], dtype=loaded)
    base = base.to(device=device, dtype=dtype)  # parameter by parameter: the card never holds both copies
    model = PeftModel.from_pretrained(base, str(adapter_dir))
    model.eval()
    return model, load_tokenizer(meta["base_model"]), meta, into


def merge_record(adapter_dir, meta: dict, into: str, heldout_loss: float | None = None) -> dict:
    """What ``course_merged.json`` holds: the adapter, the weights it went into, the held-out records it was scored
    on and both losses on them (the adapter's from training, the merged model's when measured)."""
    return {"adapter": str(adapter_dir), "base_model": meta["base_model"], "merged_into": into,
            "merged_into_text": INTO[into], "adapter_quantization": meta.get("quantization", "none"),
            "adapter_heldout_loss": meta.get("heldout_loss_after"), "merged_heldout_loss": heldout_loss,
            "heldout": meta.get("heldout"), "max_length": meta["max_length"], "template": meta["template"],
            "profile": meta.get("profile"), "dtype": meta.get("dtype", "float32")}


def read_merged_metadata(merged_dir) -> dict:
    """The ``course_merged.json`` of a merged folder (raises FileNotFoundError with the fix when missing)."""
    path = Path(merged_dir) / MERGED_METADATA
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: {merged_dir} was not merged by this course. Merge an adapter with "
                                f"notebook 07 or: python -m course_utils.merge --lora_weights <adapter> --output_dir <folder>")
    return json.loads(path.read_text(encoding="utf-8"))


def merge_adapter(adapter_dir, out_dir, into: str | None = None, progress=print) -> dict:
    """Merge an adapter (``load_for_merge``), measure the merged model's held-out answer loss on the records the adapter
    was scored on, save it (``save_merged``) and return its ``course_merged.json`` record. 07 and 08 (through
    ``ensure.ensure_merged``) and ``python -m course_utils.merge`` all merge here."""
    from .adapter import heldout_of
    from .loss import heldout_loss
    from .memory import free
    from .prompts import pad_id

    model, tokenizer, meta, into = load_for_merge(adapter_dir, into)
    merged = model.merge_and_unload()
    del model
    _, examples = heldout_of(meta, tokenizer)
    loss = heldout_loss(merged, examples, pad_id(tokenizer))
    record = merge_record(adapter_dir, meta, into, loss)
    save_merged(merged, tokenizer, out_dir, base_model=meta["base_model"], template=meta["template"], record=record,
                dtype=training_dtype(meta))
    del merged
    free()
    progress(merge_summary(record, len(examples)))
    progress(saved_size(out_dir))
    return record


def saved_size(out_dir) -> str:
    """One line for the learner: the merged folder's size and the dtype its weights were saved in."""
    config = json.loads((Path(out_dir) / "config.json").read_text(encoding="utf-8"))
    dtype = config.get("dtype") or config.get("torch_dtype")
    return f"저장한 병합 모델: {out_dir} ({folder_bytes(out_dir) / 1024**3:.2f} GiB, 가중치 {dtype})"


def loss_text(value) -> str:
    """A test loss as the learner reads it; None (an adapter of 09's search: its trials measure no test loss) says
    so. The merge's summary line and the model card print losses this way."""
    return "측정 안 함 (09의 탐색 시도)" if value is None else f"{value:.4f}"


def merge_summary(record: dict, records: int) -> str:
    """One line for the learner: what went where, and the held-out loss of the merged model beside the adapter's."""
    line = (f"병합: {record['adapter']} -> {record['merged_into_text']}. 시험 세트 답변 손실({records}개): 병합 모델 "
            f"{record['merged_heldout_loss']:.4f}, 학습 때 평가한 어댑터 {loss_text(record['adapter_heldout_loss'])}")
    if record["merged_into"] == "original" and record["adapter_quantization"] == "nf4":
        line += (" (주의: 원래 가중치에 병합한 모델은 학습 때 평가한 nf4 + 어댑터와 다른 모델입니다: 이 손실로 판단하세요)")
    return line


def folder_bytes(path) -> int:
    """Bytes of all files below ``path``."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def main(argv=None) -> None:
    import argparse

    from .notebook import quiet_libraries

    quiet_libraries()
    parser = argparse.ArgumentParser(prog="python -m course_utils.merge", description=(
        "Merge a LoRA adapter trained by this course into its base model and save a plain transformers model "
        "(safetensors, tokenizer with the training prompt as chat template, generation config, course_merged.json)."))
    parser.add_argument("--lora_weights", required=True, help="the adapter folder (with course_adapter.json)")
    parser.add_argument("--output_dir", required=True, help="folder for the merged model (must not exist, see --overwrite)")
    parser.add_argument("--base_model", default=None, help="registry key or hub id of the base; must be the adapter's "
                        "(default: read from course_adapter.json)")
    parser.add_argument("--into", choices=list(INTO), default=None, help="dequantized (default for a QLoRA adapter: "
                        "the nf4 weights it was trained on) or original (the full-precision weights: a different model, "
                        "its held-out loss is printed beside the adapter's)")
    parser.add_argument("--overwrite", action="store_true", help="move an existing --output_dir aside to "
                        "<output_dir>.previous-<time> first")
    args = parser.parse_args(argv)
    from .adapter import check_adapter, read_adapter_metadata
    from .models import resolve_model
    from .runs import move_aside

    out = Path(args.output_dir)
    try:
        meta = read_adapter_metadata(args.lora_weights)
        if args.base_model:
            check_adapter(args.lora_weights, resolve_model(args.base_model))
        merge_into(meta, args.into)
        if out.exists() and any(out.iterdir()):
            if not args.overwrite:
                raise FileExistsError(f"{out} already exists and is not empty. Nothing was changed. Choose another "
                                      f"--output_dir, or --overwrite to move it aside to {out}.previous-<time>")
            print(f"the earlier {out} was moved to {move_aside(out)}")
        merge_adapter(args.lora_weights, out, args.into)
    except (ValueError, OSError) as err:  # AdapterMismatchError, FileNotFoundError, FileExistsError, bad --into
        raise SystemExit(f"error: {err}") from None
    print(f"saved: {out}")


if __name__ == "__main__":
    main()

"""Merge a LoRA adapter into its base model, verify the merge, save and reload it.

``merge_and_unload`` adds (alpha / r) * B @ A to each adapted weight and removes the adapter layers,
so the result is a plain transformers model. The check is numeric: the largest absolute difference
between the logits of the adapter model and of the merged model on the same inputs.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .files import atomic_folder
from .prompts import IGNORE, collate

GEMMA_NOTICE = """This model is a derivative of Gemma (google/gemma-3-270m), merged with a LoRA adapter
trained in the course "LoRA on an 8 GB GPU". Gemma is provided under and subject to the Gemma Terms
of Use found at https://ai.google.dev/gemma/terms . Any use, reproduction or distribution of this
model must follow those terms, including the use restrictions of the Gemma Prohibited Use Policy
(https://ai.google.dev/gemma/prohibited_use_policy).
"""


@torch.no_grad()
def batch_logits(model, examples: list[dict], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits as fp32, attention mask) for a padded batch of encoded examples."""
    batch = collate(examples, pad)
    device = next(model.parameters()).device
    model.eval()
    out = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device))
    return out.logits.float().cpu(), batch["attention_mask"]


def answer_loss_from_logits(logits: torch.Tensor, examples: list[dict], pad: int) -> float:
    """Mean cross-entropy per answer token (nats) from ``batch_logits`` output (same as ``train.heldout_loss``)."""
    import torch.nn.functional as F

    labels = collate(examples, pad)["labels"][:, 1:]
    keep = labels != IGNORE
    return F.cross_entropy(logits[:, :-1][keep], labels[keep]).item()


def max_logit_diff(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """Largest |a - b| over the real (non-pad) positions."""
    keep = mask.bool()
    return (a[keep] - b[keep]).abs().max().item()


def save_merged(model, tokenizer, out_dir, gemma_notice: bool) -> Path:
    """``save_pretrained`` (safetensors) + tokenizer into ``out_dir`` atomically; Gemma derivatives get NOTICE."""
    with atomic_folder(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if gemma_notice:
            (tmp / "NOTICE").write_text(GEMMA_NOTICE, encoding="utf-8")
    return Path(out_dir)


def folder_bytes(path) -> int:
    """Bytes of all files below ``path``."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def qlora_profile(profile):
    """The profile with nf4 quantization (a QLoRA run) and a short schedule: one checkpoint interval."""
    import dataclasses

    if profile.quantization == "nf4":
        return profile
    steps = profile.train.save_steps
    return dataclasses.replace(profile, quantization="nf4",
                               train=dataclasses.replace(profile.train, max_steps=steps, warmup_steps=0))


def qlora_merges(profile, adapter_dir, examples: list[dict], pad: int) -> list[dict]:
    """Three ways to merge an adapter trained on the nf4 model, measured against nf4 model + adapter.

    (1) into the 4-bit model itself (layers stay Linear4bit; the sum is re-quantized),
    (2) into the original full-precision base (exact merge, but not the base the adapter saw),
    (3) into the de-quantized nf4 base (``dequantize()``): the weights the adapter was trained on.
    (1') control: an all-zero adapter merged into the 4-bit model, compared with that model unmerged.
    Rows: merge, layer type of q_proj, max |Δlogit| vs the reference, held-out answer loss.
    """
    import copy

    from peft import PeftModel

    from .loading import load_model
    from .quantization import bnb_config

    q = qlora_profile(profile)
    quantized = load_model(q.model, dtype=q.torch_dtype, quantization_config=bnb_config(q))

    def nf4_base():  # a copy: quantizing once is the slow part on a CPU, and merges change their model in place
        return copy.deepcopy(quantized)

    def row(name, model, ref=None, mask=None):
        logits, m = batch_logits(model, examples, pad)
        layer = next(type(mod).__name__ for n, mod in model.named_modules() if n.endswith("q_proj"))
        return {"merge": name, "q_proj type": layer,
                "max |Δlogit| vs nf4+adapter": 0.0 if ref is None else max_logit_diff(logits, ref, m),
                "held-out loss": answer_loss_from_logits(logits, examples, pad)}, logits, m

    reference = PeftModel.from_pretrained(nf4_base(), str(adapter_dir))
    first, ref, mask = row("nf4 + adapter (not merged)", reference)
    rows = [first]
    rows.append(row("(1) into the 4-bit model", reference.merge_and_unload(), ref, mask)[0])
    full = PeftModel.from_pretrained(load_model(q.model, dtype=q.torch_dtype), str(adapter_dir))
    rows.append(row("(2) into the original base", full.merge_and_unload(), ref, mask)[0])
    dequantized = nf4_base().dequantize()
    rows.append(row("(3) into the de-quantized nf4 base",
                    PeftModel.from_pretrained(dequantized, str(adapter_dir)).merge_and_unload(), ref, mask)[0])
    # control for (1): merging an all-zero adapter must change nothing
    from .lora import attach_lora

    plain = nf4_base()
    _, plain_logits, _ = row("", plain)
    rows.append(row("(1') zero adapter into the 4-bit model", attach_lora(plain, q.lora).merge_and_unload(),
                    plain_logits, mask)[0])
    return rows

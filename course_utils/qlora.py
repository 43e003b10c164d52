"""QLoRA adapters in notebook 07: which adapter to compare, and the ways to merge one, each measured.

An adapter trained on an nf4 base can be merged (1) into the 4-bit model itself (W + BA re-quantized), (2) into the
original full-precision weights, or (3) into the de-quantized nf4 weights it was trained on. ``qlora_merges``
measures all three against the nf4 + adapter model, beside two floors: what the comparison itself cannot
resolve. The course's own merge (``merge.load_for_merge``) uses (3) by default.
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path

import torch

from .loss import answer_loss_from_logits, batch_logits, max_logit_diff


def qlora_profile(profile):
    """The profile with nf4 quantization (a QLoRA run) and a short schedule: one checkpoint interval."""
    import dataclasses

    if profile.quantization == "nf4":
        return profile
    steps = profile.train.save_steps
    return dataclasses.replace(profile, quantization="nf4", train=dataclasses.replace(
        profile.train, max_steps=steps, epochs=None, warmup_steps=0))


def qlora_adapter(profile, adapter_dir, folder, progress=print) -> tuple[Path, bool]:
    """(QLoRA adapter for 07's comparison, whether it was trained now). An adapter trained on an nf4 base (05 on
    gpu8gb or smoke) is that adapter: it is never trained twice (on gpu8gb a second run would be the whole recipe,
    hours). For a full-precision profile a short QLoRA run (``qlora_profile``) is trained into ``folder``, which is
    07's own and replaced on every run."""
    from .adapter import read_adapter_metadata

    if read_adapter_metadata(adapter_dir).get("quantization") == "nf4":
        return Path(adapter_dir), False
    from .train import train

    q = qlora_profile(profile)
    result = train(q, folder, if_exists="replace", progress=progress)
    progress(f"QLoRA 어댑터: nf4 모델에서 {result.global_step} 스텝, 평가 손실 "
             f"{result.heldout_loss_before:.3f} -> {result.heldout_loss_after:.3f}")
    return result.adapter_dir, True


def nf4_weights(model) -> dict[str, torch.Tensor]:
    """The de-quantized (fp32) weight of every bitsandbytes ``Linear4bit`` in ``model``, by module name."""
    import bitsandbytes.functional as F
    from bitsandbytes.nn import Linear4bit

    return {name: F.dequantize_4bit(m.weight.data, m.weight.quant_state).float()
            for name, m in model.named_modules() if isinstance(m, Linear4bit)}


def rerounding_step(weight: torch.Tensor, quant_state) -> float:
    """Largest change of an nf4-representable ``weight`` when it is quantized once more with ``quant_state``'s
    settings and de-quantized: one nf4 re-rounding step (the absmax of each block is rounded again)."""
    import bitsandbytes.functional as F

    packed, state = F.quantize_4bit(weight.contiguous(), blocksize=quant_state.blocksize,
                                    compress_statistics=quant_state.nested, quant_type=quant_state.quant_type)
    return (F.dequantize_4bit(packed, state).float() - weight).abs().max().item()


@contextmanager
def _rounding_warning_measured():
    """peft warns at every merge into a 4-bit layer that "rounding errors" may change generations; the functions
    here measure exactly that (Δlogit, loss, weight change), so the warning adds nothing to their output."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Merge lora module to 4-bit linear may get different generations")
        yield


def zero_merge_change(model, lora_settings) -> tuple[float, float]:
    """Merge an all-zero LoRA adapter into the 4-bit ``model`` (changed in place; pass a copy).

    Returns (largest change of any de-quantized weight, largest single nf4 re-rounding step of those weights):
    a correct merge of nothing changes a weight by at most one re-rounding step.
    """
    from bitsandbytes.nn import Linear4bit

    from .lora import attach_lora

    before = nf4_weights(model)
    step = max(rerounding_step(before[name], m.weight.quant_state)
               for name, m in model.named_modules() if isinstance(m, Linear4bit))
    with _rounding_warning_measured():
        after = nf4_weights(attach_lora(model, lora_settings).merge_and_unload())
    return max((after[name] - w).abs().max().item() for name, w in before.items()), step


def qlora_merges(profile, adapter_dir, examples: list[dict], pad: int) -> list[dict]:
    """Ways to merge an adapter trained on the nf4 model, each measured on the same held-out inputs.

    The first two rows are floors, what the comparison itself cannot resolve:
    - the nf4 model vs its own de-quantized fp32 copy (no adapter): the 4-bit kernel's floor;
    - the de-quantized copy + adapter, merged vs not merged: the fp32 rounding of any merge.
    Then, against the nf4 model + adapter (not merged):
    (1) into the 4-bit model itself (layers stay Linear4bit; W + BA is re-quantized to nf4),
    (1') control: an all-zero adapter merged into the 4-bit model, against that model unmerged,
    (2) into the original full-precision base (exact merge, but not the base the adapter was trained on),
    (3) into the de-quantized nf4 base (``dequantize()``): the weights the adapter was trained on.
    Rows (Korean keys, as 07 shows them): 병합 (merge), q_proj 층 종류, 비교 대상 (compared with), max |Δlogit|,
    평가 손실 (held-out answer loss). "바닥" rows are the floors.
    """
    import copy

    from peft import PeftModel

    from .loading import load_model
    from .lora import attach_lora
    from .quantization import bnb_config

    q = qlora_profile(profile)
    quantized = load_model(q.model, dtype=q.torch_dtype, quantization_config=bnb_config(q))
    rows, logits = [], {}

    def add(name, model, against=None, key=None):
        out, m = batch_logits(model, examples, pad)
        layer = next(type(mod).__name__ for n, mod in model.named_modules() if n.endswith("q_proj"))
        rows.append({"병합": name, "q_proj 층 종류": layer, "비교 대상": against or "",
                     "max |Δlogit|": max_logit_diff(out, logits[against], m) if against else 0.0,
                     "평가 손실": answer_loss_from_logits(out, examples, pad)})
        if key:
            logits[key] = out

    def nf4_copy():  # quantizing is the slow part on a CPU, and merges change their model in place
        return copy.deepcopy(quantized)

    add("nf4 모델 (어댑터 없음)", nf4_copy(), key="nf4 모델")
    add("바닥: nf4 모델을 fp32로 푼 복사본 (어댑터 없음)", nf4_copy().dequantize(), "nf4 모델")
    rows.insert(0, rows.pop())  # the floor row first
    add("푼 복사본 + 어댑터 (병합 안 함)", PeftModel.from_pretrained(nf4_copy().dequantize(), str(adapter_dir)),
        key="푼 복사본 + 어댑터")
    rows.pop()  # only its logits are needed: the merge-rounding floor below is measured against them
    merged3 = PeftModel.from_pretrained(nf4_copy().dequantize(), str(adapter_dir)).merge_and_unload()
    add("바닥: 병합의 fp32 반올림 (푼 복사본, 병합 전후)", merged3, "푼 복사본 + 어댑터")
    reference = PeftModel.from_pretrained(nf4_copy(), str(adapter_dir))
    add("nf4 + 어댑터 (병합 안 함)", reference, key="nf4 + 어댑터")
    with _rounding_warning_measured():
        add("(1) 4비트 모델에 병합", reference.merge_and_unload(), "nf4 + 어댑터")
        add("(1') 0인 어댑터를 4비트 모델에 병합", attach_lora(nf4_copy(), q.lora).merge_and_unload(), "nf4 모델")
    full = PeftModel.from_pretrained(load_model(q.model, dtype=q.torch_dtype), str(adapter_dir))
    add("(2) 원래 기본 모델에 병합", full.merge_and_unload(), "nf4 + 어댑터")
    add("(3) nf4를 푼 기본 모델에 병합", merged3, "nf4 + 어댑터")
    return rows

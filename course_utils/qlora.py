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

from .loss import answer_logits, max_diff


def qlora_profile(profile):
    """The profile with nf4 quantization (a QLoRA run) and a short schedule: one checkpoint interval, in batches of
    one with the same records per optimizer step (gradient accumulation), as gpu8gb trains: 07 trains it beside what
    it holds already, and one record at a time keeps the activations and logits of Gemma's 262k vocabulary small."""
    import dataclasses

    if profile.quantization == "nf4":
        return profile
    steps = profile.train.save_steps
    return dataclasses.replace(profile, quantization="nf4", batch_size=1, grad_accum=profile.batch_size * profile.grad_accum,
                               train=dataclasses.replace(profile.train, max_steps=steps, epochs=None, warmup_steps=0))


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
    from .memory import free

    result = train(q, folder, if_exists="replace", progress=progress)
    progress(f"QLoRA 어댑터: nf4 모델에서 {result.global_step} 스텝, 평가 손실 "
             f"{result.heldout_loss_before:.3f} -> {result.heldout_loss_after:.3f}")
    result.model = None  # the comparison loads its own models, one at a time
    free()
    return result.adapter_dir, True


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
    """Merge an all-zero LoRA adapter into the 4-bit ``model`` (changed in place: pass a model loaded for this).

    Returns (largest change of any de-quantized weight, largest single nf4 re-rounding step of those weights):
    a correct merge of nothing changes a weight by at most one re-rounding step. Compared layer by layer: the merge
    gives each layer a new packed weight, and the old one (kept, packed: half a byte per value) is de-quantized
    beside it one layer at a time, never the whole model in fp32.
    """
    import bitsandbytes.functional as F
    from bitsandbytes.nn import Linear4bit

    from .lora import attach_lora

    before = {name: m.weight for name, m in model.named_modules() if isinstance(m, Linear4bit)}
    with _rounding_warning_measured():
        merged = attach_lora(model, lora_settings).merge_and_unload()
    change = step = 0.0
    for name, module in merged.named_modules():
        if name in before:
            old = F.dequantize_4bit(before[name].data, before[name].quant_state).float()
            new = F.dequantize_4bit(module.weight.data, module.weight.quant_state).float()
            change = max(change, (new - old).abs().max().item())
            step = max(step, rerounding_step(old, before[name].quant_state))
    return change, step


def qlora_merges(profile, adapter_dir, examples: list[dict], pad: int) -> list[dict]:
    """Ways to merge an adapter trained on the nf4 model, each measured on the same held-out inputs.

    The first two rows are floors, what the comparison itself cannot resolve:
    - the nf4 model vs its own de-quantized copy (no adapter): the 4-bit kernel's floor;
    - the de-quantized copy + adapter, merged vs not merged: the rounding of any merge.
    Then, against the nf4 model + adapter (not merged):
    (1) into the 4-bit model itself (layers stay Linear4bit; W + BA is re-quantized to nf4),
    (1') control: an all-zero adapter merged into the 4-bit model, against that model unmerged,
    (2) into the original full-precision base (exact merge, but not the base the adapter was trained on),
    (3) into the de-quantized nf4 base (``dequantize_layers``): the weights the adapter was trained on.
    One model at a time, and few logits: each row loads its model, computes the logits of the answer positions
    (``loss.answer_logits``) and frees the model before the next loads; logits are kept only while a later row is
    compared with them. The de-quantized copies are in the profile's dtype (fp32 on a CPU).
    Rows (Korean keys, as 07 shows them): 병합 (merge), q_proj 층 종류, 비교 대상 (compared with), max |Δlogit|,
    평가 손실 (held-out answer loss). "바닥" rows are the floors.
    """
    import torch.nn.functional as F
    from peft import PeftModel

    from .hardware import profile_device
    from .loading import load_model
    from .lora import attach_lora
    from .memory import free
    from .quantization import bnb_config, dequantize_layers

    q = qlora_profile(profile)
    device = profile_device(q)
    rows = {}

    def nf4():  # loaded fresh for each row (a merge changes its model in place), after the last row's model is freed
        free()
        return load_model(q.model, dtype=q.torch_dtype, quantization_config=bnb_config(q), device=device)

    def row(name, model, against=None, against_name=""):
        """The row of ``model``; returns its answer logits."""
        logits, tokens = answer_logits(model, examples, pad)
        layer = next(type(mod).__name__ for n, mod in model.named_modules() if n.endswith("q_proj"))
        rows[name] = {"병합": name, "q_proj 층 종류": layer, "비교 대상": against_name,
                      "max |Δlogit|": max_diff(logits, against) if against is not None else 0.0,
                      "평가 손실": F.cross_entropy(logits, tokens).item()}
        return logits

    unmerged = row("nf4 모델 (어댑터 없음)", nf4())
    row("바닥: nf4 모델을 푼 복사본 (어댑터 없음)", dequantize_layers(nf4()), unmerged, "nf4 모델")
    with _rounding_warning_measured():
        row("(1') 학습 전 어댑터(B = 0)를 4비트 모델에 병합", attach_lora(nf4(), q.lora).merge_and_unload(), unmerged, "nf4 모델")
    del unmerged
    free()
    model = PeftModel.from_pretrained(nf4(), str(adapter_dir))
    reference = row("nf4 + 어댑터 (병합 안 함)", model)
    with _rounding_warning_measured():
        row("(1) 4비트 모델에 병합", model.merge_and_unload(), reference, "nf4 + 어댑터")
    del model
    free()
    model = PeftModel.from_pretrained(dequantize_layers(nf4()), str(adapter_dir))
    before_merge, _ = answer_logits(model, examples, pad)
    merged = row("(3) nf4를 푼 기본 모델에 병합", model.merge_and_unload(), reference, "nf4 + 어댑터")
    rows["바닥: 병합의 반올림 (푼 복사본, 병합 전후)"] = {**rows["(3) nf4를 푼 기본 모델에 병합"],
                                               "병합": "바닥: 병합의 반올림 (푼 복사본, 병합 전후)",
                                               "비교 대상": "푼 복사본 + 어댑터", "max |Δlogit|": max_diff(merged, before_merge)}
    del model, merged, before_merge
    free()
    model = PeftModel.from_pretrained(load_model(q.model, dtype=q.torch_dtype, device=device), str(adapter_dir))
    row("(2) 원래 기본 모델에 병합", model.merge_and_unload(), reference, "nf4 + 어댑터")
    del model
    free()
    order = ["바닥: nf4 모델을 푼 복사본 (어댑터 없음)", "nf4 모델 (어댑터 없음)", "바닥: 병합의 반올림 (푼 복사본, 병합 전후)",
             "nf4 + 어댑터 (병합 안 함)", "(1) 4비트 모델에 병합", "(1') 학습 전 어댑터(B = 0)를 4비트 모델에 병합",
             "(2) 원래 기본 모델에 병합", "(3) nf4를 푼 기본 모델에 병합"]
    return [rows[name] for name in order]

"""Exercise checks of notebook 01. VRAM 예산 (notebooks/01_vram_budgeting.ipynb)."""
from __future__ import annotations

from ..units import GIB, MIB
from . import Verdict, close, direction, unanswered, verdict


def check_01_basic(answer_mib) -> Verdict:
    """기초: GPT-2 124M의 모든 가중치를 fp16으로 저장하면 몇 MiB? (1% 이내)"""
    from ..models import count_params, meta_model

    if (v := unanswered(answer_mib)) is not None:
        return v
    truth = count_params(meta_model("gpt2")).total * 2 / MIB
    hint = "fp16은 값 하나에 2바이트입니다." if close(answer_mib, truth * 2, 0.05) or close(answer_mib, truth / 2, 0.05) \
        else f"{direction(answer_mib, truth)} count_params(meta_model('gpt2')).total로 값의 개수부터 세어 보세요."
    return verdict(close(answer_mib, truth, 0.01), f"{truth:.1f} MiB", hint)


def check_01_applied(answer_ratio) -> Verdict:
    """응용: TinyLlama QLoRA(seq 512, batch 1)에서 체크포인팅을 끄면 활성화 메모리는 몇 배? (5% 이내)"""
    from ..vram import estimate_vram

    if (v := unanswered(answer_ratio)) is not None:
        return v
    on = estimate_vram("tinyllama-1.1b", "qlora", 512, 1, gradient_checkpointing=True).terms["activations"]
    off = estimate_vram("tinyllama-1.1b", "qlora", 512, 1, gradient_checkpointing=False).terms["activations"]
    truth = off / on
    return verdict(close(answer_ratio, truth, 0.05), f"{truth:.1f}배: 층마다 저장값 전부 대신 층 입력만 남기기 때문입니다.",
                    f"{direction(answer_ratio, truth)} estimate_vram(..., gradient_checkpointing=True/False)의 "
                    f"terms['activations']를 비교하세요.")


def check_01_challenge(answer_batch) -> Verdict:
    """도전: Phi-2 LoRA(fp16 가중치, seq 512, 체크포인팅 켬)가 8 GiB에 들어가는 가장 큰 batch_size는?"""
    from ..vram import estimate_vram

    if (v := unanswered(answer_batch)) is not None:
        return v

    def total(b):
        return estimate_vram("phi-2", "lora", 512, b, gradient_checkpointing=True).total

    truth = 1
    while total(truth + 1) <= 8 * GIB:
        truth += 1
    if not isinstance(answer_batch, int) or answer_batch < 1:
        return verdict(False, "", "batch_size는 1 이상의 정수입니다.")
    if total(answer_batch) > 8 * GIB:
        return verdict(False, "", f"batch {answer_batch}이면 추정 {total(answer_batch) / GIB:.2f} GiB로 8 GiB를 넘습니다.")
    return verdict(answer_batch == truth, f"batch {truth}: {total(truth) / GIB:.2f} GiB",
                    f"batch {answer_batch}은 들어가지만({total(answer_batch) / GIB:.2f} GiB) 더 키울 수 있습니다.")

"""Exercise checks of notebook 05. 학습 (notebooks/05_training.ipynb)."""
from __future__ import annotations

import math

from . import Verdict, close, direction, not_yet, unanswered, verdict


def _stale(meta: dict, *keys: str) -> Verdict | None:
    missing = [k for k in keys if k not in meta]
    if missing:
        return not_yet(f"이 어댑터의 메타데이터에 {missing}가 없습니다: 이전 버전으로 학습된 어댑터입니다. "
                       f"05를 처음부터 다시 실행해 어댑터를 새로 만드세요.")
    return None


def check_05_basic(answer_steps, profile, meta: dict) -> Verdict:
    """기초: 이 프로필에서 학습 데이터를 한 번 다 보는(1 에폭) 옵티마이저 스텝 수는? (meta = 어댑터 메타데이터)"""
    for v in (unanswered(answer_steps), _stale(meta, "train_records")):
        if v is not None:
            return v
    truth = math.ceil(meta["train_records"] / (profile.batch_size * profile.grad_accum))
    return verdict(answer_steps == truth, f"{truth} 스텝 (레코드 {meta['train_records']}개 ÷ 유효 배치 "
                    f"{profile.batch_size * profile.grad_accum})", f"{direction(answer_steps, truth)} 유효 배치 = "
                    "batch_size × grad_accum, 마지막 배치는 덜 차도 한 스텝입니다.")


def check_05_applied(answer_ppl, meta: dict) -> Verdict:
    """응용: 학습 후 held-out 답변 손실의 퍼플렉서티(perplexity)는? (1% 이내)"""
    if (v := unanswered(answer_ppl)) is not None:
        return v
    truth = math.exp(meta["heldout_loss_after"])
    return verdict(close(answer_ppl, truth, 0.01), f"{truth:.2f} = exp(손실)",
                    f"{direction(answer_ppl, truth)} 손실은 토큰당 nats입니다: math.exp를 쓰세요.")


def check_05_challenge(answer_seconds, profile, meta: dict, tokenizer) -> Verdict:
    """도전: 이번 실행의 tokens/s로, 학습 데이터 3 에폭에 몇 초가 걸릴까? (패딩 제외 토큰 기준, 15% 이내)"""
    from ..prompts import prepare_data

    for v in (unanswered(answer_seconds), _stale(meta, "tokens_per_second")):
        if v is not None:
            return v
    train_set, _, _ = prepare_data(profile, tokenizer)
    tokens = sum(len(e["input_ids"]) for e in train_set)
    truth = 3 * tokens / meta["tokens_per_second"]
    return verdict(close(answer_seconds, truth, 0.15), f"약 {truth:.0f} s (에폭당 {tokens:,} 토큰)",
                    f"{direction(answer_seconds, truth)} 에폭당 토큰 = 학습 예제들의 input_ids 길이 합입니다.")

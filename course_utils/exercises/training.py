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
    packed = profile.train.packing  # the Trainer's epoch is over packed rows, each several records
    for v in (unanswered(answer_steps), _stale(meta, "train_rows" if packed else "train_records")):
        if v is not None:
            return v
    rows, unit = (meta["train_rows"], "패킹한 행") if packed else (meta["train_records"], "레코드")
    truth = math.ceil(rows / (profile.batch_size * profile.grad_accum))
    return verdict(answer_steps == truth, f"{truth} 스텝 ({unit} {rows}개 ÷ 유효 배치 "
                    f"{profile.batch_size * profile.grad_accum})", f"{direction(answer_steps, truth)} 유효 배치 = "
                    "batch_size × grad_accum, 마지막 배치는 덜 차도 한 스텝입니다."
                    + (" 패킹하면 행 하나가 배치의 한 자리입니다: 레코드가 아니라 행을 세세요." if packed else ""))


def check_05_applied(answer_ppl, meta: dict) -> Verdict:
    """응용: 학습 후 시험 세트 답변 손실의 퍼플렉서티(perplexity)는? (1% 이내)"""
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
    train_set, _, _, _ = prepare_data(profile, tokenizer)
    tokens = sum(len(e["input_ids"]) for e in train_set)
    truth = 3 * tokens / meta["tokens_per_second"]
    return verdict(close(answer_seconds, truth, 0.15), f"약 {truth:.0f} s (에폭당 {tokens:,} 토큰)",
                    f"{direction(answer_seconds, truth)} 에폭당 토큰 = 학습 예제들의 input_ids 길이 합입니다.")


def _resume_run(folder, stop_at: int | None):
    """A Trainer on tiny_llama: 4 optimizer steps, a checkpoint every 2; ``stop_at``: stop after that step
    (an interrupted run, its checkpoint written). Records are random ids of fixed length, labels = ids."""
    import torch
    from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments, default_data_collator

    from . import tiny_llama

    class Stop(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == stop_at:
                control.should_training_stop = True

    class Count(TrainerCallback):
        steps = 0

        def on_step_end(self, args, state, control, **kwargs):
            Count.steps += 1

    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 512, (16, 12), generator=generator)
    records = [{"input_ids": r, "attention_mask": torch.ones_like(r), "labels": r} for r in ids]
    args = TrainingArguments(output_dir=str(folder), per_device_train_batch_size=2, gradient_accumulation_steps=2,
                             max_steps=4, save_steps=2, learning_rate=1e-2, lr_scheduler_type="linear",
                             logging_strategy="no", report_to=[], use_cpu=True, seed=0, data_seed=0,
                             disable_tqdm=True, dataloader_num_workers=0)
    trainer = Trainer(model=tiny_llama(), args=args, train_dataset=records, data_collator=default_data_collator,
                      callbacks=[Stop(), Count()])
    trainer.remove_callback(PrinterCallback)  # the check prints its verdict only
    return trainer, Count


def check_05_code(resume) -> Verdict:
    """코드: 멈춘 학습을 가장 최근 체크포인트에서 이어서 끝까지 하는 ``resume(trainer)``. ``trainer``는 멈춘 학습과 같은
    설정(같은 output_dir)으로 새로 만든 Trainer이고, 함수는 ``trainer.train(...)``이 돌려준 것을 돌려줍니다.

    The check stops a 4-step run on a tiny model after its step-2 checkpoint, hands the learner a fresh trainer on
    that folder, and compares the steps it ran and the weights it ends with against an uninterrupted run."""
    from . import not_callable

    if (v := unanswered(resume, "resume")) is not None or (v := not_callable(resume, "resume")) is not None:
        return v
    from . import quiet_progress

    return quiet_progress(lambda: _check_resume(resume))


def _check_resume(resume) -> Verdict:
    import tempfile
    from pathlib import Path

    import torch

    from . import code_error, not_yet, run_learner_code

    with tempfile.TemporaryDirectory() as tmp:
        whole, _ = _resume_run(Path(tmp) / "whole", stop_at=None)
        whole.train()
        stopped, _ = _resume_run(Path(tmp) / "run", stop_at=2)
        stopped.train()
        trainer, count = _resume_run(Path(tmp) / "run", stop_at=None)
        result, error = run_learner_code(resume, trainer)
        if error is not None:
            return code_error(error)
        equal = all(torch.allclose(a, b, atol=1e-6) for a, b in zip(trainer.model.parameters(),
                                                                     whole.model.parameters(), strict=True))
    if trainer.state.global_step != 4 or count.steps == 0:
        return not_yet("학습이 끝까지 돌지 않았습니다: 함수 안에서 trainer.train(...)을 부르세요.")
    if count.steps == 4:
        return not_yet("처음부터 다시 학습했습니다: 스텝 1부터 4까지를 모두 돌았습니다. train()에 체크포인트에서 "
                       "이어 하라는 인자를 주세요.")
    if not equal:
        return not_yet("이어서 한 스텝 수는 맞지만 가중치가 멈추지 않은 학습과 다릅니다: 모델만이 아니라 옵티마이저와 "
                       "스케줄러 상태도 체크포인트에서 읽어야 합니다.")
    if result is None or getattr(result, "global_step", None) != 4:
        return not_yet("이어서 끝까지 학습했습니다. trainer.train(...)이 돌려준 것을 return하세요.")
    return verdict(True, f"체크포인트(스텝 2) 다음의 {count.steps} 스텝만 돌았고, 가중치가 멈추지 않은 학습과 같습니다.", "")

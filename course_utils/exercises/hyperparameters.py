"""Exercise checks of notebook 09. 하이퍼파라미터 탐색 (notebooks/09_hyperparameters.ipynb)."""
from __future__ import annotations

import functools

from . import Verdict, direction, unanswered, verdict


def check_09_basic(answer_pruned, study) -> Verdict:
    """기초: 이번 탐색에서 가지치기(pruning)로 중간에 멈춘 시도는 몇 개인가?"""
    import optuna

    if (v := unanswered(answer_pruned)) is not None:
        return v
    truth = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    return verdict(answer_pruned == truth, f"{truth}개 / {len(study.trials)}개",
                   f"{direction(answer_pruned, truth)} study.trials의 state가 TrialState.PRUNED인 시도를 세어 보세요.")


@functools.lru_cache(maxsize=None)
def smoke_drop(learning_rate: float) -> float:
    """Held-out loss drop (%) of the smoke profile trained with ``learning_rate``: a short run (the gpu8gb recipe on its
    CPU stand-in), remembered per learning rate, so checking an answer twice does not train twice."""
    import dataclasses
    import tempfile

    from ..memory import free
    from ..profiles import get_profile
    from ..train import train

    smoke = get_profile("smoke")
    smoke = dataclasses.replace(smoke, train=dataclasses.replace(smoke.train, learning_rate=learning_rate))
    with tempfile.TemporaryDirectory() as tmp:
        drop = 100 * train(smoke, tmp, progress=lambda m: None).loss_drop
    free()  # the run's model goes before the lesson loads another
    return drop


def check_09_applied(answer_drop_pct) -> Verdict:
    """응용: smoke 프로필의 학습률을 10분의 1로 낮춰 다시 학습하면 시험 세트 손실 감소(%)는? (0.5%p 이내)"""
    from ..profiles import get_profile

    if (v := unanswered(answer_drop_pct)) is not None:
        return v
    default_lr = get_profile("smoke").train.learning_rate
    truth = smoke_drop(default_lr / 10)  # one training: the default rate's drop is 05's own smoke run
    ok = isinstance(answer_drop_pct, (int, float)) and abs(answer_drop_pct - truth) <= 0.5
    return verdict(ok, f"{truth:.1f} %: 05에서 기본 학습률({default_lr:g})로 학습한 감소(%)와 비교해 보세요. 스텝 수가 같으면 "
                       "학습률이 한 스텝에 얼마나 움직일지를 정합니다.",
                   f"{direction(answer_drop_pct, truth)} dataclasses.replace로 smoke 프로필의 train.learning_rate를 "
                   f"{default_lr / 10:g}로 바꿔 train(...)을 돌리고 100 × result.loss_drop을 보세요.")


def check_09_challenge(answer_beyond, comparison: dict) -> Verdict:
    """도전: 가장 좋은 설정과 기본 설정의 시험 세트 손실 차이가 시드만 바꾼 차이(노이즈)보다 큰가? (True/False)"""
    from ..tuning import verdict as tuning_verdict

    if (v := unanswered(answer_beyond)) is not None:
        return v
    result = tuning_verdict(comparison)
    return verdict(answer_beyond is result["beyond_noise"],
                   f"{result['beyond_noise']}: 차이 {result['gain']:+.4f}, 노이즈 {result['noise']:.4f} nats/토큰",
                   "차이 = default의 손실 - best의 손실, 노이즈 = 두 시드의 default 손실 차이입니다.")

"""Exercise checks of notebook 10. 선호 학습 (notebooks/10_preference_tuning.ipynb)."""
from __future__ import annotations

from . import Verdict, close, direction, unanswered, verdict


def check_10_basic(answer_reward) -> Verdict:
    """기초: beta 0.1, 고른 답의 로그 확률이 policy -20.0, 참조 -25.0일 때 DPO 보상 r = beta * (log policy - log 참조)은?"""
    if (v := unanswered(answer_reward)) is not None:
        return v
    truth = 0.1 * (-20.0 - (-25.0))
    return verdict(close(answer_reward, truth, 1e-6), f"r = 0.1 × (−20 − (−25)) = {truth:.1f}",
                   f"{direction(answer_reward, truth) if isinstance(answer_reward, (int, float)) else '숫자가 아닙니다.'} "
                   "policy의 로그 확률에서 참조의 로그 확률을 빼고 beta를 곱하세요.")


def check_10_applied(answer_percent, correct: int, pairs: int) -> Verdict:
    """응용: DPO 뒤 모델의 held-out 보상 정확도(%)는? (맞힌 쌍 ``correct`` / ``pairs``, 0.05%p 이내)"""
    if (v := unanswered(answer_percent)) is not None:
        return v
    truth = 100 * correct / pairs
    ok = isinstance(answer_percent, (int, float)) and abs(answer_percent - round(truth, 1)) <= 0.05 + 1e-9
    return verdict(ok, f"{correct}/{pairs} = {truth:.1f} %",
                   "6절 표의 'DPO 뒤' 행에서 맞힌 쌍의 수를 전체 쌍의 수로 나누고 100을 곱하세요 (비율이 아니라 %).")


def check_10_challenge(answer_count, pairs: int) -> Verdict:
    """도전: held-out 쌍 ``pairs``개 중 몇 개 이상 맞혀야 우연(50 %)으로 그만큼 맞힐 확률이 0.05 이하인가?"""
    from ..preference_eval import chance_probability

    if (v := unanswered(answer_count)) is not None:
        return v
    truth = next(k for k in range(pairs + 1) if chance_probability(k, pairs) <= 0.05)
    ok = answer_count == truth
    return verdict(ok, f"{truth}개 (우연으로 {truth}개 이상 맞힐 확률 {chance_probability(truth, pairs):.3f})",
                   f"{direction(answer_count, truth) if isinstance(answer_count, int) else '개수(정수)로 답하세요.'} "
                   "chance_probability(k, pairs)가 0.05 이하가 되는 가장 작은 k를 찾으세요.")

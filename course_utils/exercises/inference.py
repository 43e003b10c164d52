"""Exercise checks of notebook 06. 추론 (notebooks/06_inference.ipynb)."""
from __future__ import annotations

from . import Verdict, direction, unanswered, verdict


def check_06_basic(answer_same, model, tokenizer, question: str = "한국의 수도는 어디인가요?") -> Verdict:
    """기초: 탐욕 생성(do_sample=False)으로 같은 질문을 두 번 하면 답이 같은가? (True/False)"""
    from ..inference import answer_with_stats

    if (v := unanswered(answer_same)) is not None:
        return v
    a, b = (answer_with_stats(model, tokenizer, question, max_new_tokens=16)["answer"] for _ in range(2))
    truth = a == b
    return verdict(answer_same is truth, "탐욕 생성은 매번 가장 확률이 높은 토큰을 고르므로 결정적입니다.",
                    "두 번 생성해 직접 비교해 보세요.")


def check_06_applied(answer_count, model, tokenizer, n: int = 5) -> Verdict:
    """응용: 어댑터를 끈 상태(`with model.disable_adapter():`)에서 확인 질문 처음 5개 중 몇 개를 맞히나?"""
    from ..data import load_probes
    from ..inference import run_probes

    if (v := unanswered(answer_count)) is not None:
        return v
    with model.disable_adapter():
        truth = sum(r.correct for r in run_probes(model, tokenizer, load_probes()[:n]))
    return verdict(answer_count == truth, f"{truth}/{n}개 (기본 모델)", f"{direction(answer_count, truth)} "
                    "run_probes를 disable_adapter() 안에서 실행하세요.")


def check_06_challenge(answer_drop_pct, model, tokenizer, n: int = 4) -> Verdict:
    """도전: 검증 세트의 처음 4개 레코드의 답변 손실이 어댑터를 켜면 끌 때보다 몇 % 줄어드나? (0.5%p 이내)"""
    from ..loss import heldout_loss
    from ..prompts import encode, pad_id
    from ..splits import load_heldout

    if (v := unanswered(answer_drop_pct)) is not None:
        return v
    examples = [encode(r, tokenizer) for r in load_heldout("dev")[:n]]
    on = heldout_loss(model, examples, pad_id(tokenizer))
    with model.disable_adapter():
        off = heldout_loss(model, examples, pad_id(tokenizer))
    truth = 100 * (1 - on / off)
    ok = isinstance(answer_drop_pct, (int, float)) and abs(answer_drop_pct - truth) <= 0.5
    return verdict(ok, f"{truth:.1f} % ({off:.3f} → {on:.3f})", f"{direction(answer_drop_pct, truth)} "
                    "heldout_loss(model, examples, pad)를 어댑터 켬/끔으로 재고 100 × (1 − 켬/끔)을 계산하세요.")


def check_06_code(load) -> Verdict:
    """코드: 저장된 기본 모델 폴더와 어댑터 폴더로 답할 준비가 된 모델을 돌려주는 ``load(base_dir, adapter_dir)``.

    The check saves a tiny base and an adapter whose B is nonzero, runs the learner's function, and compares its
    logits with the base's and with the adapter's (loaded by peft), and whether the adapter is left trainable."""
    from . import not_callable, quiet_progress

    if (v := unanswered(load, "load")) is not None or (v := not_callable(load, "load")) is not None:
        return v
    return quiet_progress(lambda: _check_load(load))


def _check_load(load) -> Verdict:
    import tempfile

    import torch

    from . import adapter_on_base, code_error, logits_of, not_yet, run_learner_code, same_model

    with tempfile.TemporaryDirectory() as tmp:
        base_dir, adapter_dir, base_logits, _, truth = adapter_on_base(tmp)
        model, error = run_learner_code(load, str(base_dir), str(adapter_dir))
        if error is not None:
            return code_error(error)
        if not isinstance(model, torch.nn.Module):
            return not_yet("모델(torch.nn.Module)을 돌려주세요.")
        logits = logits_of(model)
    if not same_model(logits, truth, base_logits):
        if any("lora_" in n for n, _ in model.named_parameters()):
            return not_yet("어댑터는 있지만 저장된 어댑터의 값이 아닙니다: 새로 만든 어댑터가 아니라 adapter_dir의 것을 "
                           "읽으세요.")
        return not_yet("기본 모델과 같은 답을 합니다: 어댑터가 얹히지 않았습니다." if same_model(logits, base_logits, truth)
                       else "기본 모델의 답도, 저장된 어댑터의 답도 아닙니다: 두 폴더를 각각 한 번씩 읽으세요.")
    if any(p.requires_grad for n, p in model.named_parameters() if "lora_" in n):
        return not_yet("어댑터를 학습할 수 있게 읽었습니다: 답만 할 때는 is_trainable을 켜지 않습니다.")
    if model.training:
        return not_yet("모델이 학습 모드입니다 (dropout이 켜짐): model.eval()")
    return verdict(True, "저장된 어댑터가 기본 모델 위에 얹혔습니다 (로짓이 peft로 읽은 것과 같고, 학습하지 않는 상태).", "")

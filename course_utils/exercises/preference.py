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
    """응용: 시험 쌍에서 DPO 뒤 모델의 보상 정확도(%)는? (맞힌 쌍 ``correct`` / ``pairs``, 0.05%p 이내)"""
    if (v := unanswered(answer_percent)) is not None:
        return v
    truth = 100 * correct / pairs
    ok = isinstance(answer_percent, (int, float)) and abs(answer_percent - round(truth, 1)) <= 0.05 + 1e-9
    return verdict(ok, f"{correct}/{pairs} = {truth:.1f} %",
                   "6절 표의 'DPO 뒤' 행에서 맞힌 쌍의 수를 전체 쌍의 수로 나누고 100을 곱하세요 (비율이 아니라 %).")


def check_10_challenge(answer_count, pairs: int) -> Verdict:
    """도전: 시험 쌍 ``pairs``개 중 몇 개 이상 맞혀야 우연(50 %)으로 그만큼 맞힐 확률이 0.05 이하인가?"""
    from ..preference_eval import chance_probability

    if (v := unanswered(answer_count)) is not None:
        return v
    truth = next(k for k in range(pairs + 1) if chance_probability(k, pairs) <= 0.05)
    ok = answer_count == truth
    return verdict(ok, f"{truth}개 (우연으로 {truth}개 이상 맞힐 확률 {chance_probability(truth, pairs):.3f})",
                   f"{direction(answer_count, truth) if isinstance(answer_count, int) else '개수(정수)로 답하세요.'} "
                   "chance_probability(k, pairs)가 0.05 이하가 되는 가장 작은 k를 찾으세요.")


CODE_10 = {"beta": 0.1, "learning_rate": 5e-5, "max_length": 512, "per_device_train_batch_size": 1,
           "gradient_accumulation_steps": 16, "max_steps": 100}  # gpu8gb's recipe (profiles.yaml)


def check_10_code(make_config, tokenizer) -> Verdict:
    """코드: gpu8gb의 DPO 레시피(CODE_10)를 적은 ``DPOConfig``를 돌려주는 ``make_config(output_dir)``.

    The check compares the six values, then trains one step of ``DPOTrainer(ref_model=None)`` with the config on a
    tiny model holding an SFT adapter (on a CPU, fp32, 2 pairs) and reports the first loss: ln 2, because TRL's
    reference is a frozen copy of that adapter."""
    from . import not_callable, quiet_progress

    if (v := unanswered(make_config, "make_config")) is not None or \
            (v := not_callable(make_config, "make_config")) is not None:
        return v
    return quiet_progress(lambda: _check_dpo_config(make_config, tokenizer))


def _check_dpo_config(make_config, tokenizer) -> Verdict:
    import copy
    import dataclasses
    import math
    import tempfile

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import PrinterCallback
    from trl import DPOConfig, DPOTrainer

    from ..preference_data import load_pairs, trl_dataset
    from . import code_error, not_yet, run_learner_code, tiny_llama

    tokenizer = copy.deepcopy(tokenizer)  # TRL sets a pad token on a tokenizer without one: not the notebook's
    with tempfile.TemporaryDirectory() as tmp:
        config, error = run_learner_code(make_config, tmp)
        if error is not None and "bf16" in str(error):
            return not_yet("TRL의 DPOConfig는 bf16=True가 기본값이라 GPU가 없으면 만들어지지 않습니다: "
                           "use_cpu=not torch.cuda.is_available()를 함께 주세요.")
        if error is not None:
            return code_error(error)
        if not isinstance(config, DPOConfig):
            return not_yet("trl의 DPOConfig(...)를 돌려주세요.")
        wrong = [key for key, want in CODE_10.items() if getattr(config, key) != want]
        if wrong:
            return not_yet(f"레시피와 다른 값: {', '.join(wrong)}. 문제의 표를 다시 보세요.")
        run = dataclasses.replace(config, output_dir=tmp, max_steps=1, per_device_train_batch_size=2,
                                  gradient_accumulation_steps=1, use_cpu=True, fp16=False, bf16=False,
                                  optim="adamw_torch", report_to=[], save_strategy="no", logging_steps=1,
                                  disable_tqdm=True)
        model = get_peft_model(tiny_llama(len(tokenizer)), LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0,
                                                                       target_modules=["q_proj", "v_proj"]))
        with torch.no_grad():  # an SFT adapter that changes the output, as a trained one does
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, 0.5)
        trainer = DPOTrainer(model=model, ref_model=None, args=run, processing_class=tokenizer,
                             train_dataset=trl_dataset(load_pairs()[:2], tokenizer, "koalpaca"))
        trainer.remove_callback(PrinterCallback)  # the verdict says the loss
        trainer.train()
    first = next(e["loss"] for e in trainer.state.log_history if "loss" in e)
    return verdict(True, f"레시피의 여섯 값이 맞습니다. 이 설정으로 DPO 한 스텝: 첫 손실 {first:.4f} = ln 2 "
                   f"({math.log(2):.4f}), 참조가 SFT 어댑터의 복사본({sorted(trainer.model.peft_config)})이라서", "")

"""Exercise checks of notebook 07. 병합 (notebooks/07_merging.ipynb)."""
from __future__ import annotations

from ..units import MIB
from . import Verdict, close, direction, unanswered, verdict


def check_07_basic(answer_mib, merged_dir) -> Verdict:
    """기초: 병합 모델 폴더의 가중치 파일(*.safetensors) 크기를 파라미터 수로 예측하면 몇 MiB? (1% 이내)"""
    from pathlib import Path

    if (v := unanswered(answer_mib)) is not None:
        return v
    truth = sum(p.stat().st_size for p in Path(merged_dir).glob("*.safetensors")) / MIB
    return verdict(close(answer_mib, truth, 0.01), f"파일 {truth:.1f} MiB",
                    f"{direction(answer_mib, truth)} 병합 모델은 어댑터 없이, 학습한 dtype의 가중치만 저장합니다 "
                    "(config.json의 dtype; 공유된(tied) 가중치는 한 번만).")


def check_07_applied(wrong_merged, reference_logits, examples: list[dict], pad: int, tolerance: float) -> Verdict:
    """응용: 다른 어댑터를 병합해 병합 검사가 실패하게 만드세요 (wrong_merged: 잘못 병합한 모델; reference_logits: 07의
    ``answer_logits``)."""
    from ..loss import answer_logits, max_diff

    if (v := unanswered(wrong_merged)) is not None:
        return v
    got, _ = answer_logits(wrong_merged, examples, pad)
    delta = max_diff(reference_logits, got)
    return verdict(delta > tolerance, f"max |Δlogit| {delta:.3g} > 허용 {tolerance:g}: 검사가 잘못된 병합을 잡아냈습니다.",
                    f"max |Δlogit| {delta:.3g}는 허용 범위 안입니다: 같은 어댑터를 병합한 것 같습니다. "
                    "LoRA B를 바꾼 다른 어댑터를 병합해 보세요.")


def check_07_challenge(answer_changed, adapter_dir) -> Verdict:
    """도전: 병합하면 기본 모델의 가중치 텐서 중 몇 개가 바뀌나? (adapter_dir: 병합한 어댑터 폴더)"""
    from pathlib import Path

    from safetensors import safe_open

    if (v := unanswered(answer_changed)) is not None:
        return v
    with safe_open(Path(adapter_dir) / "adapter_model.safetensors", "pt") as f:  # one lora_A per adapted layer
        truth = sum(1 for key in f.keys() if ".lora_A." in key)
    return verdict(answer_changed == truth, f"{truth}개: LoRA가 붙은 선형층의 weight만 W + (α/r)·B·A로 바뀝니다.",
                    f"{direction(answer_changed, truth)} 병합 전후 state_dict를 텐서별로 비교해 세어 보세요.")


def check_07_code(merge_and_save) -> Verdict:
    """코드: 어댑터가 얹힌 모델(``PeftModel``)을 병합해 ``out_dir``에 peft 없이 읽히는 모델로 저장하는
    ``merge_and_save(model, out_dir)``.

    The check runs it on a tiny base with an adapter whose B is nonzero, reads ``out_dir`` with plain
    ``AutoModelForCausalLM`` and compares its logits with the adapter model's and the base's."""
    from . import not_callable, quiet_progress

    if (v := unanswered(merge_and_save, "merge_and_save")) is not None or \
            (v := not_callable(merge_and_save, "merge_and_save")) is not None:
        return v
    return quiet_progress(lambda: _check_merge(merge_and_save))


def _check_merge(merge_and_save) -> Verdict:
    import tempfile
    from pathlib import Path

    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    from . import adapter_on_base, code_error, logits_of, not_yet, run_learner_code, same_model

    with tempfile.TemporaryDirectory() as tmp:
        _, _, base_logits, model, truth = adapter_on_base(tmp)
        out_dir = Path(tmp) / "merged"
        _, error = run_learner_code(merge_and_save, model, str(out_dir))
        if error is not None:
            return code_error(error)
        if (out_dir / "adapter_config.json").exists():
            return not_yet("어댑터만 저장했습니다: 병합한 모델(merge_and_unload가 돌려주는 것)을 저장하세요.")
        if not (out_dir / "config.json").is_file():
            return not_yet("out_dir에 config.json이 없습니다: 모델의 save_pretrained(out_dir)로 저장하세요.")
        names = [n for f in out_dir.glob("*.safetensors") for n in safe_open(f, "pt").keys()]
        if any("lora_" in n or "base_layer" in n for n in names):
            return not_yet("저장한 가중치에 LoRA 행렬이 남아 있습니다: merge_and_unload()가 돌려준 모델을 저장하세요.")
        logits = logits_of(AutoModelForCausalLM.from_pretrained(out_dir))
    if same_model(logits, base_logits, truth):
        return not_yet("저장한 모델이 기본 모델과 같은 답을 합니다: 어댑터가 더해지지 않았습니다.")
    delta = (logits - truth).abs().max().item()
    return verdict(same_model(logits, truth, base_logits), f"peft 없이 읽은 병합 모델과 어댑터 모델의 max |Δlogit| = "
                   f"{delta:.1e} (16비트로 저장했다면 그 반올림만큼)", f"병합 모델의 답이 어댑터 모델과 다릅니다 "
                   f"(max |Δlogit| {delta:.1e}).")

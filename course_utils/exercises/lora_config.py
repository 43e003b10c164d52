"""Exercise checks of notebook 03. LoRA 설정 (notebooks/03_lora_config.ipynb)."""
from __future__ import annotations

import torch

from . import Verdict, close, direction, unanswered, verdict


def unseen_model():
    """A small model of an architecture the course never uses (GPT-NeoX, as in Pythia), random weights."""
    from transformers import AutoModelForCausalLM, GPTNeoXConfig

    torch.manual_seed(0)
    config = GPTNeoXConfig(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=256, max_position_embeddings=256)
    return AutoModelForCausalLM.from_config(config)


def check_03_basic(answer_bytes, model_key: str, r: int = 16) -> Verdict:
    """기초: 이 모델에 r=16 LoRA(attention)를 붙이면 어댑터 텐서는 몇 바이트(fp32)? 저장한 파일과도 비교합니다."""
    import tempfile
    from pathlib import Path

    from peft import get_peft_model

    from ..loading import load_model
    from ..lora import lora_config, lora_param_count
    from ..profiles import LoraSettings

    if (v := unanswered(answer_bytes)) is not None:
        return v
    truth = 4 * lora_param_count(model_key, r, "attention")
    base = load_model(model_key)
    with tempfile.TemporaryDirectory() as tmp:
        probe = get_peft_model(base, lora_config(LoraSettings(r=r, alpha=2 * r, dropout=0.0, targets="attention"), base))
        probe.save_pretrained(tmp)
        file_bytes = (Path(tmp) / "adapter_model.safetensors").stat().st_size
    return verdict(close(answer_bytes, truth, 0.001),
                    f"{truth:,} B; 저장한 파일은 {file_bytes:,} B (차이 {file_bytes - truth:,} B는 safetensors 헤더)",
                    f"{direction(answer_bytes, truth)} 층마다 A(r×d_in)와 B(d_out×r), 값 하나에 4바이트입니다.")


def check_03_applied(answer_targets) -> Verdict:
    """응용: unseen_model()의 attention 선형층 target_modules 이름(집합)은?"""
    from ..lora import discover_targets

    if (v := unanswered(answer_targets)) is not None:
        return v
    truth = set(discover_targets(unseen_model(), "attention"))
    given = set(answer_targets) if isinstance(answer_targets, (list, tuple, set)) else {answer_targets}
    missing, extra = truth - given, given - truth
    why = ("빠진 attention 층이 있습니다." if missing else "") + (" attention이 아닌 이름이 섞였습니다." if extra else "")
    return verdict(not missing and not extra, f"{sorted(truth)}", f"{why.strip()} print(unseen_model())로 층 이름을 보세요.")


def check_03_challenge(answer_count) -> Verdict:
    """도전: SmolLM2-135M에 r=8 LoRA를 모든 선형층(all-linear)에 붙이면 학습 파라미터는 몇 개?"""
    from ..lora import lora_param_count

    if (v := unanswered(answer_count)) is not None:
        return v
    truth = lora_param_count("smollm2-135m-instruct", 8, "all-linear")
    attention = lora_param_count("smollm2-135m-instruct", 8, "attention")
    hint = "attention 층만 셌습니다: MLP의 gate/up/down도 선형층입니다." if answer_count == attention else \
        f"{direction(answer_count, truth)} 층마다 r×(d_in + d_out)을 더하세요."
    return verdict(answer_count == truth, f"{truth:,}개", hint)

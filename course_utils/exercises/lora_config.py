"""Exercise checks of notebook 03. LoRA 설정 (notebooks/03_lora_config.ipynb)."""
from __future__ import annotations

import torch

from . import Verdict, close, direction, not_yet, unanswered, verdict


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


def phi_model():
    """A small model of Phi-2's architecture (the original design's pick), random weights."""
    from transformers import AutoModelForCausalLM, PhiConfig

    torch.manual_seed(0)
    config = PhiConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, max_position_embeddings=256)
    return AutoModelForCausalLM.from_config(config)


CODE_03 = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.05}


def check_03_code(answer_config) -> Verdict:
    """코드: phi_model()의 attention 선형층 모두에 r=8, α=16, dropout 0.05인 LoRA를 붙이는 ``LoraConfig``.

    The check applies it with ``get_peft_model`` and compares the layers that got LoRA with the attention's
    linear layers, the three numbers with CODE_03, and the model class with the causal-LM one."""
    import copy

    from peft import LoraConfig, get_peft_model
    from peft.tuners.lora import LoraLayer

    from ..lora import discover_targets

    if (v := unanswered(answer_config)) is not None:
        return v
    if not isinstance(answer_config, LoraConfig):
        return not_yet("peft의 LoraConfig(...)를 answer에 넣으세요.")
    try:
        model = get_peft_model(phi_model(), copy.deepcopy(answer_config))
    except ValueError as err:
        return not_yet(f"get_peft_model이 거부했습니다 ({str(err)[:80]}…): target_modules에 이 모델에 없는 이름이 "
                       "있습니다. print(phi_model())로 층 이름을 보세요.")
    truth = set(discover_targets(phi_model(), "attention"))
    layers = {name: m for name, m in model.named_modules() if isinstance(m, LoraLayer)}
    wrapped = {name.rsplit(".", 1)[-1] for name in layers}
    every = {name for name, m in phi_model().named_modules()
             if isinstance(m, torch.nn.Linear) and name.rsplit(".", 1)[-1] in truth}  # each layer's attention
    problems = []
    if truth - wrapped:
        problems.append(f"LoRA가 붙지 않은 attention 선형층이 {len(truth - wrapped)}종류 있습니다 "
                        "(self_attn 안의 Linear를 모두 세어 보세요)")
    elif {n.removeprefix("base_model.model.") for n in layers} < every:
        problems.append("일부 층의 attention에만 붙었습니다 (layers_to_transform이나 exclude_modules를 빼세요)")
    if wrapped - truth:
        problems.append("attention 밖의 층(MLP)에도 붙었습니다")
    plain = answer_config.r == CODE_03["r"] and answer_config.lora_alpha == CODE_03["lora_alpha"]
    if plain and any(m.r.get("default") != CODE_03["r"] or m.use_dora.get("default")
                     or m.scaling.get("default") != CODE_03["lora_alpha"] / CODE_03["r"] for m in layers.values()):
        problems.append("층마다의 r이나 α/r(rank_pattern, alpha_pattern, DoRA)이 문제의 평범한 LoRA와 다릅니다")
    for key, want in CODE_03.items():
        if getattr(answer_config, key) != want:
            problems.append(f"{key}가 문제의 값과 다릅니다")
    if type(model).__name__ != "PeftModelForCausalLM":
        problems.append("task_type을 정하지 않아 generate와 labels를 다루는 PeftModelForCausalLM이 아닙니다")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return verdict(not problems, f"LoRA가 붙은 선형층 {len(layers)}개({len(wrapped)}종류), 학습 파라미터 {trainable:,}개",
                   "; ".join(problems) + ".")

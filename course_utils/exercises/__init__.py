"""Checks for the exercises at the end of notebooks 01-07 (기초 / 응용 / 도전), one module per lesson.

Each ``check_NN_…`` computes the right answer itself, compares it with the learner's, prints "정답" or
"아직" with a reason that points the way without giving the number away, and returns a ``Verdict``. An
unanswered exercise (``None``) is "아직", never an error, so notebooks run top to bottom. Worked
solutions are in ``notebooks/solutions/``. This module holds what every lesson's checks share.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok


def verdict(ok: bool, right: str, not_yet: str) -> Verdict:
    """Print and return 정답 (with ``right``) or 아직 (with ``not_yet``, a hint that does not give the answer)."""
    v = Verdict(ok, f"정답 ✅ {right}" if ok else f"아직 🔸 {not_yet}")
    print(v.message)
    return v


def not_yet(message: str) -> Verdict:
    """Print and return 아직 with ``message``."""
    v = Verdict(False, f"아직 🔸 {message}")
    print(v.message)
    return v


def unanswered(answer, name: str = "answer") -> Verdict | None:
    """아직 when the learner has not filled ``answer`` (the cell's variable ``name``) yet, else None."""
    return not_yet(f"{name}에 답을 넣고 이 셀을 다시 실행하세요.") if answer is None else None


def close(answer, truth: float, rel: float) -> bool:
    """``answer`` is a number within ``rel`` (relative) of ``truth``."""
    return isinstance(answer, (int, float)) and not isinstance(answer, bool) and math.isclose(answer, truth, rel_tol=rel)


def direction(answer, truth) -> str:
    return "너무 큽니다" if answer > truth else "너무 작습니다"


# --- code exercises: the learner's function or config runs on smoke-sized inputs, and the check says what is wrong


def tiny_llama(vocab_size: int = 512, seed: int = 0):
    """A tiny Llama with random weights (seconds on a CPU), for checks that train, load or merge."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    return AutoModelForCausalLM.from_config(config)


def run_learner_code(function, *args):
    """(what ``function(*args)`` returned, None), or (None, the exception) when it raised."""
    try:
        return function(*args), None
    except Exception as err:  # the learner's code: any error is a hint, not a crash of the notebook
        return None, err


def code_error(err: Exception) -> Verdict:
    """아직 with the error the learner's code raised."""
    return not_yet(f"코드가 오류를 냈습니다: {type(err).__name__}: {err}")


def not_callable(answer, what: str) -> Verdict | None:
    """아직 when ``answer`` is not a function, else None."""
    return None if callable(answer) else not_yet(f"{what}을(를) 함수로 정의해 넣으세요 (def … 한 뒤 그 이름).")


PROBE_IDS = [[1, 17, 42, 99, 7, 256, 3, 480]]  # one fixed input for comparing models' logits


def logits_of(model):
    """The model's logits on PROBE_IDS (no gradients), on the CPU in fp32."""
    import torch

    with torch.no_grad():
        return model(input_ids=torch.tensor(PROBE_IDS, device=model.device)).logits.float().cpu()


def same_model(logits, truth, base) -> bool:
    """``logits`` are the adapter model's, up to the rounding of a 16-bit or 4-bit load: far closer to ``truth``
    than the base's are (a tenth of the adapter's own effect), so fp16, bf16 or nf4 loads pass, a missing or
    another adapter does not."""
    effect = (truth - base).abs().max().item()
    return (logits.float() - truth).abs().max().item() < 0.1 * effect


def saved_base_and_adapter(folder):
    """A tiny base saved with ``save_pretrained`` and a LoRA adapter on it with nonzero B (one that changes the
    output, as a trained one does), saved too. Returns (base_dir, adapter_dir)."""
    from pathlib import Path

    import torch
    from peft import LoraConfig, get_peft_model

    base_dir, adapter_dir = Path(folder) / "base", Path(folder) / "adapter"
    tiny_llama().save_pretrained(base_dir)
    model = get_peft_model(tiny_llama(), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                    lora_dropout=0.0, task_type="CAUSAL_LM"))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    model.peft_config["default"].base_model_name_or_path = str(base_dir)
    model.save_pretrained(adapter_dir)
    return base_dir, adapter_dir


def adapter_on_base(folder):
    """``saved_base_and_adapter`` read back the reference way: (base_dir, adapter_dir, the base's logits, the
    ``PeftModel`` of base + adapter, its logits). What checks 06 and 07 compare the learner's model with."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base_dir, adapter_dir = saved_base_and_adapter(folder)
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    base_logits = logits_of(base)
    model = PeftModel.from_pretrained(base, adapter_dir)
    return base_dir, adapter_dir, base_logits, model, logits_of(model)


def quiet_progress(check):
    """Run ``check()`` with transformers' progress bars and Python warnings off, then put back what the notebook
    had: the bars' setting, transformers' log level and the random states of random, numpy and torch (the checks'
    tiny models seed them, and a Trainer seeds all of them). The check's own tiny models save, load and train
    there; the verdict is what the learner reads."""
    import random
    import warnings

    import numpy as np
    import torch
    from transformers.utils import logging

    bars, verbosity = logging.is_progress_bar_enabled(), logging.get_verbosity()
    python_state, numpy_state = random.getstate(), np.random.get_state()
    logging.disable_progress_bar()
    try:
        with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
            warnings.simplefilter("ignore")
            return check()
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()

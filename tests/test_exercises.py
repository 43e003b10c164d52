"""Exercise checks: right answers pass (the solution notebooks show that for every exercise); here,
unanswered and wrong answers get '아직' with a reason, and the reason does not give the number away."""
from __future__ import annotations

import dataclasses
import math

import pytest

from course_utils.exercises import lora_config, quantization, training, vram_budgeting
from course_utils.models import count_params, meta_model
from course_utils.units import MIB


@pytest.mark.parametrize("check", [vram_budgeting.check_01_basic, vram_budgeting.check_01_applied,
                                   vram_budgeting.check_01_challenge, quantization.check_02_basic,
                                   quantization.check_02_applied, quantization.check_02_challenge,
                                   lora_config.check_03_applied, lora_config.check_03_challenge])
def test_unanswered_is_not_yet_and_not_an_error(check, capsys):
    verdict = check(None)
    assert not verdict and verdict.message.startswith("아직")
    assert "answer에 답을 넣고" in capsys.readouterr().out


def test_a_wrong_answer_says_why_without_the_number():
    truth = count_params(meta_model("gpt2")).total * 2 / MIB
    assert vram_budgeting.check_01_basic(truth)
    doubled = vram_budgeting.check_01_basic(truth * 2)  # fp32 bytes instead of fp16
    assert not doubled and "fp16은 값 하나에 2바이트" in doubled.message
    assert f"{truth:.1f}" not in doubled.message
    far = vram_budgeting.check_01_basic(truth * 10)
    assert not far and "너무 큽니다" in far.message


def test_batch_size_challenge_explains_overflow_and_headroom():
    over = vram_budgeting.check_01_challenge(64)
    assert not over and "8 GiB를 넘습니다" in over.message
    small = vram_budgeting.check_01_challenge(1)
    assert small.ok or "더 키울 수 있습니다" in small.message


def test_target_module_exercise_names_what_is_wrong():
    assert lora_config.check_03_applied(["query_key_value", "dense"])
    missing = lora_config.check_03_applied(["query_key_value"])
    assert not missing and "빠진 attention 층" in missing.message
    extra = lora_config.check_03_applied(["query_key_value", "dense", "dense_h_to_4h"])
    assert not extra and "attention이 아닌 이름" in extra.message


def test_attention_only_count_is_recognized_as_a_common_mistake():
    from course_utils.lora import lora_param_count

    v = lora_config.check_03_challenge(lora_param_count("smollm2-135m-instruct", 8, "attention"))
    assert not v and "MLP" in v.message


def test_training_checks_use_the_adapter_metadata():
    from course_utils.profiles import get_profile

    profile = get_profile("smoke")
    meta = {"train_records": 16, "heldout_loss_after": 1.5, "tokens_per_second": 100.0}
    assert training.check_05_basic(8, profile, meta)  # 16 records / (batch 1 x accum 2)
    assert not training.check_05_basic(16, profile, meta)
    assert training.check_05_applied(math.exp(1.5), meta)
    assert not training.check_05_basic(None, profile, meta)
    assert not training.check_05_challenge(None, profile, meta, None)
    stale = training.check_05_basic(8, profile, {"heldout_loss_after": 1.5})
    assert not stale and "05를 처음부터 다시 실행" in stale.message
    # packed rows: the Trainer's epoch is over rows, not records (cpu: 1,436 records in 567 rows)
    packed = dataclasses.replace(profile, train=dataclasses.replace(profile.train, packing=True))
    assert training.check_05_basic(3, packed, {**meta, "train_rows": 6})  # 6 rows / (1 x 2)
    wrong = training.check_05_basic(8, packed, {**meta, "train_rows": 6})
    assert not wrong and "행을 세세요" in wrong.message
    assert "05를 처음부터 다시 실행" in training.check_05_basic(3, packed, meta).message  # no train_rows: stale


# --- the six exercises whose answer is code (issue 42): the checker runs it; each rejects a wrong answer


def test_lora_config_code_exercise_applies_the_config_and_names_what_is_wrong():
    from peft import LoraConfig

    from course_utils.exercises.lora_config import check_03_code

    right = dict(r=8, lora_alpha=16, lora_dropout=0.05, task_type="CAUSAL_LM")
    assert check_03_code(LoraConfig(target_modules=["q_proj", "k_proj", "v_proj", "dense"], **right))
    llama_names = check_03_code(LoraConfig(target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], **right))
    assert not llama_names and "붙지 않은 attention 선형층이 1종류" in llama_names.message
    assert "dense" not in llama_names.message  # the hint does not give the name away
    everything = check_03_code(LoraConfig(target_modules="all-linear", r=8, lora_alpha=8, lora_dropout=0.05))
    assert not everything and all(s in everything.message for s in ("MLP", "lora_alpha", "task_type"))
    absent = check_03_code(LoraConfig(target_modules=["query_key_value"], **right))
    assert not absent and "없는 이름" in absent.message
    assert not check_03_code({"r": 8})


def test_collator_code_exercise_matches_transformers_and_catches_padding_mistakes():
    import torch
    from transformers import DataCollatorForSeq2Seq

    from course_utils.exercises.koalpaca_formatting import check_04_code, collate_features
    from course_utils.loading import load_tokenizer

    tok = load_tokenizer("smollm2-135m-instruct")

    def right(features, label_pad=-100, left=False):
        longest = max(len(f["input_ids"]) for f in features)
        rows = {"input_ids": [], "attention_mask": [], "labels": []}
        for f in features:
            pad = longest - len(f["input_ids"])
            for key, fill in (("input_ids", tok.pad_token_id), ("attention_mask", 0), ("labels", label_pad)):
                rows[key].append([fill] * pad + f[key] if left else f[key] + [fill] * pad)
        return {k: torch.tensor(v, dtype=torch.long) for k, v in rows.items()}

    tok.padding_side = "right"
    library = DataCollatorForSeq2Seq(tok, label_pad_token_id=-100)(collate_features(tok))
    mine = right(collate_features(tok))
    assert all(torch.equal(library[k], mine[k]) for k in mine)  # the rule the check applies is transformers'
    assert check_04_code(right, tok)
    pad_labels = check_04_code(lambda f: right(f, label_pad=tok.pad_token_id), tok)
    assert not pad_labels and "-100이 아닙니다" in pad_labels.message
    left = check_04_code(lambda f: right(f, left=True), tok)
    assert not left and "오른쪽" in left.message
    as_lists = check_04_code(lambda f: {k: v.tolist() for k, v in right(f).items()}, tok)
    assert not as_lists and "torch.long" in as_lists.message
    crashed = check_04_code(lambda f: f[5], tok)
    assert not crashed and "IndexError" in crashed.message
    assert not check_04_code(None, tok) and not check_04_code("collate", tok)


def test_resume_code_exercise_tells_a_restart_from_a_resume():
    from course_utils.exercises.training import check_05_code

    assert check_05_code(lambda trainer: trainer.train(resume_from_checkpoint=True))
    restarted = check_05_code(lambda trainer: trainer.train())
    assert not restarted and "처음부터 다시" in restarted.message
    silent = check_05_code(lambda trainer: (trainer.train(resume_from_checkpoint=True), None)[1])
    assert not silent and "return" in silent.message
    assert not check_05_code(lambda trainer: None)


def test_adapter_loading_code_exercise_compares_logits_with_the_saved_adapter():
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    from course_utils.exercises.inference import check_06_code

    assert check_06_code(lambda base, adapter: PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base),
                                                                         adapter))
    bare = check_06_code(lambda base, adapter: AutoModelForCausalLM.from_pretrained(base))
    assert not bare and "얹히지 않았습니다" in bare.message
    fresh = check_06_code(lambda base, adapter: get_peft_model(AutoModelForCausalLM.from_pretrained(base), LoraConfig(
        r=4, target_modules=["q_proj"], init_lora_weights=False)))
    assert not fresh and "새로 만든 어댑터" in fresh.message
    trainable = check_06_code(lambda base, adapter: PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(base), adapter, is_trainable=True))
    assert not trainable and "is_trainable" in trainable.message


def test_merge_and_save_code_exercise_reads_the_folder_without_peft():
    from course_utils.exercises.merging import check_07_code

    assert check_07_code(lambda model, out: model.merge_and_unload().save_pretrained(out))
    adapter_only = check_07_code(lambda model, out: model.save_pretrained(out))
    assert not adapter_only and "어댑터만" in adapter_only.message
    wrapped = check_07_code(lambda model, out: model.get_base_model().save_pretrained(out))
    assert not wrapped and "LoRA 행렬" in wrapped.message
    unloaded = check_07_code(lambda model, out: model.unload().save_pretrained(out))
    assert not unloaded and "더해지지 않았습니다" in unloaded.message


def test_dpo_config_code_exercise_trains_one_step_and_explains_the_bf16_default():
    from trl import DPOConfig

    from course_utils.exercises.preference import CODE_10, check_10_code
    from course_utils.loading import load_tokenizer
    from course_utils.profiles import get_profile

    gpu8gb = get_profile("gpu8gb")
    assert CODE_10 == {"beta": gpu8gb.preference.beta, "learning_rate": gpu8gb.preference.learning_rate,
                       "max_length": gpu8gb.preference.max_length, "per_device_train_batch_size": 1,
                       "gradient_accumulation_steps": gpu8gb.batch_size * gpu8gb.grad_accum,
                       "max_steps": gpu8gb.preference.steps}
    tok = load_tokenizer("smollm2-135m-instruct")
    right = check_10_code(lambda out: DPOConfig(output_dir=out, use_cpu=True, **CODE_10), tok)
    assert right and "0.6931" in right.message and "'ref'" in right.message
    no_cpu = check_10_code(lambda out: DPOConfig(output_dir=out, **CODE_10), tok)
    assert not no_cpu and "bf16=True가 기본값" in no_cpu.message
    hot = check_10_code(lambda out: DPOConfig(output_dir=out, use_cpu=True, **{**CODE_10, "learning_rate": 5e-4}), tok)
    assert not hot and "learning_rate" in hot.message and "5e-05" not in hot.message
    assert not check_10_code(lambda out: {"beta": 0.1}, tok)


def test_six_lessons_ask_for_code_and_their_solutions_pass_the_check():
    """Issue 42: 03, 04, 05, 06, 07 and 10 each end with an exercise whose answer is code, run by its check; the
    lesson leaves it unanswered (None), the solutions notebook writes the code and asserts the check passes."""
    import re
    from pathlib import Path

    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    for number in ("03", "04", "05", "06", "07", "10"):
        lesson = next(notebooks.glob(f"{number}_*.py")).read_text(encoding="utf-8")
        solution = (notebooks / "solutions" / f"{number}_solutions.py").read_text(encoding="utf-8")
        assert "### 코드로 쓰기" in lesson and "### 코드로 쓰기" in solution, number
        call = re.search(rf"\n(\w+) = None  # (?:your function|LoraConfig\(\.\.\.\))\ncheck_{number}_code\(\1", lesson)
        assert call, f"{number}: the lesson's code exercise leaves its answer None and hands it to check_{number}_code"
        assert re.search(rf"\nassert check_{number}_code\(", solution), number


def test_the_library_collator_passes_the_collator_exercise():
    """DataCollatorForSeq2Seq returns a BatchEncoding (a Mapping, not a dict): the lesson's own call must pass."""
    from transformers import DataCollatorForSeq2Seq

    from course_utils.exercises.koalpaca_formatting import check_04_code
    from course_utils.loading import load_tokenizer

    tok = load_tokenizer("smollm2-135m-instruct")
    tok.padding_side = "right"
    assert check_04_code(DataCollatorForSeq2Seq(tok, label_pad_token_id=-100), tok)


def test_a_check_leaves_the_notebooks_random_state_progress_bars_and_log_level_as_they_were():
    import random

    import numpy as np
    import torch
    from transformers.utils import logging

    from course_utils.exercises.training import check_05_code

    logging.disable_progress_bar()
    logging.set_verbosity_warning()
    random.seed(7), np.random.seed(7), torch.manual_seed(7)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(7), np.random.seed(7), torch.manual_seed(7)
    assert check_05_code(lambda trainer: trainer.train(resume_from_checkpoint=True))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    assert not logging.is_progress_bar_enabled() and logging.get_verbosity() == logging.WARNING
    logging.enable_progress_bar()


def test_a_16_bit_load_of_the_adapter_passes_and_a_partial_lora_config_does_not():
    import torch
    from peft import LoraConfig, PeftModel
    from transformers import AutoModelForCausalLM

    from course_utils.exercises.inference import check_06_code
    from course_utils.exercises.lora_config import check_03_code

    assert check_06_code(lambda base, adapter: PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16), adapter))  # as a GPU learner loads it
    right = dict(r=8, lora_alpha=16, lora_dropout=0.05, task_type="CAUSAL_LM",
                 target_modules=["q_proj", "k_proj", "v_proj", "dense"])
    half = check_03_code(LoraConfig(**right, layers_to_transform=[0]))
    assert not half and "일부 층" in half.message
    patterned = check_03_code(LoraConfig(**right, rank_pattern={"dense": 4}))
    assert not patterned and "rank_pattern" in patterned.message

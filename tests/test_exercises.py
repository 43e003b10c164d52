"""Exercise checks: right answers pass (the solution notebooks show that for every exercise); here,
unanswered and wrong answers get '아직' with a reason, and the reason does not give the number away."""
from __future__ import annotations

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

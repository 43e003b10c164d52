"""Measuring memory on this machine: weights as stored, no deprecated calls while measuring, peak memory."""
import logging
import warnings

import pytest
import torch
from conftest import tiny_model

from course_utils.lora import attach_lora
from course_utils.memory import peak_memory_bytes
from course_utils.profiles import LoraSettings
from course_utils.vram_measure import measure_training_memory, model_footprint


def test_footprint_counts_packed_weights(tmp_path):
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    model = tiny_model("tinyllama-1.1b")
    model.save_pretrained(tmp_path / "m")
    q = AutoModelForCausalLM.from_pretrained(tmp_path / "m", quantization_config=BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32))
    full, small = model_footprint(model), model_footprint(q)
    linear = sum(m.weight.numel() for n, m in model.named_modules()
                 if isinstance(m, torch.nn.Linear) and "lm_head" not in n)
    assert full - small == pytest.approx(linear * 3.5, rel=0.05)  # 4 B -> ~0.5 B per linear weight


def test_course_utils_uses_no_deprecated_api(caplog):
    """Our own calls must not trigger deprecation warnings (e.g. gradient_checkpointing_* in transformers 5)."""
    model = attach_lora(tiny_model("tinyllama-1.1b"), LoraSettings(8, 16, 0.05, "attention"))
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        measure_training_memory(model, 32, 1, gradient_checkpointing=True)
        measure_training_memory(model, 32, 1, gradient_checkpointing=False)
    deprecations = [str(w.message) for w in caught if issubclass(w.category, (DeprecationWarning, FutureWarning))]
    deprecations += [r.getMessage() for r in caplog.records if "deprecat" in r.getMessage().lower()]
    assert deprecations == []


def test_peak_memory_is_at_least_what_this_process_holds():
    import psutil

    held = torch.ones(64 * 1024**2 // 4)  # 64 MiB
    assert peak_memory_bytes() >= psutil.Process().memory_info().rss - 1024**2 >= held.nbytes


def test_footprint_by_role_adds_up_and_moves_only_the_linear_layers_to_4bit(tmp_path):
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from course_utils.vram_measure import footprint_by_role

    model = tiny_model("tinyllama-1.1b")
    model.save_pretrained(tmp_path / "m")
    q = AutoModelForCausalLM.from_pretrained(tmp_path / "m", dtype=torch.float32, quantization_config=BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32))
    full, small = footprint_by_role(model), footprint_by_role(q)
    assert sum(full.values()) == model_footprint(model) and sum(small.values()) == model_footprint(q)
    assert full["embedding + output layer"] == small["embedding + output layer"] == 2 * 1000 * 64 * 4  # untied, fp32
    assert small["linear layers"] < full["linear layers"] / 6  # 4 B -> ~0.5 B per value
    assert full["other"] == small["other"]

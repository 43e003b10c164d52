"""Shared fixtures: tiny random models built from config objects (no download, no weights)."""
from __future__ import annotations

import dataclasses
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from course_utils.models import MODELS, build_config  # noqa: E402

TINY = {
    "gpt2": dict(vocab_size=1000, n_embd=64, n_layer=2, n_head=4, n_positions=256,
                 bos_token_id=0, eos_token_id=0),
    "tinyllama-1.1b": dict(vocab_size=1000, hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                           num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=512,
                           tie_word_embeddings=False),
    "phi-2": dict(vocab_size=1000, hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=4, partial_rotary_factor=0.4,
                  tie_word_embeddings=False),
}


def tiny_spec(key: str):
    """A registry spec with the same architecture family and tiny numbers."""
    return dataclasses.replace(MODELS[key], config=TINY[key])


def tiny_model(key: str, seed: int = 0):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(build_config(tiny_spec(key)))


def randomize_lora_b(model, seed: int, std: float):
    """Give every LoRA B matrix random values, so the adapter changes the output (B starts at 0)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, std)
    return model


@pytest.fixture
def course_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2-135M (fp32), from the course cache (converted once per cache)."""
    from course_utils.loading import load_model

    return load_model("smollm2-135m-instruct")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Mark a test that failed in its call phase (the browser test takes a screenshot then)."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        item.failed = True

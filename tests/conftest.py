"""Shared fixtures: tiny random models built from config objects (no download, no weights)."""
from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from course_utils.models import build_config, tiny_spec  # noqa: E402,F401  (tests import tiny_spec from here)


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


def tiny_nf4_models(folder, seed: int = 0):
    """(nf4 model, fp32 model with the nf4 model's de-quantized weights) of one tiny random Llama.

    Loaded the course's way (``standard_4bit_path``), compute dtype fp32. The projections are 32 wide or
    more (bitsandbytes' CPU packing needs a multiple of 32 output features; narrower ones crash it).
    """
    import copy

    from transformers import AutoModelForCausalLM, BitsAndBytesConfig, LlamaConfig

    from course_utils.quantization import standard_4bit_path

    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(LlamaConfig(
        vocab_size=1000, hidden_size=64, intermediate_size=192, num_hidden_layers=2, num_attention_heads=8,
        num_key_value_heads=4, max_position_embeddings=512, tie_word_embeddings=False)).save_pretrained(folder)
    nf4 = standard_4bit_path(AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, quantization_config=(
        BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                           bnb_4bit_compute_dtype=torch.float32))))
    return nf4, copy.deepcopy(nf4).dequantize()


GRADIENT_NOISE_FLOOR = 1e-6  # relative to the largest gradient norm of the same model (fp32 rounding is ~1e-7)


def gradient_mismatches(got: dict, want: dict, rel: float = 2e-2, floor: float = GRADIENT_NOISE_FLOOR) -> list[str]:
    """Names (with the numbers) of the gradients in ``got`` that differ from ``want``; empty when they all agree.

    A gradient is compared relatively (``|got - want| / |want| < rel``) when its norm is above the noise floor,
    ``floor`` times the largest gradient norm in ``want``. Below it, the reference is rounding noise: a gradient
    that is zero in exact arithmetic (a single token's query projection: softmax over one key) comes out as
    ~1e-11 on one CPU and ~1e-12 on another, so comparing it relatively compares noise with noise. There the test
    asks only that ``got`` stays below the floor too: a real error (a dropped or doubled term) is far above it.
    """
    if got.keys() != want.keys():
        return [f"different gradients: only in got {sorted(got.keys() - want.keys())}, "
                f"only in want {sorted(want.keys() - got.keys())}"]
    scale = max(float(g.norm()) for g in want.values())
    noise = floor * scale
    bad = []
    for name, g in want.items():
        ref, diff = float(g.norm()), float((got[name] - g).norm())
        if ref > noise:
            if diff / ref >= rel:
                bad.append(f"{name}: relative error {diff / ref:.3g} (norm {ref:.3g})")
        elif float(got[name].norm()) > noise:
            bad.append(f"{name}: reference {ref:.3g} is below the noise floor {noise:.3g}, got {float(got[name].norm()):.3g}")
    return bad


# The smoke profile's model and size, but fp32 LoRA at batch 2 for 4 steps on the bundled set: for tests of files,
# processes, reports and scripts, where gpu8gb's recipe (nf4, accumulation, checkpointing) costs minutes and adds
# nothing to what they check. The recipe itself runs in every notebook under nbval (smoke) and in test_train.py's
# recipe tests.
FAST = {"quantization": "none", "batch_size": 2, "grad_accum": 1, "gradient_checkpointing": False,
        "optimizer": "adamw_torch", "data": {"source": "bundled"}, "train": {"max_steps": 4, "epochs": None}}


def fast_raw(**train) -> dict:
    """The course's profiles as YAML data, with smoke made fast (``FAST``) and ``train`` settings changed."""
    import yaml

    from course_utils.profiles import PROFILES_FILE

    raw = yaml.safe_load(PROFILES_FILE.read_text(encoding="utf-8"))
    smoke = raw["smoke"]
    for key, value in FAST.items():
        smoke[key].update(value) if isinstance(value, dict) else smoke.__setitem__(key, value)
    smoke.pop("stands_in_for")
    smoke.pop("swaps")
    smoke["train"].update(train)
    return raw


def fast_smoke(**train):
    """The fast smoke profile (``FAST``) as a Profile, named smoke."""
    from course_utils.profiles import parse_profile

    return parse_profile("smoke", fast_raw(**train)["smoke"], "tests/conftest.py")


def smoke_profiles(folder, **train):
    """A profiles file (for ``--profiles``) whose smoke profile is the fast one scored on 2 held-out records instead of
    4, with ``train`` settings changed: for tests about processes and files, where each run evaluates several times."""
    import yaml

    path = folder / "profiles.yaml"
    path.write_text(yaml.safe_dump(fast_raw(**{"heldout_records": 2, **train}), allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def course_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2-135M (fp32), from the course cache (converted once per cache)."""
    from course_utils.loading import load_model

    return load_model("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def merged_smollm2(tmp_path_factory):
    """A merged SmolLM2 (an adapter with random B merged in), saved the course's way (chat template, generation
    config): what notebook 07 hands to notebook 08."""
    from course_utils.loading import load_model, load_tokenizer
    from course_utils.lora import attach_lora
    from course_utils.merge import save_merged
    from course_utils.profiles import LoraSettings

    model = randomize_lora_b(attach_lora(load_model("smollm2-135m-instruct"), LoraSettings(8, 16, 0.0, "attention")),
                             3, 0.02)
    return save_merged(model.merge_and_unload(), load_tokenizer("smollm2-135m-instruct"),
                       tmp_path_factory.mktemp("merged") / "smollm2", base_model="smollm2-135m-instruct")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Mark a test that failed in its call phase (the browser test takes a screenshot then)."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        item.failed = True

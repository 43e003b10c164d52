"""Shared fixtures: tiny random models built from config objects (no download, no weights)."""
from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from course_utils.models import build_config, tiny_spec  # noqa: E402,F401  (tests import tiny_spec from here)


@pytest.fixture(scope="session", autouse=True)
def _libraries_frozen_out_of_the_collector():
    """The libraries' import-time objects (about half a million: functions, types, dicts) are never garbage, yet a full
    collection walked them all in every ``memory.free()``: 0.27 s a call, 4 % of test_train.py's and test_merge.py's
    time (measured 2026-12-07). ``gc.freeze()`` moves what is alive now, before any test makes a model, out of the
    collector's sight; what tests create later is collected as before (``residency.live_models`` still sees it)."""
    import gc

    import peft  # noqa: F401
    import transformers.trainer  # noqa: F401
    import trl  # noqa: F401

    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


@torch.no_grad()
def batch_logits(model, examples: list[dict], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits of every position as fp32, attention mask) for a padded batch of encoded examples: the full logits the
    course's ``loss.answer_logits`` keeps the answer positions of, for tests that compare whole outputs."""
    from course_utils.prompts import collate

    batch = collate(examples, pad)
    device = next(model.parameters()).device
    model.eval()
    out = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device))
    return out.logits.float().cpu(), batch["attention_mask"]


def max_logit_diff(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """Largest |a - b| over the real (non-pad) positions of two ``batch_logits``."""
    keep = mask.bool()
    return (a[keep] - b[keep]).abs().max().item()


def tiny_model(key: str, seed: int = 0):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(build_config(tiny_spec(key)))


def tiny_lora():
    """A tiny random Llama with SmolLM2's tokenizer (so Korean prompts encode as they do for the course's models) and a
    zero-B LoRA adapter on its attention: the adapter off and on give the same model until ``randomize_lora_b``."""
    import dataclasses

    from transformers import AutoModelForCausalLM

    from course_utils.loading import load_tokenizer
    from course_utils.lora import attach_lora
    from course_utils.profiles import LoraSettings

    tok = load_tokenizer("smollm2-135m-instruct")
    spec = tiny_spec("tinyllama-1.1b")
    torch.manual_seed(0)
    tiny = AutoModelForCausalLM.from_config(build_config(dataclasses.replace(spec, config={**spec.config,
                                                                                             "vocab_size": len(tok)})))
    return attach_lora(tiny, LoraSettings(r=4, alpha=8, dropout=0.0, targets="attention")), tok


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
def gemma_spm() -> bytes:
    """The SentencePiece model rebuilt from Gemma's GGUF (``gguf.sentencepiece_model_from_gguf``), once per session:
    it parses the 262,144-token header (22-28 s here). tests/test_deploy.py checks it; test_merge.py's Gemma merge
    writes it."""
    from course_utils.gguf import gguf_path, sentencepiece_model_from_gguf

    return sentencepiece_model_from_gguf(gguf_path("gemma-3-270m"))


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


NOTEBOOK_SOURCES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "notebooks")


def lesson_cells(notebook: str, *markers: str) -> list[str]:
    """The code cells of ``notebooks/<notebook>`` (the paired jupytext .py) that contain one of ``markers``, in order;
    each marker must match exactly one cell."""
    from pathlib import Path

    text = (Path(NOTEBOOK_SOURCES) / notebook).read_text(encoding="utf-8")
    cells, current = [], None
    for line in text.splitlines():
        if line.startswith("# %%"):
            if current is not None:
                cells.append("\n".join(current))
            current = None if "[markdown]" in line else []
        elif current is not None:
            current.append(line)
    if current is not None:
        cells.append("\n".join(current))
    chosen = []
    for marker in markers:
        found = [c for c in cells if marker in c]
        assert len(found) == 1, f"{notebook}: {len(found)} code cells contain {marker!r}"
        chosen.append(found[0])
    return sorted(chosen, key=cells.index)


@pytest.fixture
def fake_cuda(monkeypatch):
    """torch reports one CUDA card of 8 GiB (an RTX 3070) with bf16, on this CPU: for the code that only reads what the
    card says (memory figures, dtype checks). Tensors still live on the CPU: code that would put one on the GPU is
    tested otherwise (the meta device, ``tests/test_cuda_branches.py``). ``fake_cuda.stats`` holds the numbers the memory
    functions return; change them in a test."""
    from types import SimpleNamespace

    # bitsandbytes' CUDA backend registers its ops when transformers' Trainer is first imported and reads the real
    # CUDA runtime then: import it before torch says a card is there, so a test's result does not depend on order
    import transformers.trainer  # noqa: F401

    gib = 1024**3
    stats = SimpleNamespace(total=8 * gib, free=6 * gib, reserved=int(1.25 * gib), allocated=gib,
                            max_reserved=int(3.5 * gib), max_allocated=3 * gib, bf16=True, resets=0)
    cuda = torch.cuda
    monkeypatch.setattr(cuda, "is_available", lambda: True)
    monkeypatch.setattr(cuda, "device_count", lambda: 1)
    monkeypatch.setattr(cuda, "current_device", lambda: 0)
    monkeypatch.setattr(cuda, "synchronize", lambda *a, **k: None)
    monkeypatch.setattr(cuda, "empty_cache", lambda: None)
    monkeypatch.setattr(cuda, "get_device_name", lambda *a: "NVIDIA GeForce RTX 3070 (stand-in)")
    monkeypatch.setattr(cuda, "get_device_capability", lambda *a: (8, 6) if stats.bf16 else (7, 5))
    # as torch: without native bf16 (compute capability < 8.0) it still says True unless emulation is excluded
    monkeypatch.setattr(cuda, "is_bf16_supported", lambda including_emulation=True: stats.bf16 or including_emulation)
    monkeypatch.setattr(cuda, "get_device_properties", lambda *a: SimpleNamespace(
        total_memory=stats.total, name="RTX 3070 (stand-in)", major=8 if stats.bf16 else 7))
    monkeypatch.setattr(cuda, "mem_get_info", lambda *a: (stats.free, stats.total))
    monkeypatch.setattr(cuda, "memory_reserved", lambda *a: stats.reserved)
    monkeypatch.setattr(cuda, "memory_allocated", lambda *a: stats.allocated)
    monkeypatch.setattr(cuda, "max_memory_reserved", lambda *a: stats.max_reserved)
    monkeypatch.setattr(cuda, "max_memory_allocated", lambda *a: stats.max_allocated)

    def reset(*a):
        stats.resets += 1

    monkeypatch.setattr(cuda, "reset_peak_memory_stats", reset)
    return stats


class ForwardReached(Exception):
    """The model's forward pass was called with every input tensor on the model's device (``device_checked``)."""


class DeviceMismatch(AssertionError):
    """The model's forward pass was called with an input tensor on another device than the model's."""


def device_checked(model, device: str = "meta"):
    """``model`` moved to ``device`` (``meta``: no memory, no computation), whose forward pass (and ``generate``) stops at
    once: with
    ``DeviceMismatch`` when an input tensor is elsewhere (what ``cuda:0`` raises as "Expected all tensors to be on the
    same device"), else with ``ForwardReached``. A learner's 4-bit model sits on ``cuda:0`` while a tokenizer's output
    stays on the CPU: on this CPU, ``meta`` plays ``cuda:0``."""
    model.to(device)
    if device == "meta":  # ops whose result size depends on values (nonzero) get a stand-in result on meta
        import torch.fx.experimental._config as fx_config

        fx_config.meta_nonzero_assume_all_nonzero = True

    def check(module, args, kwargs):
        here = next(module.parameters()).device
        wrong = [f"{name}: {t.device}" for name, t in [*enumerate(args), *kwargs.items()]
                 if isinstance(t, torch.Tensor) and t.device != here]
        if wrong:
            raise DeviceMismatch(f"the model is on {here}, its inputs on {', '.join(wrong)}")
        raise ForwardReached(str(here))

    model.register_forward_pre_hook(check, with_kwargs=True)
    # generate() prepares its loop with values (.item()) before the first forward: check its inputs where it starts
    model.generate = lambda *args, **kwargs: check(model, args, kwargs)
    return model

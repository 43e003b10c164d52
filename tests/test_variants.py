"""LoRA variants (course_utils.variants): what each does at initialization, what peft 0.21 / bitsandbytes 0.50 do on a
4-bit base on the CPU (reproductions), and that every variant trains on smoke and merges within the merge tolerance."""
import copy

import pytest
import torch
from conftest import fast_raw, tiny_model, tiny_nf4_models

from course_utils.lora import attach_lora
from course_utils.profiles import LoraSettings, ProfileError, get_profile, parse_profile
from course_utils.variants import (
    VARIANTS,
    loftq_init,
    lora_layers,
    nf4_roundtrip,
    reconstruction,
    variant_kwargs,
    variant_problem,
    variants_for,
)


def _logits(model, ids):
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids).logits


def _originals(model):
    return {n: m.weight.detach().float().clone() for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}


def test_variant_problems_name_the_setting_and_the_fix():
    assert variant_kwargs("dora") == {"use_dora": True} and variant_kwargs("pissa") == {"init_lora_weights": "pissa"}
    with pytest.raises(ValueError, match="lora.variant='qlora' is not valid. Choose one of: lora, rslora"):
        variant_kwargs("qlora")
    assert "quantization=none" in variant_problem("pissa", "nf4") and "loftq" in variant_problem("olora", "nf4")
    assert "quantization=nf4" in variant_problem("loftq", "none")
    assert variants_for("none") == ("lora", "rslora", "dora", "pissa", "olora")
    assert variants_for("nf4") == ("lora", "rslora", "dora", "loftq")
    with pytest.raises(ProfileError, match=r"smoke.*lora.variant=pissa needs a full-precision base"):
        from course_utils.overrides import with_overrides

        with_overrides(get_profile("smoke"), [("lora.variant", "pissa")])


@pytest.mark.parametrize("variant", ["lora", "rslora", "dora"])
def test_variants_with_b_zero_leave_the_model_unchanged(variant):
    base = tiny_model("tinyllama-1.1b")
    ids = torch.randint(0, 500, (2, 12))
    before = _logits(base, ids)
    model = attach_lora(copy.deepcopy(base), LoraSettings(8, 16, 0.0, "attention", variant))
    assert (_logits(model, ids) - before).abs().max().item() <= (1e-6 if variant == "dora" else 0.0)
    extra = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and "magnitude" in n)
    assert (extra > 0) == (variant == "dora")  # DoRA trains one magnitude per output feature too


@pytest.mark.parametrize("variant", ["pissa", "olora"])
def test_pissa_and_olora_change_the_base_and_residual_plus_adapter_reproduce_it(variant):
    base = tiny_model("tinyllama-1.1b")
    originals = _originals(base)
    ids = torch.randint(0, 500, (2, 12))
    before = _logits(base, ids)
    model = attach_lora(copy.deepcopy(base), LoraSettings(8, 16, 0.0, "attention", variant))
    rec = reconstruction(model, originals)
    assert rec["relative_error_base_only"] > 0.1  # the base weights were changed ...
    assert rec["max_abs"] < 1e-5  # ... and residual + s B A gives them back (weights of std ~0.02)
    assert (_logits(model, ids) - before).abs().max().item() < 1e-4


def test_course_loftq_fits_the_quantization_error_as_well_as_rank_r_can(tmp_path):
    nf4, dequantized = tiny_nf4_models(tmp_path / "m")
    from transformers import AutoModelForCausalLM

    originals = _originals(AutoModelForCausalLM.from_pretrained(tmp_path / "m", dtype=torch.float32))
    model = attach_lora(nf4, LoraSettings(8, 16, 0.0, "attention"))
    assert reconstruction(model, originals)["relative_error"] == pytest.approx(
        reconstruction(model, originals)["relative_error_base_only"])  # B = 0: Q(W) alone
    loftq_init(model, originals)
    rec = reconstruction(model, originals)
    for name, layer in lora_layers(model):  # Eckart-Young: the best rank-r fit leaves the tail singular values
        residual = originals[name] - dequantized.get_submodule(name).weight.float()
        tail = torch.linalg.svdvals(residual)[layer.r["default"]:].pow(2).sum().sqrt()
        got = (residual - layer.scaling["default"] * layer.lora_B["default"].weight @ layer.lora_A["default"].weight)
        assert got.norm().item() == pytest.approx(tail.item(), rel=1e-4)
    assert rec["relative_error"] < rec["relative_error_base_only"]


def test_nf4_roundtrip_matches_a_4bit_layer(tmp_path):
    nf4, dequantized = tiny_nf4_models(tmp_path / "m")
    from transformers import AutoModelForCausalLM

    w = AutoModelForCausalLM.from_pretrained(tmp_path / "m", dtype=torch.float32).model.layers[0].self_attn.q_proj.weight
    loaded = dequantized.model.layers[0].self_attn.q_proj.weight
    # the 4-bit layer also quantizes its block scales (double quantization): a tiny difference, far below a level
    assert (nf4_roundtrip(w) - loaded).abs().max().item() < 0.1 * (w - loaded).abs().max().item()


# ---- what peft does on a 4-bit base on a CPU (peft 0.21.2, bitsandbytes 0.50.2): why variant_problem refuses ----

def test_peft_refuses_pissa_on_a_4bit_base(tmp_path):
    from peft import LoraConfig, get_peft_model

    nf4, _ = tiny_nf4_models(tmp_path / "m")
    with pytest.raises(TypeError, match="initialize PiSSA under float32"):
        get_peft_model(nf4, LoraConfig(r=8, target_modules=["q_proj"], init_lora_weights="pissa"))


def test_peft_olora_on_a_4bit_base_starts_from_a_different_model_without_an_error(tmp_path):
    from peft import LoraConfig, get_peft_model

    nf4, dequantized = tiny_nf4_models(tmp_path / "m")
    ids = torch.randint(0, 500, (2, 12))
    config = LoraConfig(r=8, target_modules=["q_proj", "v_proj"], init_lora_weights="olora")
    changes = {}
    for name, model in (("nf4", nf4), ("fp32", dequantized)):  # the same weights, 4-bit and full precision
        before = _logits(model, ids)
        changes[name] = (_logits(get_peft_model(model, copy.deepcopy(config)), ids) - before).abs().max().item()
    assert changes["fp32"] < 1e-4  # full precision: residual + adapter give the model back
    assert changes["nf4"] > 100 * changes["fp32"]  # 4-bit: a fresh adapter changed the model, and nothing said so


@pytest.mark.skipif(torch.cuda.is_available(), reason="the failure is that of a CPU-only torch")
def test_peft_loftq_needs_cuda(tmp_path):
    from peft import LoftQConfig, LoraConfig, get_peft_model, replace_lora_weights_loftq

    nf4, _ = tiny_nf4_models(tmp_path / "m")
    model = get_peft_model(nf4, LoraConfig(r=8, target_modules=["q_proj"]))
    with pytest.raises(AssertionError, match="Torch not compiled with CUDA enabled"):
        replace_lora_weights_loftq(model, model_path=str(tmp_path / "m" / "model.safetensors"))
    with pytest.raises(AssertionError, match="Torch not compiled with CUDA enabled"):
        get_peft_model(tiny_model("tinyllama-1.1b"), LoraConfig(
            r=8, target_modules=["q_proj"], init_lora_weights="loftq", loftq_config=LoftQConfig(loftq_bits=4)))


# ---- every variant trains a short smoke run and merges ------------------------------------------------------------

@pytest.mark.parametrize("variant,quantization", [("rslora", "nf4"), ("dora", "nf4"), ("loftq", "nf4"),
                                                  ("pissa", "none"), ("olora", "none")])
def test_each_variant_trains_on_smoke_and_merges_within_tolerance(variant, quantization, tmp_path):
    """nf4 (the smoke recipe) where the variant works on 4-bit, full precision where peft needs it (variant_problem).
    The saved adapter, merged into the weights it was trained on, gives the trained model's logits back."""
    from course_utils.merge import load_for_merge
    from course_utils.train import train

    raw = fast_raw(max_steps=2, save_steps=2, eval_steps=2, heldout_records=2)["smoke"]
    raw["quantization"] = quantization
    raw["lora"]["variant"] = variant
    result = train(parse_profile("smoke", raw, "test"), tmp_path / "run", progress=lambda m: None)
    assert result.global_step == 2 and result.heldout_loss_after < result.heldout_loss_before + 0.5
    ids = torch.tensor([[1, 2, 3, 400, 500, 600, 700]])
    trained = _logits(result.model, ids)
    model, _, meta, _ = load_for_merge(result.adapter_dir)
    assert meta["lora_variant"] == variant
    with model.disable_adapter():
        base = _logits(model, ids)  # the weights it is merged into (PiSSA/OLoRA: the original ones)
    merged = _logits(model.merge_and_unload(), ids)
    tolerance = 1e-3  # test_merge's for a full-precision merge
    if quantization == "nf4":  # the trained model computes through 4-bit layers; the merge through fp32 weights
        with result.model.disable_adapter():
            tolerance = max(tolerance, 1.5 * (_logits(result.model, ids) - base).abs().max().item())
    assert (merged - trained).abs().max().item() < tolerance
    assert (trained - base).abs().max().item() > tolerance  # the adapter does change the model

def test_variants_table_covers_every_variant():
    assert set(VARIANTS) == {"lora", "rslora", "dora", "pissa", "olora", "loftq"}


def test_loftqs_original_weights_of_an_offline_model_are_read_without_a_second_model(monkeypatch):
    """09's LoftQ trials needed the original weights beside the training model: at d545876 a second whole fp32 model.
    For the offline models they are now read from the safetensors cache, tensor by tensor."""
    import torch
    from transformers import AutoModelForCausalLM

    from course_utils.loading import load_model
    from course_utils.variants import original_weights

    names = ["model.layers.0.self_attn.q_proj", "model.layers.3.self_attn.o_proj"]
    whole = dict(load_model("smollm2-135m-first-8-layers").named_modules())

    def no_model(*args, **kwargs):
        raise AssertionError("a second model was loaded")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", no_model)
    weights = original_weights("smollm2-135m-first-8-layers", names)
    assert all(torch.equal(weights[n], whole[n].weight.float()) for n in names)

import math

import pytest
import torch
from conftest import tiny_model, tiny_spec
from peft import get_peft_model

from course_utils.lora import lora_config
from course_utils.models import count_params, get_spec, meta_model
from course_utils.profiles import LoraSettings, get_profile
from course_utils.vram import (
    CUDA_CONTEXT_BYTES,
    activation_bytes,
    budget_table,
    estimate_vram,
    layer_saved_values,
    optimizer_state_bytes,
    weight_bytes,
)
from course_utils.vram_measure import measure_training_memory

GPT2_PARAMS = 124_439_808
GPT2_LINEAR = 12 * (768 * 2304 + 768 * 768 + 768 * 3072 + 3072 * 768)


def test_weight_bytes_by_format():
    n = 4096 * 4096
    assert weight_bytes(n, "float32") == (4 * n, 0)
    assert weight_bytes(n, "float16") == (2 * n, 0)
    assert weight_bytes(n, "int8") == (n, 0)
    assert weight_bytes(n, "nf4", double_quant=False) == (n // 2, 4 * n // 64)
    blocks = n // 64
    assert weight_bytes(n, "nf4") == (n // 2, blocks + 4 * (blocks // 256))
    # QLoRA paper: double quantization brings constants from 0.5 to ~0.127 bits per parameter
    assert 8 * weight_bytes(n, "nf4")[1] / n == pytest.approx(0.127, abs=0.001)
    with pytest.raises(ValueError, match="Unknown weight format 'int4'"):
        weight_bytes(10, "int4")


def test_optimizer_bytes_follow_bitsandbytes_rules():
    assert optimizer_state_bytes([100, 5000], "adamw_torch") == 8 * 5100
    # < 4096 values keep fp32 states; otherwise 2 B/value + 2 fp32 absmax per 256-block
    assert optimizer_state_bytes([4095], "paged_adamw_8bit") == 8 * 4095
    assert optimizer_state_bytes([4096], "adamw_8bit") == 2 * 4096 + 8 * 16
    assert optimizer_state_bytes([4097], "adamw_8bit") == 2 * 4097 + 8 * 17
    with pytest.raises(ValueError, match="Unknown optimizer 'sgd'"):
        optimizer_state_bytes([1], "sgd")


def test_gpt2_full_finetuning_is_16_bytes_per_param():
    est = estimate_vram("gpt2", "full", 512, 1, gradient_checkpointing=True, optimizer="adamw_torch")
    t = est.terms
    assert t["weights_linear"] + t["weights_other"] == 4 * GPT2_PARAMS
    assert t["gradients"] == 4 * GPT2_PARAMS
    assert t["optimizer"] == 8 * GPT2_PARAMS
    assert t["logits"] == 512 * 50257 * (2 + 4 + 4)  # fp16 logits, fp32 copy, fp32 log-probs


def test_gpt2_qlora_terms_by_hand():
    est = estimate_vram("gpt2", "qlora", 512, 1, r=8)
    t = est.terms
    assert t["weights_linear"] == GPT2_LINEAR // 2
    constants = 0
    for n in [768 * 2304, 768 * 768, 768 * 3072, 3072 * 768]:
        blocks = math.ceil(n / 64)
        constants += 12 * (blocks + 4 * math.ceil(blocks / 256))
    assert t["quant_constants"] == constants
    # embeddings, norms, biases: fp32, as prepare_model_for_kbit_training leaves them (below); d545876 counted fp16
    assert t["weights_other"] == 4 * (GPT2_PARAMS - GPT2_LINEAR)
    lora = 12 * (8 * (768 + 2304) + 8 * (768 + 768))
    assert t["lora_weights"] == t["gradients"] == 4 * lora
    sizes = [8 * 768, 2304 * 8, 8 * 768, 768 * 8] * 12
    assert t["optimizer"] == optimizer_state_bytes(sizes, "paged_adamw_8bit")


def test_smollm2_activation_terms_by_hand():
    # per token and layer (fp32, CPU, LoRA r=8 dropout 0.05 on q,k,v,o), counted op by op:
    # 2 RMSNorm inputs + rsqrt, 4 x (mask + dropped input) + 4 x r, q/k/v/out + lse, 3 x MLP
    d, ff, q, kv, h, r = 576, 1536, 576, 192, 9, 8
    values = layer_saved_values(get_spec("smollm2-135m-instruct"), "lora", r, 0.05, "attention", "cpu")
    assert values == {"norms": 2 * (d + 1), "lora_masks": 3 * d + q, "lora": 3 * d + q + 4 * r,
                      "attention": 2 * q + 2 * kv + h, "mlp": 3 * ff}
    act = activation_bytes("smollm2-135m-instruct", 128, 1, "lora", 8, 0.05, "attention", False, "float32", "cpu")
    assert act["one_layer"] == 4 * 128 * sum(values.values())
    assert act["layers"] == 30 * act["one_layer"]
    assert act["logits"] == 128 * 49152 * 8
    ckpt = activation_bytes("smollm2-135m-instruct", 128, 1, "lora", 8, 0.05, "attention", True, "float32", "cpu")
    assert ckpt["layers"] == 30 * 576 * 4 * 128 + act["one_layer"]


def test_budget_table_marks_what_fits_8gb():
    rows = {(r["model"], r["method"]): r for r in budget_table()}
    assert len(rows) == 9
    assert not rows[("tinyllama-1.1b", "full")]["fits_8gb"]
    assert not rows[("phi-2", "full")]["fits_8gb"]
    assert rows[("phi-2", "qlora")]["fits_8gb"]
    assert rows[("phi-2", "qlora")]["total_gib"] < rows[("phi-2", "lora")]["total_gib"]


def test_paged_optimizer_pages_nothing_for_lora():
    est = estimate_vram("phi-2", "qlora", 512, 1, 8, optimizer="paged_adamw_8bit")
    assert est.notes == ["paged: nothing is paged, the largest LoRA tensor has 20,480 values (< 100,000)"]


def test_bad_method_names_choices():
    with pytest.raises(ValueError, match="choose 'full', 'lora' or 'qlora'"):
        estimate_vram("gpt2", "qlora4")


@pytest.mark.parametrize("key", ["gpt2", "tinyllama-1.1b", "phi-2"])
@pytest.mark.parametrize("ckpt", [False, True])
def test_activation_estimate_matches_measurement_per_family(key, ckpt):
    base = tiny_model(key)
    model = get_peft_model(base, lora_config(LoraSettings(8, 16, 0.05, "attention"), base))
    meas = measure_training_memory(model, 128, 1, ckpt)
    est = activation_bytes(tiny_spec(key), 128, 1, "lora", 8, 0.05, "attention", ckpt, "float32", "cpu")
    assert est["layers"] + est["outside"] == pytest.approx(meas.activations, rel=0.15)
    assert est["logits"] == meas.logits


@pytest.mark.parametrize("seq_len", [128, 256])
@pytest.mark.parametrize("ckpt", [False, True])
def test_smollm2_estimate_within_15_percent_of_measured(smollm2, seq_len, ckpt):
    profile = get_profile("smoke")
    model = get_peft_model(smollm2, lora_config(profile.lora, smollm2))
    try:
        meas = measure_training_memory(model, seq_len, 1, ckpt)
        est = estimate_vram("smollm2-135m-instruct", "lora", seq_len, 1, 8, "attention", ckpt, "adamw_torch",
                            "float32", 0.05, device="cpu").terms
        assert est["activations"] == pytest.approx(meas.activations, rel=0.15)
        assert est["logits"] == meas.logits
        # exact terms
        assert est["weights_linear"] + est["weights_other"] + est["lora_weights"] == meas.parameters
        assert est["gradients"] == meas.gradients
        assert est["optimizer"] == meas.optimizer
    finally:
        model.unload()


def test_estimator_parameters_name_the_valid_choices():
    from course_utils.vram import estimate_vram

    with pytest.raises(ValueError, match=r"method='qlra': choose 'full', 'lora' or 'qlora'"):
        estimate_vram("gpt2", method="qlra")


def test_qlora_training_keeps_the_unquantized_weights_in_fp32_as_the_estimate_counts(tmp_path):
    """peft's prepare_model_for_kbit_training casts the embedding, output head and norms of an fp16 nf4 model to fp32
    (what the estimator's ``weights_other`` counts under QLoRA; at d545876 it counted them in fp16: 0.25 GiB short for
    TinyLlama)."""
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    tiny_model("tinyllama-1.1b").save_pretrained(tmp_path)
    model = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float16, quantization_config=BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float16))
    assert model.get_input_embeddings().weight.dtype == torch.float16
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    rest = [p for p in model.parameters() if type(p).__name__ != "Params4bit"]
    assert rest and {p.dtype for p in rest} == {torch.float32}
    assert model.get_output_embeddings().weight.dtype == torch.float32
    est = estimate_vram("tinyllama-1.1b", "qlora", 512, 1)
    counts = count_params(meta_model("tinyllama-1.1b"))
    assert est.terms["weights_other"] == 4 * (counts.total - counts.linear)


def test_a_measured_cuda_context_replaces_the_assumed_one():
    assumed = estimate_vram("tinyllama-1.1b", "qlora", 512, 1)
    measured = estimate_vram("tinyllama-1.1b", "qlora", 512, 1, cuda_context=123 * 1024**2)
    assert assumed.terms["cuda_context"] == CUDA_CONTEXT_BYTES
    assert measured.terms["cuda_context"] == 123 * 1024**2
    assert measured.total - assumed.total == 123 * 1024**2 - CUDA_CONTEXT_BYTES
    assert estimate_vram("tinyllama-1.1b", "qlora", 512, 1, device="cpu", cuda_context=5).terms["cuda_context"] == 0

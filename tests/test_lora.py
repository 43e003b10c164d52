import pytest
import torch
from conftest import tiny_model
from transformers import AutoModelForCausalLM, BitsAndBytesConfig

from course_utils.adapter import save_adapter
from course_utils.lora import (
    attach_lora,
    discover_targets,
    lora_config,
    lora_param_count,
    needs_fan_in_fan_out,
    predicted_adapter_bytes,
    trainable_report,
)
from course_utils.models import meta_model
from course_utils.profiles import LoraSettings

SETTINGS = LoraSettings(r=8, alpha=16, dropout=0.05, targets="attention")


@pytest.mark.parametrize("key,attention,all_linear", [
    ("gpt2", ["c_attn", "attn.c_proj"], ["c_attn", "c_proj", "c_fc"]),
    ("tinyllama-1.1b", ["q_proj", "k_proj", "v_proj", "o_proj"],
     ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]),
    ("phi-2", ["q_proj", "k_proj", "v_proj", "dense"], ["q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"]),
])
def test_target_discovery_from_config(key, attention, all_linear):
    model = meta_model(key)
    assert discover_targets(model, "attention") == attention
    assert discover_targets(model, "all-linear") == all_linear


def test_lora_counts_by_hand():
    assert lora_param_count("gpt2", 8) == 12 * (8 * (768 + 3 * 768) + 8 * (768 + 768))
    assert lora_param_count("phi-2", 8) == 32 * 4 * 8 * (2560 + 2560)
    assert lora_param_count("tinyllama-1.1b", 16) == 2 * lora_param_count("tinyllama-1.1b", 8)


def test_fan_in_fan_out_conv1d_vs_linear4bit(tmp_path):
    model = tiny_model("gpt2")
    targets = discover_targets(model, "attention")
    assert needs_fan_in_fan_out(model, targets) is True
    model.save_pretrained(tmp_path / "gpt2-tiny")
    quantized = AutoModelForCausalLM.from_pretrained(
        tmp_path / "gpt2-tiny", dtype=torch.float32,
        quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                               bnb_4bit_compute_dtype=torch.float32))
    kinds = {type(m).__name__ for n, m in quantized.named_modules() if n.endswith("c_attn")}
    assert kinds == {"Linear4bit"}
    assert needs_fan_in_fan_out(quantized, discover_targets(quantized, "attention")) is False
    assert lora_config(SETTINGS, quantized).fan_in_fan_out is False
    assert lora_config(SETTINGS, model).fan_in_fan_out is True


def test_targets_matching_nothing_are_named():
    with pytest.raises(ValueError, match=r"target_modules \['qkv'\] match no linear layer"):
        needs_fan_in_fan_out(meta_model("gpt2"), ["qkv"])


def test_fresh_adapter_changes_nothing_and_file_size_is_predicted(tmp_path):
    base = tiny_model("tinyllama-1.1b")
    ids = torch.randint(0, 1000, (1, 16))
    with torch.no_grad():
        before = base(input_ids=ids).logits
    model = attach_lora(base, SETTINGS)
    model.eval()
    with torch.no_grad():
        after = model(input_ids=ids).logits
    assert (after - before).abs().max().item() == 0.0
    report = trainable_report(model)
    assert report.trainable == 2 * 8 * ((64 + 64) + 2 * (64 + 16) + (64 + 64))
    out = save_adapter(model, tmp_path / "adapter")
    save_adapter(model, tmp_path / "adapter")  # re-running replaces cleanly
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "adapter_config.json", "adapter_model.safetensors"]
    size = (out / "adapter_model.safetensors").stat().st_size
    assert 0 < size - predicted_adapter_bytes(report.trainable) < 16_384  # only the safetensors header
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]


def test_target_modules_that_match_nothing_are_named():
    from course_utils.lora import adapter_shapes, needs_fan_in_fan_out

    model = tiny_model("gpt2")
    with pytest.raises(ValueError, match=r"target_modules \['q_proj'\] match no linear layer of GPT2LMHeadModel\. "
                                         r"Use discover_targets\(model\)"):
        needs_fan_in_fan_out(model, ["q_proj"])
    with pytest.raises(ValueError, match=r"valid names: \['c_attn', 'c_proj', 'c_fc'\]"):
        adapter_shapes(model, ["q_proj"], 8)

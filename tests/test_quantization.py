import dataclasses

import pytest
import torch
from conftest import GRADIENT_NOISE_FLOOR, gradient_mismatches, tiny_model

from course_utils.profiles import get_profile
from course_utils.quantization import bnb_config, nf4_levels, quantize_int8, quantize_nf4, sentence_losses


def _weight():
    torch.manual_seed(0)
    return torch.randn(256, 256) * 0.02


def test_nf4_round_trip_bytes_and_error():
    t = quantize_nf4(_weight())
    blocks = 256 * 256 // 64
    # packed 4-bit data + 8-bit absmax + fp32 second-level absmax (4 of 256 blocks) + fp32 offset
    assert t.bytes_after == 256 * 256 // 2 + blocks + 4 * 4 + 4
    assert t.bytes_before == 256 * 256 * 4
    assert 0.05 < t.relative_error < 0.15
    plain = quantize_nf4(_weight(), double_quant=False)
    assert plain.bytes_after == 256 * 256 // 2 + 4 * blocks


def test_int8_round_trip_bytes_and_error():
    t = quantize_int8(_weight())
    assert t.bytes_after == 256 * 256 + 4 * 256
    assert t.relative_error < 0.02
    assert t.relative_error < quantize_nf4(_weight()).relative_error / 5


def test_nf4_levels():
    levels = nf4_levels()
    assert levels.shape == (16,)
    assert levels[0] == -1.0 and levels[-1] == 1.0 and 0.0 in levels.tolist()
    assert torch.all(levels[1:] > levels[:-1])


def test_bnb_config_from_profile():
    cfg = bnb_config(get_profile("gpu8gb"))
    assert cfg.load_in_4bit and cfg.bnb_4bit_quant_type == "nf4" and cfg.bnb_4bit_use_double_quant
    assert cfg.bnb_4bit_compute_dtype == torch.bfloat16  # gpu8gb computes in bf16 (fp16 on a card without it)
    assert bnb_config(get_profile("cpu")) is None
    assert bnb_config(dataclasses.replace(get_profile("cpu"), quantization="int8")).load_in_8bit


def test_sentence_loss_is_finite_and_refuses_one_token():
    class Tok:
        def __call__(self, text, return_tensors):
            n = len(text)
            return type("Enc", (), {"input_ids": torch.arange(n).unsqueeze(0) % 1000})()

    model = tiny_model("tinyllama-1.1b")
    losses = sentence_losses(model, Tok(), ["abcdef", "abcdefgh"])
    assert all(6.0 < x < 8.0 for x in losses)  # random model: about ln(1000) = 6.9
    with pytest.raises(ValueError, match="fewer than 2 tokens"):
        sentence_losses(model, Tok(), ["a"])


# ---- 4-bit layers on a CPU: root causes (bitsandbytes 0.50.2) and the course's route around them ----------------

def _linear4bit(fast_path: bool):
    """One nf4 Linear4bit (256 x 128, double quantization, fp32 compute) and its de-quantized weight."""
    import bitsandbytes as bnb
    import bitsandbytes.functional as F

    torch.manual_seed(0)
    layer = bnb.nn.Linear4bit(128, 256, bias=False, compute_dtype=torch.float32, quant_type="nf4")
    layer.weight = bnb.nn.Params4bit(torch.randn(256, 128) * 0.02, requires_grad=False, quant_type="nf4")
    layer = layer.to("cpu")  # quantizes
    if not fast_path:
        from course_utils.quantization import standard_4bit_path

        standard_4bit_path(layer)
    return layer, F.dequantize_4bit(layer.weight.data, layer.weight.quant_state).clone()


def _eval_pass(layer, x):
    layer.eval()
    with torch.no_grad():
        return layer(x)


def _has_cpu_fast_path() -> bool:
    from bitsandbytes.functional import has_avx512bf16

    return has_avx512bf16()


@pytest.mark.skipif(not _has_cpu_fast_path(), reason="bitsandbytes' packed CPU path needs AVX512-BF16")
def test_bitsandbytes_cpu_fast_path_repacks_the_weight_in_place():
    """The library fault, kept as a test: when this fails, bitsandbytes fixed it and the workaround can go."""
    import bitsandbytes.functional as F

    layer, w0 = _linear4bit(fast_path=True)
    x = torch.randn(4, 128)
    y = _eval_pass(layer, x)
    assert layer.weight.quant_state.packing_format_for_cpu
    assert (F.dequantize_4bit(layer.weight.data, layer.weight.quant_state) - w0).abs().max() > 0.05  # destroyed
    assert (y - x @ w0.t()).abs().max() > 1e-4  # computed in bf16
    layer.train()
    xg = x.clone().requires_grad_(True)
    with pytest.warns(UserWarning, match="gemv_4bit: an autograd kernel was not registered"):
        layer(xg).sum().backward()
    assert xg.grad is None  # the gradient to the layer's input is dropped


def test_course_4bit_layer_is_exact_after_eval_and_keeps_its_weights():
    import bitsandbytes.functional as F

    layer, w0 = _linear4bit(fast_path=False)
    x = torch.randn(4, 128)
    assert torch.equal(_eval_pass(layer, x), x @ w0.t())
    assert torch.equal(F.dequantize_4bit(layer.weight.data, layer.weight.quant_state), w0)


@pytest.mark.parametrize("shape", [(2, 32), (1, 1)], ids=["batch 2x32", "single token"])
def test_qlora_gradients_equal_those_of_the_dequantized_fp32_model(tmp_path, shape):
    """One batch of LoRA gradients: nf4 model (after an eval pass, as training starts) vs an fp32 model built from
    the de-quantized weights, same LoRA tensors: every gradient above the noise floor within 2e-2 relative, every one
    below it still below it (``gradient_mismatches``)."""
    import warnings

    from conftest import randomize_lora_b, tiny_nf4_models

    from course_utils.lora import attach_lora
    from course_utils.profiles import LoraSettings

    nf4, fp32 = tiny_nf4_models(tmp_path)
    torch.manual_seed(1)
    ids = torch.randint(0, 1000, shape)
    _eval_pass(nf4, torch.randint(0, 1000, (2, 16)))  # the held-out loss before training runs first

    def grads(model):
        torch.manual_seed(0)
        peft_model = randomize_lora_b(attach_lora(model, LoraSettings(8, 16, 0.0, "all-linear")), 0, 0.02)
        peft_model.train()
        peft_model(input_ids=ids).logits.float().logsumexp(-1).mean().backward()
        return {n: p.grad for n, p in peft_model.named_parameters() if p.requires_grad}

    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*(incorrect|autograd kernel was not registered).*")
        got = grads(nf4)
    want = grads(fp32)
    assert got.keys() == want.keys() and len(got) == 2 * 2 * 7
    assert gradient_mismatches(got, want) == []
    if shape == (1, 1):  # the case that needs the floor: a query projection's gradient is rounding noise here
        scale = max(float(g.norm()) for g in want.values())
        assert float(want["base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight"].norm()) \
            < GRADIENT_NOISE_FLOOR * scale


def test_gradient_comparison_catches_real_errors_and_ignores_rounding_noise():
    """The comparison above, on made-up gradients: what it must accept and what it must refuse."""
    torch.manual_seed(0)
    want = {"big": torch.randn(8, 8), "small": torch.randn(8, 8) * 1e-3, "noise": torch.randn(8, 8) * 1e-11}
    scale = max(float(g.norm()) for g in want.values())
    same = {k: v.clone() for k, v in want.items()}
    assert gradient_mismatches(same, want) == []
    # rounding noise of another CPU: the exact-zero gradient comes out 100x larger but still far below the floor
    assert gradient_mismatches({**same, "noise": want["noise"] * -130}, want) == []
    assert gradient_mismatches({**same, "big": want["big"] * (1 + 1e-3)}, want) == []
    # real errors: a gradient 10 % off, a dropped gradient, a gradient where there should be (almost) none
    assert gradient_mismatches({**same, "small": want["small"] * 1.1}, want)[0].startswith("small: relative error")
    assert gradient_mismatches({**same, "big": torch.zeros(8, 8)}, want)[0].startswith("big: relative error 1")
    wrong = gradient_mismatches({**same, "noise": torch.full((8, 8), 1e-3 * scale)}, want)
    assert len(wrong) == 1 and "below the noise floor" in wrong[0]
    assert gradient_mismatches({"big": want["big"]}, want)[0].startswith("different gradients")

import dataclasses

import pytest
import torch
from conftest import tiny_model

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
    assert cfg.bnb_4bit_compute_dtype == torch.float16
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

"""Quantization with bitsandbytes: configs from a profile, int8/nf4 round trips, footprints, loss.

bitsandbytes 0.50 quantizes and runs 4-bit layers on a CPU too (slowly), so everything here is the
real library code path, not a simulation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def bnb_config(profile):
    """``BitsAndBytesConfig`` for the profile's ``quantization`` (None for ``none``).

    nf4 follows QLoRA: 4-bit NormalFloat, double quantization, compute in the profile's dtype.
    """
    return quantization_config(profile.quantization, profile.torch_dtype)


def quantization_config(quantization: str, compute_dtype: torch.dtype):
    """``BitsAndBytesConfig`` for ``none`` (None) / ``int8`` / ``nf4`` with 4-bit layers computing in ``compute_dtype``
    (``bnb_config`` for a profile; merging reads both from an adapter's metadata)."""
    from transformers import BitsAndBytesConfig

    if quantization == "none":
        return None
    if quantization == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )


def standard_4bit_path(model):
    """Keep every bitsandbytes ``Linear4bit`` of ``model`` on its standard layout and fp32-exact CPU path.

    bitsandbytes 0.50.2, on a CPU with AVX512-BF16 (this course's CI machine, many laptops), converts a
    ``Linear4bit`` weight *in place* to a CPU-only packed layout the first time the layer runs in eval mode
    on an input without gradients (``Linear4bit.forward`` -> ``_convert_weight_packed_for_cpu``). From then on:
    - the layer computes through ``gemv_4bit`` in bf16 (input and absmax cast to bf16), in training too, so
      the nf4 model no longer matches its own de-quantized fp32 copy;
    - ``gemv_4bit`` has no autograd kernel: the gradient to the layer's input is dropped ("an autograd kernel
      was not registered ... silently incorrect behavior"), so every LoRA below it trains on wrong gradients;
    - ``bitsandbytes.functional.dequantize_4bit`` reads the packed layout as the standard one, so peft's merge
      into the 4-bit model and ``model.dequantize()`` produce destroyed weights.
    The course's first eval (the held-out loss before training) triggers it. Reproductions:
    tests/test_quantization.py. Route around it: turn the fast path off per layer (a no-op on a GPU and on
    CPUs without AVX512-BF16), so the layer de-quantizes and multiplies in its compute dtype. Returns ``model``.
    """
    from bitsandbytes.nn import Linear4bit

    for module in model.modules():
        if isinstance(module, Linear4bit):
            if getattr(module.weight.quant_state, "packing_format_for_cpu", False):
                raise RuntimeError(f"{type(module).__name__} weights are already in bitsandbytes' CPU-packed layout; "
                                   f"call standard_4bit_path(model) right after loading, before any forward pass")
            module.support_avx512bf16_for_cpu = False
    return model


def dequantize_layers(model, dtype: torch.dtype | None = None):
    """Replace every bitsandbytes ``Linear4bit`` of ``model`` by a plain ``nn.Linear`` holding its de-quantized weight,
    in place, one layer at a time; returns ``model``, a plain transformers model on the same device.

    transformers' ``model.dequantize()`` does the same (integrations/bitsandbytes.py, ``dequantize_and_replace``), but
    it de-quantizes each weight twice and keeps every old layer until the end (bitsandbytes' ``Params4bit.module``
    points back at its layer: a reference cycle): fine on a CPU, not on an 8 GB card. Here each layer's packed weight
    is released as soon as its replacement exists, so the device holds at most the model being converted plus one
    de-quantized layer. ``dtype``: the new weights' dtype; by default the dtype the
    weight was quantized from (``quant_state.dtype``: the dtype the model was loaded and trained in, bf16 on gpu8gb),
    so an 8 GB card never holds an fp32 copy of the model.
    """
    import bitsandbytes.functional as F
    from bitsandbytes.nn import Linear4bit

    names = [name for name, module in model.named_modules() if isinstance(module, Linear4bit)]  # names only: no
    for name in names:  # reference to a layer outlives its turn
        module = model.get_submodule(name)
        weight = F.dequantize_4bit(module.weight.data, module.weight.quant_state)
        with torch.device("meta"):
            linear = torch.nn.Linear(module.in_features, module.out_features, bias=module.bias is not None)
        linear.weight = torch.nn.Parameter(weight.to(dtype or weight.dtype), requires_grad=False)
        if module.bias is not None:
            linear.bias = torch.nn.Parameter(module.bias.data.to(dtype or module.bias.dtype), requires_grad=False)
        model.set_submodule(name, linear)
        # bitsandbytes 0.50's packed weight points back at its layer (Params4bit.module): a reference cycle that only
        # gc would collect. Cut, the layer and its packed weight go now, with the last reference.
        module.weight.module = None
        del module, weight
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:  # what transformers' dequantize() removes, so .to() and saving treat it as plain
        quantizer.remove_quantization_config(model)
    for flag in ("is_loaded_in_4bit", "is_loaded_in_8bit"):  # TRL and peft read these
        if getattr(model, flag, False):
            setattr(model, flag, False)
    return model


@dataclass(frozen=True)
class RoundTrip:
    """Result of quantizing one weight matrix and de-quantizing it again."""

    fmt: str
    n_values: int
    bytes_before: int  # fp32 storage
    bytes_after: int  # quantized data + constants (absmax, scales)
    mean_abs_error: float
    max_abs_error: float
    relative_error: float  # ||W - W_hat|| / ||W|| (Frobenius)
    restored: torch.Tensor

    @property
    def bits_per_value(self) -> float:
        return 8 * self.bytes_after / self.n_values


def _roundtrip(fmt: str, weight: torch.Tensor, restored: torch.Tensor, bytes_after: int) -> RoundTrip:
    w = weight.float()
    err = (w - restored.float()).abs()
    return RoundTrip(fmt=fmt, n_values=w.numel(), bytes_before=w.numel() * 4, bytes_after=bytes_after,
                     mean_abs_error=err.mean().item(), max_abs_error=err.max().item(),
                     relative_error=(torch.linalg.norm(w - restored.float()) / torch.linalg.norm(w)).item(),
                     restored=restored)


def quantize_nf4(weight: torch.Tensor, blocksize: int = 64, double_quant: bool = True) -> RoundTrip:
    """Quantize a 2-D weight to nf4 with bitsandbytes and back; bytes include every constant."""
    import bitsandbytes.functional as F

    packed, state = F.quantize_4bit(weight.float().contiguous(), blocksize=blocksize, quant_type="nf4",
                                    compress_statistics=double_quant)
    restored = F.dequantize_4bit(packed, state)
    return _roundtrip("nf4", weight, restored, packed.numel() * packed.element_size() + quant_state_bytes(state))


def quant_state_bytes(state) -> int:
    """Bytes of a bitsandbytes 4-bit ``QuantState``'s constants: absmax (and its own state and offset with
    double quantization)."""
    total = state.absmax.numel() * state.absmax.element_size()
    if getattr(state, "state2", None) is not None:
        total += quant_state_bytes(state.state2)
    if getattr(state, "offset", None) is not None:
        total += state.offset.numel() * state.offset.element_size()
    return total


def quantize_int8(weight: torch.Tensor) -> RoundTrip:
    """Row-wise absmax int8 (the LLM.int8 weight format): int8 values + one fp32 scale per row."""
    import bitsandbytes.functional as F

    q, scales, _ = F.int8_vectorwise_quant(weight.float().contiguous())
    restored = q.float() * (scales.float().unsqueeze(1) / 127.0)
    return _roundtrip("int8", weight, restored, q.numel() * q.element_size() + scales.numel() * scales.element_size())


def nf4_levels() -> torch.Tensor:
    """The 16 values nf4 can represent (normalized to [-1, 1]; each block is scaled by its absmax)."""
    import bitsandbytes.functional as F

    return F.get_4bit_type("nf4", device="cpu").float()


@torch.no_grad()
def sentence_losses(model, tokenizer, sentences: list[str]) -> list[float]:
    """Mean next-token cross-entropy (nats per token) of each sentence, one forward each."""
    model.eval()
    losses = []
    device = next(model.parameters()).device
    for text in sentences:
        ids = tokenizer(text, return_tensors="pt").input_ids.to(device)
        if ids.shape[1] < 2:
            raise ValueError(f"Sentence {text!r} has fewer than 2 tokens; a loss needs at least one prediction")
        out = model(input_ids=ids, labels=ids)
        losses.append(float(out.loss))
    if not all(math.isfinite(x) for x in losses):
        raise FloatingPointError(f"Non-finite loss: {losses}")
    return losses

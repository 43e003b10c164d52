"""LoRA variants (notebook 03, the search in 09): the ``LoraConfig`` argument that turns each on, what it does at
initialization, and which work on a 4-bit base in this stack (peft 0.21.2, bitsandbytes 0.50.2, torch 2.13 CPU).

A layer with LoRA computes base(x) + s * B @ A @ x, s = alpha / r (rsLoRA: alpha / sqrt(r)).

- ``lora``: A random, B = 0. The model is unchanged at the start.
- ``rslora`` (``use_rslora=True``): the same start, scaled by alpha / sqrt(r) so larger ranks still learn.
- ``dora`` (``use_dora=True``): the weight is split into a magnitude vector (trained too) and a direction that LoRA
  updates. B = 0: unchanged at the start; a few more values to train.
- ``pissa`` (``init_lora_weights="pissa"``): B, A are the top r singular directions of W and the base becomes
  W_res = W - s * B @ A. The model is unchanged only because residual + adapter reproduce W.
- ``olora`` (``init_lora_weights="olora"``): the same with a QR decomposition of W.
- ``loftq``: for a 4-bit base. B, A start at the best rank-r fit of the quantization error W - Q(W), so that
  Q(W) + s * B @ A is closer to the original W than Q(W) alone. peft's own LoftQ functions (``LoftQConfig``,
  ``replace_lora_weights_loftq``) move every weight to ``"cuda"`` and stop on a CPU-only torch ("Torch not compiled
  with CUDA enabled"; tests/test_variants.py keeps the reproduction), so ``loftq_init`` does the same one step here.

On a 4-bit base peft refuses PiSSA (TypeError: "Please initialize PiSSA under float32 ...") and OLoRA starts from a
wrong model without an error (its QR runs on the packed 4-bit bytes), so ``variant_problem`` refuses both on nf4/int8
and names the route that works: initialize on full precision, then quantize the residual (``nf4_roundtrip`` measures
what that costs).

PiSSA and OLoRA change the base weights in memory. Their adapter is saved with peft's
``path_initial_model_for_weight_conversion`` (``save_adapter(initial=...)``): the saved adapter (rank 2r) is then an
ordinary LoRA on the *original* base, so inference, merging and export use it like any other.
"""
from __future__ import annotations

import torch

VARIANTS = {  # name -> the LoraConfig keyword arguments that turn it on
    "lora": {},
    "rslora": {"use_rslora": True},
    "dora": {"use_dora": True},
    "pissa": {"init_lora_weights": "pissa"},
    "olora": {"init_lora_weights": "olora"},
    "loftq": {},  # the LoRA config, then loftq_init (peft's LoftQ needs CUDA)
}
CHANGES_BASE = ("pissa", "olora")  # the base becomes a residual: the adapter is saved converted
NEEDS_QUANTIZED = ("loftq",)  # fits the quantization error: nothing to fit without quantization
INITIAL_ADAPTER = "initial_adapter"  # in a run folder: the adapter as initialized (PiSSA/OLoRA conversion)


def variant_kwargs(variant: str) -> dict:
    """The ``LoraConfig`` keyword arguments of ``variant`` (ValueError naming the choices for an unknown one)."""
    if variant not in VARIANTS:
        raise ValueError(f"lora.variant={variant!r} is not valid. Choose one of: {', '.join(VARIANTS)}")
    return dict(VARIANTS[variant])


def variant_problem(variant: str, quantization: str) -> str | None:
    """Why a variant does not work with this quantization in this stack, with the fix (None: it works)."""
    if variant not in VARIANTS:
        return f"lora.variant={variant!r} is not valid. Choose one of: {', '.join(VARIANTS)}"
    if variant in CHANGES_BASE and quantization != "none":
        return (f"lora.variant={variant} needs a full-precision base (quantization={quantization}): peft 0.21 "
                f"refuses PiSSA on 4-bit weights and OLoRA decomposes the packed 4-bit bytes. Use quantization=none, "
                f"or lora.variant=loftq (made for 4-bit), or initialize {variant} on the full-precision model and "
                "quantize its residual (notebook 03 shows both)")
    if variant in NEEDS_QUANTIZED and quantization == "none":
        return (f"lora.variant={variant} fits B·A to the 4-bit quantization error; with quantization=none there is "
                "none to fit. Use quantization=nf4 or another lora.variant (lora, rslora, dora, pissa, olora)")
    return None


def variants_for(quantization: str) -> tuple[str, ...]:
    """The variants that work (``variant_problem`` is None) for this quantization, in ``VARIANTS`` order."""
    return tuple(v for v in VARIANTS if variant_problem(v, quantization) is None)


def lora_layers(peft_model, adapter: str = "default"):
    """(module name in the base model, LoRA layer) for every layer that carries ``adapter``."""
    from peft.tuners.lora import LoraLayer

    prefix = "base_model.model."
    for name, module in peft_model.named_modules():
        if isinstance(module, LoraLayer) and adapter in module.lora_A:
            yield name.removeprefix(prefix), module


def base_weight(layer) -> torch.Tensor:
    """The layer's frozen base weight as fp32 (out x in), de-quantized for a bitsandbytes 4-bit layer."""
    w = layer.get_base_layer().weight
    if type(w).__name__ == "Params4bit":
        import bitsandbytes as bnb

        return bnb.functional.dequantize_4bit(w.data, w.quant_state).float()
    return w.detach().float()


def adapter_delta(layer, adapter: str = "default") -> torch.Tensor:
    """s * B @ A of a LoRA layer (fp32): what the adapter adds to the base weight (DoRA's magnitude aside)."""
    b, a = layer.lora_B[adapter].weight.float(), layer.lora_A[adapter].weight.float()
    return layer.scaling[adapter] * (b @ a)


def original_weights(model_key: str, names) -> dict[str, torch.Tensor]:
    """The original full-precision weights (fp32) of the named linear layers: for an offline model, only those tensors
    read from its safetensors cache (no second model in memory); for a hub model, from a fresh fp32 load on the CPU
    (beside the 4-bit model on the card; the rest of that copy is freed on return)."""
    from pathlib import Path

    from safetensors import safe_open

    from .loading import load_model, model_source
    from .memory import free
    from .models import get_spec
    from .residency import cpu_side, cpu_side_loads

    if get_spec(model_key).source == "gguf":
        weights = {}
        for file in sorted(Path(model_source(model_key)).glob("*.safetensors")):
            with safe_open(file, "pt") as tensors:
                keys = set(tensors.keys())
                weights.update({n: tensors.get_tensor(f"{n}.weight").float() for n in names if f"{n}.weight" in keys})
        if set(weights) == set(names):
            return weights

    with cpu_side_loads():
        full = dict(cpu_side(load_model(model_key, dtype=torch.float32, device="cpu")).named_modules())
    weights = {n: full[n].weight.detach().float() for n in names}
    del full
    free()
    return weights


def nf4_roundtrip(weight: torch.Tensor) -> torch.Tensor:
    """Q(W): ``weight`` quantized to nf4 (blocks of 64, as a 4-bit layer stores it) and de-quantized, fp32."""
    import bitsandbytes as bnb

    q, state = bnb.functional.quantize_4bit(weight.float().contiguous(), blocksize=64, quant_type="nf4")
    return bnb.functional.dequantize_4bit(q, state).float()


def reconstruction(peft_model, originals: dict[str, torch.Tensor], base=None) -> dict:
    """How well base + s·B·A reproduces the original weights, over all LoRA layers: relative Frobenius error
    ||W - (base + sBA)|| / ||W|| (squares summed over layers), the same without the adapter, and the largest
    absolute difference. ``base(W_res)`` may replace the base weight (e.g. ``nf4_roundtrip``)."""
    err = err_base = norm = 0.0
    worst = 0.0
    for name, layer in lora_layers(peft_model):
        b = base_weight(layer) if base is None else base(base_weight(layer))
        w = originals[name].to(b.device)
        diff = w - (b + adapter_delta(layer))
        err += diff.pow(2).sum().item()
        err_base += (w - b).pow(2).sum().item()
        norm += w.pow(2).sum().item()
        worst = max(worst, diff.abs().max().item())
    return {"relative_error": (err / norm) ** 0.5, "relative_error_base_only": (err_base / norm) ** 0.5,
            "max_abs": worst}


@torch.no_grad()
def loftq_init(peft_model, originals: dict[str, torch.Tensor], adapter: str = "default") -> None:
    """One LoftQ step on a 4-bit base (the 4-bit weights stay as loaded): B, A become the best rank-r fit of
    W - Q(W), divided by the scaling s, so that the layer computes Q(W) + s·B·A. peft's ``_loftq_init_new`` does
    the same SVD on CUDA."""
    for name, layer in lora_layers(peft_model, adapter):
        q = base_weight(layer)
        residual = originals[name].to(q.device) - q
        u, sv, vh = torch.linalg.svd(residual, full_matrices=False)
        r, s = layer.r[adapter], layer.scaling[adapter]
        root = (sv[:r] / s).sqrt()
        a, b = layer.lora_A[adapter].weight, layer.lora_B[adapter].weight
        a.copy_((root[:, None] * vh[:r]).to(a.dtype))
        b.copy_((u[:, :r] * root[None, :]).to(b.dtype))


def initialize(peft_model, variant: str, model_key: str) -> None:
    """What a variant does after ``get_peft_model`` (LoftQ's fit; the others are done by peft itself)."""
    if variant == "loftq":
        loftq_init(peft_model, original_weights(model_key, [n for n, _ in lora_layers(peft_model)]))

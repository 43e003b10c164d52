"""LoRA: find target modules, build a LoraConfig from a profile, count what trains.

LoRA replaces a frozen weight W (d_out x d_in) by W + (alpha / r) * B @ A with A: r x d_in and
B: d_out x r, so one adapted layer trains r * (d_in + d_out) values.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .models import ModelSpec, get_spec, logical_numel, meta_model


@dataclass(frozen=True)
class LinearInfo:
    name: str  # qualified module name, e.g. "model.layers.0.self_attn.q_proj"
    kind: str  # class name: Linear, Conv1D, Linear4bit, Linear8bitLt
    in_features: int
    out_features: int
    in_attention: bool  # inside an attention block


def _linear_shape(module) -> tuple[int, int] | None:
    from transformers.pytorch_utils import Conv1D

    if isinstance(module, Conv1D):  # weight stored as (in, out)
        return module.weight.shape[0], module.nf
    if isinstance(module, torch.nn.Linear):  # includes bitsandbytes Linear4bit / Linear8bitLt
        return module.in_features, module.out_features
    return None


def find_linear_layers(model) -> list[LinearInfo]:
    """Every linear layer (Linear, GPT-2 Conv1D, bitsandbytes 4/8-bit) inside the transformer blocks.

    The output head is left out: LoRA on the vocabulary projection is not what the course teaches.
    """
    head = model.get_output_embeddings()
    found = []
    attn_prefixes = [n for n, m in model.named_modules() if "Attention" in type(m).__name__]
    for name, module in model.named_modules():
        if module is head or "lora_" in name:
            continue
        shape = _linear_shape(module)
        if shape is None:
            continue
        in_attn = any(name.startswith(p + ".") for p in attn_prefixes)
        found.append(LinearInfo(name=name, kind=type(module).__name__, in_features=shape[0], out_features=shape[1],
                                in_attention=in_attn))
    return found


def _distinct_suffix(name: str, others: list[str]) -> str:
    parts = name.split(".")
    for k in range(1, len(parts) + 1):
        suffix = ".".join(parts[-k:])
        if not any(o == suffix or o.endswith("." + suffix) for o in others):
            return suffix
    return name


def discover_targets(model, which: str = "attention") -> list[str]:
    """LoRA ``target_modules`` names for ``which`` = "attention" or "all-linear".

    Each name is the shortest dotted suffix that matches the wanted layers and no other linear
    layer (GPT-2 has ``c_proj`` in both attention and MLP, so attention's becomes ``attn.c_proj``).
    """
    if which not in ("attention", "all-linear"):
        raise ValueError(f"which={which!r}: choose 'attention' or 'all-linear'")
    layers = find_linear_layers(model)
    wanted = [layer for layer in layers if which == "all-linear" or layer.in_attention]
    if not wanted:
        raise ValueError(f"No {which} linear layers found in {type(model).__name__}")
    unwanted = [layer.name for layer in layers if layer not in wanted]
    names: list[str] = []
    for layer in wanted:
        short = layer.name.split(".")[-1]
        suffix = _distinct_suffix(layer.name, unwanted) if any(
            u.split(".")[-1] == short for u in unwanted) else short
        if suffix not in names:
            names.append(suffix)
    return names


def needs_fan_in_fan_out(model, target_modules: list[str]) -> bool:
    """True when the targets are GPT-2 style Conv1D layers (weight stored as in x out).

    After bitsandbytes quantization the same layers are ``Linear4bit`` (out x in): then False.
    """
    kinds = {layer.kind for layer in find_linear_layers(model) if _matches(layer.name, target_modules)}
    if not kinds:
        raise ValueError(f"target_modules {target_modules} match no linear layer of {type(model).__name__}. "
                         f"Use discover_targets(model) to list valid names.")
    return kinds == {"Conv1D"}


def _matches(name: str, targets: list[str]) -> bool:
    return any(name == t or name.endswith("." + t) for t in targets)


def adapter_shapes(model, target_modules: list[str], r: int) -> list[tuple[str, tuple[int, int]]]:
    """Shapes of every LoRA matrix peft will create: A is (r, d_in), B is (d_out, r)."""
    shapes = []
    for layer in find_linear_layers(model):
        if _matches(layer.name, target_modules):
            shapes.append((f"{layer.name}.lora_A", (r, layer.in_features)))
            shapes.append((f"{layer.name}.lora_B", (layer.out_features, r)))
    if not shapes:
        raise ValueError(f"target_modules {target_modules} match no linear layer; "
                         f"valid names: {discover_targets(model, 'all-linear')}")
    return shapes


def lora_param_count(spec: ModelSpec | str, r: int, targets: str = "attention") -> int:
    """Trainable LoRA values (not bytes) for a registry model, from its architecture alone."""
    spec = get_spec(spec)
    model = meta_model(spec)
    names = discover_targets(model, targets)
    return sum(a * b for _, (a, b) in adapter_shapes(model, names, r))


def lora_config(lora_settings, model):
    """A peft ``LoraConfig`` for ``model`` from a profile's ``lora`` section.

    Target names come from ``discover_targets``; ``fan_in_fan_out`` is set for Conv1D layers; the variant
    (rsLoRA, DoRA, PiSSA, OLoRA) adds its own argument (``course_utils.variants``).
    """
    from peft import LoraConfig

    from .variants import variant_kwargs

    targets = discover_targets(model, lora_settings.targets)
    return LoraConfig(
        r=lora_settings.r,
        lora_alpha=lora_settings.alpha,
        lora_dropout=lora_settings.dropout,
        target_modules=targets,
        fan_in_fan_out=needs_fan_in_fan_out(model, targets),
        bias="none",
        task_type="CAUSAL_LM",
        **variant_kwargs(lora_settings.variant),
    )


@dataclass(frozen=True)
class TrainableReport:
    trainable: int  # values that receive gradients
    total: int  # all values (4-bit weights counted by their logical size)

    @property
    def percent(self) -> float:
        return 100.0 * self.trainable / self.total

    def __str__(self) -> str:
        return f"학습 파라미터: {self.trainable:,} / 전체: {self.total:,} ({self.percent:.3f} %)"


def trainable_report(model) -> TrainableReport:
    """Count trainable vs all parameters (tied weights once)."""
    seen, trainable, total = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        n = logical_numel(p)
        total += n
        trainable += n if p.requires_grad else 0
    return TrainableReport(trainable=trainable, total=total)


def predicted_adapter_bytes(n_params: int, bytes_per_value: int = 4) -> int:
    """Tensor bytes in ``adapter_model.safetensors`` (fp32 adapters: 4 bytes per value), header excluded."""
    return n_params * bytes_per_value


def attach_lora(model, lora_settings):
    """Wrap ``model`` with a fresh LoRA adapter (peft) configured from a profile's ``lora`` section."""
    from peft import get_peft_model

    return get_peft_model(model, lora_config(lora_settings, model))


def model_mismatch(model, profile) -> list[str]:
    """How ``model`` (a base with its LoRA adapter that someone built, as notebook 05 does) differs from the
    profile: its 4-bit load and compute dtype (``quantization``, ``dtype``) and its adapter (the ``lora`` section).
    One line per setting, naming both values; empty when they agree."""

    config = model.peft_config["default"]
    settings = profile.lora
    problems = [f"{name}: 셀 {mine!r}, 프로필 {theirs!r}" for name, mine, theirs in (
        ("r", config.r, settings.r), ("lora_alpha", config.lora_alpha, settings.alpha),
        ("lora_dropout", config.lora_dropout, settings.dropout)) if mine != theirs]
    targets = set(discover_targets(meta_model(profile.model), settings.targets))  # names of the unwrapped model
    if set(config.target_modules or ()) != targets:
        problems.append(f"target_modules: 셀 {sorted(config.target_modules or ())}, 프로필({settings.targets}) "
                        f"{sorted(targets)}")
    four_bit = bool(getattr(model.get_base_model(), "is_loaded_in_4bit", False))
    if four_bit != (profile.quantization == "nf4"):
        problems.append(f"양자화: 셀 {'nf4' if four_bit else '없음'}, 프로필 {profile.quantization}")
    quantization = getattr(model.get_base_model().config, "quantization_config", None)
    compute = getattr(quantization, "bnb_4bit_compute_dtype", None) if four_bit else None
    if compute is not None and compute != profile.torch_dtype:
        problems.append(f"bnb_4bit_compute_dtype: 셀 {compute}, 프로필 {profile.torch_dtype}")
    if settings.variant != "lora":
        problems.append(f"variant: 셀 lora, 프로필 {settings.variant} (python -m course_utils.train이 변형을 붙입니다)")
    return problems

"""Course profiles (smoke / cpu / gpu8gb): which model and recipe a run uses.

Profiles are data (``profiles.yaml`` beside this file). ``active_profile()`` picks one from
``COURSE_PROFILE``, else ``gpu8gb`` when CUDA is available, else ``cpu``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from .models import MODELS

PROFILES_FILE = Path(__file__).with_name("profiles.yaml")
CHOICES = {"device": ("cpu", "cuda"), "dtype": ("float32", "float16", "bfloat16"),
           "quantization": ("none", "int8", "nf4"),
           "optimizer": ("adamw_torch", "adamw_8bit", "paged_adamw_8bit"),
           "targets": ("attention", "all-linear")}


class ProfileError(ValueError):
    """A profile name, key or value is wrong; the message lists the valid choices."""


@dataclass(frozen=True)
class LoraSettings:
    r: int
    alpha: int
    dropout: float
    targets: str  # "attention" or "all-linear"


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    model: str
    device: str
    dtype: str
    quantization: str
    seq_len: int  # tokens per training example
    batch_size: int  # examples per forward pass
    grad_accum: int  # forward passes per optimizer step
    gradient_checkpointing: bool
    optimizer: str
    measure_seq_lens: tuple[int, ...]  # notebook 01: activation measurement lengths (tokens)
    eval_sentences: int  # notebook 02: sentences per language
    lora: LoraSettings

    @property
    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)


def _check_keys(found: dict, allowed: list[str], where: str) -> None:
    unknown = sorted(set(found) - set(allowed))
    missing = sorted(set(allowed) - set(found))
    if unknown:
        raise ProfileError(f"{where}: unknown key(s) {unknown}. Valid keys: {', '.join(allowed)}")
    if missing:
        raise ProfileError(f"{where}: missing key(s) {missing}. Valid keys: {', '.join(allowed)}")


def parse_profile(name: str, raw: dict, source: str = str(PROFILES_FILE)) -> Profile:
    """Validate one profile's raw mapping and turn it into a ``Profile``."""
    where = f"profile {name!r} in {source}"
    if not isinstance(raw, dict):
        raise ProfileError(f"{where}: expected a mapping of settings, got {type(raw).__name__}")
    top = [f.name for f in fields(Profile) if f.name != "name"]
    _check_keys(raw, top, where)
    lora_raw = raw["lora"]
    if not isinstance(lora_raw, dict):
        raise ProfileError(f"{where}: 'lora' must be a mapping with keys r, alpha, dropout, targets")
    _check_keys(lora_raw, [f.name for f in fields(LoraSettings)], f"{where}, section 'lora'")
    if raw["model"] not in MODELS:
        raise ProfileError(f"{where}: model {raw['model']!r} is not in the registry. Valid models: {', '.join(MODELS)}")
    for key, valid in CHOICES.items():
        value = lora_raw[key] if key == "targets" else raw[key]
        if value not in valid:
            raise ProfileError(f"{where}: {key}={value!r} is not valid. Choose one of: {', '.join(valid)}")
    for key in ("seq_len", "batch_size", "grad_accum", "eval_sentences"):
        if not isinstance(raw[key], int) or raw[key] < 1:
            raise ProfileError(f"{where}: {key} must be a whole number >= 1, got {raw[key]!r}")
    if not isinstance(lora_raw["r"], int) or lora_raw["r"] < 1:
        raise ProfileError(f"{where}: lora.r must be a whole number >= 1 (the adapter rank), got {lora_raw['r']!r}")
    if not 0.0 <= float(lora_raw["dropout"]) < 1.0:
        raise ProfileError(f"{where}: lora.dropout must be in [0, 1), got {lora_raw['dropout']!r}")
    if raw["quantization"] != "none" and raw["device"] != "cuda" and raw["optimizer"] != "adamw_torch":
        pass  # bitsandbytes runs its 4-bit layers on CPU too; nothing to refuse
    lora = LoraSettings(int(lora_raw["r"]), int(lora_raw["alpha"]), float(lora_raw["dropout"]), lora_raw["targets"])
    values = {k: raw[k] for k in top if k != "lora"}
    values["measure_seq_lens"] = tuple(int(x) for x in raw["measure_seq_lens"])
    values["gradient_checkpointing"] = bool(raw["gradient_checkpointing"])
    return Profile(name=name, lora=lora, **values)


def load_profiles(path: str | Path = PROFILES_FILE) -> dict[str, Profile]:
    """All profiles in a YAML file, validated."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ProfileError(f"{path}: expected a mapping of profile names to settings")
    return {name: parse_profile(name, body, str(path)) for name, body in raw.items()}


def get_profile(name: str, path: str | Path = PROFILES_FILE) -> Profile:
    """One profile by name; an unknown name lists the valid ones."""
    profiles = load_profiles(path)
    if name not in profiles:
        raise ProfileError(f"Unknown profile {name!r}. Valid profiles: {', '.join(profiles)}")
    return profiles[name]


def default_profile_name() -> str:
    """``COURSE_PROFILE`` if set, else ``gpu8gb`` with CUDA, else ``cpu``."""
    chosen = os.environ.get("COURSE_PROFILE", "").strip()
    if chosen:
        return chosen
    import torch

    return "gpu8gb" if torch.cuda.is_available() else "cpu"


def active_profile() -> Profile:
    """The profile this run uses (see ``default_profile_name``)."""
    return get_profile(default_profile_name())

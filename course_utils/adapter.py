"""The life of a trained adapter: save it with its metadata, check it belongs to a base, load it.

An adapter is the standard PEFT pair (``adapter_config.json`` + ``adapter_model.safetensors``) plus our
``course_adapter.json``: which base model and which exact base weights it was trained on, the prompt
template, the maximum length, the profile, library versions and the run's measured results. 06 and 07
refuse an adapter whose base differs from the model they would load it onto.
"""
from __future__ import annotations

import json
import platform
from pathlib import Path

import torch

from .files import atomic_folder
from .models import ModelSpec, get_spec

ADAPTER_METADATA = "course_adapter.json"  # our metadata file beside a PEFT adapter


class AdapterMismatchError(ValueError):
    """An adapter was trained on another base model (or other base weights) than the one asked for."""


def weights_id(spec: ModelSpec | str) -> str:
    """Identity of the base weights: the GGUF's sha256 (and how many of its blocks were kept), or the hub id."""
    spec = get_spec(spec)
    if spec.source == "gguf":
        from .loading import gguf_sha256

        kept = f":first-{spec.num_layers}-layers" if spec.truncated_from else ""
        return f"sha256:{gguf_sha256(spec)}{kept}"
    return f"hub:{spec.hub_id}"


def adapter_metadata(profile, tokenizer, **results) -> dict:
    """The ``course_adapter.json`` content for an adapter trained with ``profile``; ``results`` are added."""
    import peft
    import transformers

    spec = get_spec(profile.model)
    t = profile.train
    return {
        "base_model": spec.key, "base_model_id": spec.hub_id, "base_weights": weights_id(spec),
        # how the base was loaded for training: an nf4 (QLoRA) adapter is merged into the de-quantized nf4 weights
        "quantization": profile.quantization, "dtype": profile.dtype, "lora_variant": profile.lora.variant,
        "license": spec.license, "template": profile.data.template, "tokenizer": type(tokenizer).__name__,
        "eos_token": tokenizer.eos_token, "max_length": profile.seq_len, "profile": profile.name,
        # the held-out records the adapter was scored on (``heldout_of``): the source actually read (after an offline
        # fallback), and the split's settings
        "heldout": {"source": results.get("data_source", profile.data.source), "records": t.heldout_records,
                    "seed": t.seed, "on_invalid": profile.data.on_invalid, "split": "test"},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
                     "python": platform.python_version()},
        **results,
    }


def save_adapter(model, out_dir, metadata: dict | None = None, initial=None) -> Path:
    """Save a peft adapter (+ ``course_adapter.json`` when ``metadata`` is given) atomically; return the folder.

    An existing adapter at ``out_dir`` is replaced only once the new one is completely written. ``initial``: the
    folder of a PiSSA/OLoRA adapter as initialized; the saved adapter is then converted to an ordinary LoRA on the
    original base (peft's ``path_initial_model_for_weight_conversion``).
    """
    import warnings

    with atomic_folder(out_dir) as tmp, warnings.catch_warnings():
        # converting, peft loads the initial adapter beside the trained one and warns that PiSSA/OLoRA "changes the
        # base weights ... Consider converting": the conversion it recommends is what this call does
        warnings.filterwarnings("ignore", message=r".* changes the base weights of the model")
        convert = {} if initial is None else {"path_initial_model_for_weight_conversion": str(initial)}
        model.save_pretrained(tmp, **convert)
        if metadata is not None:
            (tmp / ADAPTER_METADATA).write_text(json.dumps(metadata, indent=2, ensure_ascii=False), encoding="utf-8")
    return Path(out_dir)


def read_adapter_metadata(adapter_dir) -> dict:
    """The ``course_adapter.json`` written by ``course_utils.train`` beside a PEFT adapter."""
    path = Path(adapter_dir) / ADAPTER_METADATA
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: {adapter_dir} is not an adapter trained by this course. "
                                f"Train one with notebook 05 or: python -m course_utils.train --profile <name>")
    return json.loads(path.read_text(encoding="utf-8"))


def check_adapter(adapter_dir, model_key: str) -> dict:
    """Refuse an adapter trained on another base model or other base weights; return its metadata."""
    meta = read_adapter_metadata(adapter_dir)
    if meta["base_model"] != model_key:
        raise AdapterMismatchError(f"{adapter_dir}는 {model_key!r}가 아니라 {meta['base_model']!r}로 학습한 어댑터입니다 "
                                   f"(기본 모델 불일치). 그 기본 모델로 읽거나 {model_key!r}용 어댑터를 학습하세요")
    here = weights_id(model_key)
    if meta["base_weights"] != here:
        raise AdapterMismatchError(f"{adapter_dir}는 기본 가중치 {meta['base_weights']}로 학습했는데 이 컴퓨터의 가중치는 "
                                   f"{here}입니다 (base weights mismatch). 이 가중치로 어댑터를 다시 학습하세요")
    return meta


def heldout_of(meta: dict, tokenizer) -> tuple[list[dict], list[dict]]:
    """(test records, encoded examples) an adapter was scored on in training, from its ``course_adapter.json``:
    merged and exported models are measured on the very same records."""
    from .prompts import encode
    from .splits import split_source

    h = meta["heldout"]
    _, _, held, _ = split_source(h["source"], h["records"], h["seed"], h["on_invalid"])
    return held, [encode(r, tokenizer, meta["max_length"], meta["template"]) for r in held]


def load_adapter_model(adapter_dir, profile, full_precision: torch.dtype | None = None):
    """(peft model, tokenizer, metadata) for an adapter trained by ``course_utils.train`` on the profile's model.

    The base is loaded as the profile says (quantized for gpu8gb), or unquantized in ``full_precision``
    (e.g. ``torch.float32``) when given, as merging needs.
    """
    from peft import PeftModel

    from .loading import load_model, load_profile_model, load_tokenizer

    meta = check_adapter(adapter_dir, profile.model)
    base = load_profile_model(profile) if full_precision is None else load_model(profile.model, dtype=full_precision)
    model = PeftModel.from_pretrained(base, str(adapter_dir))
    model.eval()
    return model, load_tokenizer(profile.model), meta


def load_trained(adapter_dir, model_key: str | None = None):
    """(peft model, tokenizer, metadata): the adapter on its base loaded as training loaded it, read from
    ``course_adapter.json`` alone (quantization and compute dtype; fp32 compute on a machine without CUDA, where
    fp16 is slow and inexact). ``model_key``, when given, must be the adapter's base (else AdapterMismatchError)."""
    from peft import PeftModel

    from .loading import load_model, load_tokenizer
    from .quantization import quantization_config

    meta = read_adapter_metadata(adapter_dir)
    check_adapter(adapter_dir, model_key or meta["base_model"])
    compute = getattr(torch, meta.get("dtype", "float32")) if torch.cuda.is_available() else torch.float32
    base = load_model(meta["base_model"], dtype=compute,
                      quantization_config=quantization_config(meta.get("quantization", "none"), compute))
    if torch.cuda.is_available() and meta.get("quantization", "none") == "none":
        base = base.to("cuda")  # a 4-bit model is placed on the GPU when it is quantized
    model = PeftModel.from_pretrained(base, str(adapter_dir))
    model.eval()
    return model, load_tokenizer(meta["base_model"]), meta

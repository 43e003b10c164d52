"""GPU memory during a run: inputs on the model's device, one big model at a time, each stage measured.

An 8 GB card holds one 1-3B model at a time, so every lesson and command follows three rules:
- tensors a lesson builds (a tokenizer's output) go to the model's device before a forward pass (``to_device``);
- a model no longer needed is freed before the next one loads (``free``): ``del`` drops the name, but models sit in
  reference cycles that only ``gc.collect()`` frees: every bitsandbytes 4-bit weight points back at its layer
  (``Params4bit.module``, bitsandbytes 0.50), and a model that trained under mixed precision holds itself through the
  autocast-wrapped ``forward`` accelerate puts on it (accelerate/accelerator.py, ``prepare_model``, 1.15: lines
  1824-1835). ``torch.cuda.empty_cache()`` then hands the cached blocks back to the card;
- each stage of a run reports its own peak (``Stage``): ``torch.cuda.reset_peak_memory_stats()`` before it,
  ``max_memory_reserved`` after (what the allocator held from the card, not only what tensors used), plus the memory
  outside PyTorch (the CUDA context, other programs: ``mem_get_info``), beside the card's total, with a verdict.

On a CPU, ``Stage`` says that it would print this on a GPU. ``live_models`` finds every model alive in this process
(the residency check of ``tests/test_residency.py``).
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import torch

from .units import GIB


def model_device(model) -> torch.device:
    """Where a model's inputs must be: the device of its first parameter (``model.device`` for transformers models;
    a bitsandbytes 4-bit model is placed on ``cuda:0`` when it is loaded on a machine with CUDA)."""
    device = getattr(model, "device", None)
    if isinstance(device, torch.device):
        return device
    return next(model.parameters()).device


def to_device(batch, model):
    """``batch`` (a tensor, a tokenizer's ``BatchEncoding`` or a dict of tensors) on ``model``'s device."""
    device = model_device(model)
    if isinstance(batch, torch.Tensor) or hasattr(batch, "to"):
        return batch.to(device)
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def free() -> None:
    """Free what no name holds any more: ``gc.collect()`` (reference cycles: see the module docstring), the embedding
    layers bitsandbytes' optimizer manager still holds of freed models (``forget_freed_embeddings``), then, on CUDA,
    ``torch.cuda.empty_cache()``, and on Linux glibc's ``malloc_trim(0)``, which hands the freed parts of the heap back
    to the system (without it a CPU run's resident memory stays at its highest). Call it after ``del`` of a model,
    before the next one loads."""
    gc.collect()
    if forget_freed_embeddings():
        gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    _malloc_trim()


def forget_freed_embeddings() -> int:
    """Drop, from bitsandbytes' process-wide ``GlobalOptimManager``, the embedding layers of models no longer alive;
    how many were dropped.

    With an 8-bit bitsandbytes optimizer (smoke's ``adamw_8bit``, gpu8gb's ``paged_adamw_8bit``) transformers'
    ``Trainer.create_optimizer`` (5.23, trainer.py 1328-1339) registers every ``nn.Embedding`` of the model with
    ``GlobalOptimManager.register_module_override`` so it is optimized in 32 bits. The manager is a singleton whose list
    (``module_weight_config_triple``) is never emptied: each run's embedding layer and its weight outlived ``del
    model``, on the card with gpu8gb (TinyLlama's in fp32: 0.24 GiB per run, one more for each of 09's trials and 10's
    runs), and on a CPU the whole mapped checkpoint with it. A running optimizer has read its overrides at its first
    step, so dropping those of freed models changes no training."""
    import sys

    bnb = sys.modules.get("bitsandbytes")
    if bnb is None:
        return 0
    manager = bnb.optim.GlobalOptimManager.get_instance()
    triples = getattr(manager, "module_weight_config_triple", [])
    if not triples:
        return 0
    alive = {id(m) for model in live_models() for m in model.modules()}
    kept = [t for t in triples if id(t[0]) in alive]
    dropped = len(triples) - len(kept)
    manager.module_weight_config_triple = kept
    return dropped


def _malloc_trim() -> None:
    import ctypes
    import sys

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (musl): nothing to hand back this way
            pass


def drop_autocast_wrapper(model) -> bool:
    """Give ``model`` its own ``forward`` back after a Trainer's mixed-precision run; True when there was a wrapper.

    accelerate (1.15, accelerator.py 1824-1835) stores an autocast-wrapped ``forward`` and the ``_original_forward``
    it wraps on the model instance: every later call (evaluation, generation) still runs under fp16 autocast, unlike
    the same model before training, and the two bound methods hold the model in a reference cycle. accelerate's own
    ``extract_model_from_parallel(keep_fp32_wrapper=False)`` puts a bound ``forward`` back on the instance, so the
    cycle stays; removing both attributes restores the class's ``forward`` and ends it."""
    found = False
    for module in {id(m): m for m in (model, getattr(model, "base_model", None)) if m is not None}.values():
        for name in ("forward", "_original_forward"):
            found = module.__dict__.pop(name, None) is not None or found
    return found


def reset_peak() -> None:
    """On CUDA: free what nothing holds, then start the peak statistics afresh (what a stage's peak counts from)."""
    if torch.cuda.is_available():
        free()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_memory_bytes() -> int:
    """Peak memory of this process so far: ``torch.cuda.max_memory_allocated`` with CUDA, else the peak RSS.

    Peak RSS comes from ``resource`` where it exists (Linux reports KiB, macOS bytes) and from psutil's
    ``peak_wset`` on Windows; where neither is known, the current RSS (a lower bound).
    """
    import sys

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated()
    try:
        import resource
    except ImportError:  # Windows
        resource = None
    if resource is not None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
    import psutil

    info = psutil.Process().memory_info()
    return int(getattr(info, "peak_wset", info.rss))


def cuda_outside_pytorch() -> int:
    """Bytes of the card in use but not reserved by this process's PyTorch allocator: the CUDA context (kernels,
    cuBLAS workspaces) and every other program on the card (a desktop, another notebook). 0 without CUDA."""
    if not torch.cuda.is_available():
        return 0
    free_bytes, total = torch.cuda.mem_get_info()
    return max(0, total - free_bytes - torch.cuda.memory_reserved())


@dataclass
class StageMemory:
    """One stage's GPU memory in bytes (all 0 and ``cuda`` False on a machine without CUDA)."""

    name: str
    cuda: bool
    peak_allocated: int = 0  # max_memory_allocated: tensors alive at the peak
    peak_reserved: int = 0  # max_memory_reserved: what the allocator held from the card at the peak
    outside: int = 0  # the CUDA context and other programs (cuda_outside_pytorch), measured at the end
    card: int = 0  # the card's total memory
    budget: int = 0  # what the verdict compares against: the card, or the learner's 8 GiB when smaller

    @property
    def total(self) -> int:
        """What the card had to hold at this stage's peak: reserved by PyTorch + outside PyTorch."""
        return self.peak_reserved + self.outside

    def verdict(self) -> str:
        """One Korean line: the stage's peak beside the card, and whether it fits."""
        if not self.cuda:
            return (f"{self.name}: GPU가 없어 GPU 메모리를 재지 않았습니다. GPU에서는 여기에 이 단계의 "
                    f"torch.cuda.max_memory_reserved와 CUDA 컨텍스트를 카드의 전체 메모리 옆에 출력합니다.")
        left = self.budget - self.total
        fits = (f"들어갑니다 (남는 메모리 {left / GIB:.2f} GiB)" if left >= 0 else
                f"들어가지 않습니다: {-left / GIB:.2f} GiB가 넘칩니다")
        return (f"{self.name}: 최대 예약(max_memory_reserved) {self.peak_reserved / GIB:.2f} GiB "
                f"(할당 {self.peak_allocated / GIB:.2f} GiB) + PyTorch 밖(CUDA 컨텍스트 등) {self.outside / GIB:.2f} GiB "
                f"= {self.total / GIB:.2f} GiB, 기준 {self.budget / GIB:.2f} GiB "
                f"(카드 {self.card / GIB:.2f} GiB)에 {fits}")


class Stage:
    """``with Stage("학습") as s: ...`` resets the CUDA peak statistics on entry and fills ``s.memory`` on exit
    (a ``StageMemory``). ``budget`` defaults to the smaller of the card and 8 GiB (the course's target card)."""

    def __init__(self, name: str, budget: int | None = None):
        self.name = name
        self.budget = budget
        self.memory: StageMemory | None = None

    def __enter__(self) -> Stage:
        reset_peak()
        return self

    def __exit__(self, *exc) -> None:
        if not torch.cuda.is_available():
            self.memory = StageMemory(self.name, cuda=False)
            return
        torch.cuda.synchronize()
        card = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
        self.memory = StageMemory(self.name, cuda=True, peak_allocated=torch.cuda.max_memory_allocated(),
                                  peak_reserved=torch.cuda.max_memory_reserved(), outside=cuda_outside_pytorch(),
                                  card=card, budget=self.budget or min(card, 8 * GIB))


_CPU_SIDE = ContextVar("cpu_side_loads", default=False)


def cpu_side(model):
    """Mark ``model`` as a copy kept on the CPU beside the one on the card (weights to compare with: LoftQ's original
    weights); returns it. It must be on the CPU: the residency check counts it in the machine's memory, not the
    card's."""
    device = model_device(model)
    if device.type != "cpu":
        raise ValueError(f"cpu_side: this model is on {device}, not on the CPU")
    model._course_cpu_side = True
    return model


@contextmanager
def cpu_side_loads():
    """Within this block, every model ``from_pretrained`` loads is a ``cpu_side`` copy (the residency record marks it
    as it loads)."""
    token = _CPU_SIDE.set(True)
    try:
        yield
    finally:
        _CPU_SIDE.reset(token)


def live_models() -> list[torch.nn.Module]:
    """Every transformers model alive in this process that is not part of another one (found by a ``gc`` scan;
    a peft model is found as the transformers model it wraps). Objects kept alive only by a reference cycle count
    as alive, as they hold their memory until ``gc.collect()`` runs."""
    from transformers import PreTrainedModel

    # type(o), not isinstance(o, ...): isinstance reads o.__class__, which some objects turn into a warning
    models = [o for o in gc.get_objects() if issubclass(type(o), PreTrainedModel)]
    inner = {id(m) for model in models for m in model.modules() if m is not model}
    return [m for m in models if id(m) not in inner]


def parameter_storage(models) -> dict[int, tuple[int, int, bool]]:
    """{storage pointer: (bytes, values, packed 4-bit)} of every parameter and buffer of ``models``, each storage once
    (tied weights, a peft wrapper and its base share storages). Values count a packed 4-bit weight at its logical
    size. Tensors on the ``meta`` device hold nothing and are left out."""
    seen: dict[int, tuple[int, int, bool]] = {}
    for model in models:
        for t in [*model.parameters(), *model.buffers()]:
            if t.device.type == "meta":
                continue
            qs = getattr(t, "quant_state", None)
            values = int(torch.Size(qs.shape).numel()) if qs is not None else t.numel()
            seen[t.untyped_storage().data_ptr()] = (t.untyped_storage().nbytes(), values, qs is not None)
    return seen


def residency_snapshot() -> list[dict]:
    """The models alive now, after ``gc.collect()`` (what the running code still holds, not what the collector has yet
    to find): for each, its distinct parameter and buffer values, their bytes, whether it holds packed 4-bit
    weights, and whether it is a ``cpu_side`` copy. Storages shared between models (a peft model and its base) count
    once, for the first."""
    gc.collect()
    seen: set[int] = set()
    out = []
    for model in live_models():
        own = {k: v for k, v in parameter_storage([model]).items() if k not in seen}
        seen.update(own)
        if own:
            out.append({"model": type(model).__name__, "values": sum(v for _, v, _ in own.values()),
                        "bytes": sum(b for b, _, _ in own.values()), "packed": any(p for _, _, p in own.values()),
                        "cpu_side": bool(getattr(model, "_course_cpu_side", False))})
    return out


WEIGHT_FILES = (".safetensors", ".gguf", ".bin", ".pt", ".pth")


def mapped_weight_files() -> dict[str, int]:
    """{path: resident bytes} of every weight file mapped into this process (Linux ``/proc/self/smaps``; {} elsewhere).

    transformers maps a safetensors checkpoint and gives each weight a view of the mapping, so the whole file stays
    mapped, and resident once read, while any one of its tensors lives. A loop variable left holding a model's last
    parameter (``for param in model.parameters()``) kept Gemma's 1.0 GiB file resident after ``del model`` in lesson 10,
    where no model was alive any more for ``live_models`` to find."""
    from pathlib import Path

    smaps = Path("/proc/self/smaps")
    if not smaps.exists():
        return {}
    found: dict[str, int] = {}
    current = None
    for line in smaps.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and not fields[0].endswith(":"):  # a mapping's header: address range ... path
            current = fields[5] if len(fields) > 5 and fields[5].endswith(WEIGHT_FILES) else None
        elif current is not None and fields[:1] == ["Rss:"]:
            found[current] = found.get(current, 0) + int(fields[1]) * 1024
    return found


def record_residency(folder) -> None:
    """In a Jupyter kernel: append, after every cell and after every ``AutoModelForCausalLM.from_pretrained`` (a load
    is where a second model would appear), a JSON line with the live models (``residency_snapshot``) and the weight
    files still mapped (``mapped_weight_files``) to
    ``<folder>/<process id>.jsonl``, tagged with the running cell's source. ``notebook.setup`` calls it when
    ``COURSE_RESIDENCY_LOG`` names a folder (``make test`` does, for tests/test_residency.py). Loads inside the
    model cache's one-time conversion (``loading._build_once``) are not recorded: that is not the lesson's code."""
    import hashlib
    import json
    import os
    import sys
    from pathlib import Path

    from IPython import get_ipython
    from transformers import AutoModelForCausalLM

    shell = get_ipython()
    if shell is None:
        return
    path = Path(folder) / f"{os.getpid()}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    current = {"cell": None}

    def write(event: str) -> None:
        line = {"cell": current["cell"], "event": event, "models": residency_snapshot(),
                "mapped": mapped_weight_files()}
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")

    def pre_run_cell(info) -> None:
        current["cell"] = hashlib.sha1(info.raw_cell.encode("utf-8")).hexdigest()

    def post_run_cell(result) -> None:
        write("cell")

    load = AutoModelForCausalLM.from_pretrained.__func__

    def from_pretrained(cls, *args, **kwargs):
        model = load(cls, *args, **kwargs)
        if _CPU_SIDE.get():
            cpu_side(model)
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_name != "_build_once":
            frame = frame.f_back
        if frame is None:
            write("load")
        return model

    AutoModelForCausalLM.from_pretrained = classmethod(from_pretrained)
    shell.events.register("pre_run_cell", pre_run_cell)
    shell.events.register("post_run_cell", post_run_cell)

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

On a CPU, ``Stage`` says that it would print this on a GPU. What a process still holds is found by
``course_utils.residency`` (the residency check of ``tests/test_residency.py``).
"""
from __future__ import annotations

import gc
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
    model``, on the card with gpu8gb (TinyLlama's in fp32: 0.24 GiB per run, Mi:dm's 0.88 GiB, one more for each of 09's trials and 10's
    runs), and on a CPU the whole mapped checkpoint with it. A running optimizer has read its overrides at its first
    step, so dropping those of freed models changes no training."""
    import sys

    from .residency import live_models

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

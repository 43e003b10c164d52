"""What a process still holds, found rather than assumed: the models alive (``live_models``, a ``gc`` scan), their
distinct weights (``parameter_storage``), the weight files still mapped into memory (``mapped_weight_files``), and a
record of all three after every notebook cell (``record_residency``), which ``tests/test_residency.py`` reads.
``cpu_side`` marks a copy kept on the CPU on purpose, beside the model on the card.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from contextvars import ContextVar

import torch

_CPU_SIDE = ContextVar("cpu_side_loads", default=False)


def cpu_side(model):
    """Mark ``model`` as a copy kept on the CPU beside the one on the card (weights to compare with: LoftQ's original
    weights); returns it. It must be on the CPU: the residency check counts it in the machine's memory, not the
    card's."""
    device = next(model.parameters()).device
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
        if not line["models"]:
            # No model is alive: what is (imports, the lesson's small objects) leaves the collector's sight, as
            # tests/conftest.py does for pytest. A snapshot's gc scan then walks what later cells make, not half a
            # million library objects each time (0.5 s a snapshot, about 250 snapshots in make test's notebooks);
            # a model made later is new, so it is still found. (A frozen object that later ends in a reference cycle
            # is never collected; none of them is a model. This runs under make test only.)
            gc.freeze()

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

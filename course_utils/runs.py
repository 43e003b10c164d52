"""A training run's folder: ``checkpoints/`` while it trains, ``adapter/`` when it has finished.

Everything that decides what happens to a run folder lives here: which checkpoint a resume starts
from, and whether the folder can be written before any work starts.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .units import MIB


def last_complete_checkpoint(checkpoint_dir: Path) -> Path | None:
    """Newest ``checkpoint-N`` that holds everything a resume needs (a half-written one is skipped)."""
    need = ("trainer_state.json", "adapter_model.safetensors", "optimizer.pt", "scheduler.pt")
    found = []
    for d in Path(checkpoint_dir).glob("checkpoint-*"):
        try:
            step = int(d.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if all((d / f).exists() for f in need):
            try:
                json.loads((d / "trainer_state.json").read_text(encoding="utf-8"))
            except ValueError:
                continue
            found.append((step, d))
    return max(found)[1] if found else None


def check_output_folder(path: Path) -> None:
    """Fail early, writing nothing, when ``path`` or a parent of it is an existing file."""
    for part in [path, *path.parents]:
        if part.exists() and not part.is_dir():
            raise NotADirectoryError(f"Output folder {path}: {part} is a file, not a folder. Choose another --output")


def check_writable(path: Path, need_bytes: int = 200 * MIB) -> None:
    """Fail before training when ``path`` cannot be written or its disk is nearly full."""
    check_output_folder(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PermissionError(f"Output folder {path} cannot be created ({err.strerror}). Choose another --output") from None
    probe = path / f".write-test-{os.getpid()}"  # one per process: DDP ranks check at the same time
    try:
        probe.write_text("ok", encoding="utf-8")
        probe.unlink()
    except OSError as err:
        raise PermissionError(f"Output folder {path} is not writable ({err.strerror}). Choose another --output") from None
    free = shutil.disk_usage(path).free
    if free < need_bytes:
        raise OSError(f"Only {free / MIB:.0f} MiB free at {path}; training needs about "
                      f"{need_bytes / MIB:.0f} MiB for checkpoints and the adapter. Free space or choose another --output")

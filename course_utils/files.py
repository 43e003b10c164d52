"""Write files and folders so that a crash never leaves a half-written one.

Everything is built under a temporary name beside its target and renamed into place when complete:
a rename within one filesystem is atomic, so a reader sees the old version or the new one, never a
mix. One helper for every such write in the course (adapters, merged models, the model cache,
executed notebooks, benchmark results).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_file(target: str | Path):
    """Yield a temporary path beside ``target``; when the block ends without error it replaces ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(target: str | Path, text: str) -> Path:
    """Replace ``target`` with ``text`` (UTF-8) atomically."""
    with atomic_file(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


@contextmanager
def atomic_folder(target: str | Path):
    """Yield a temporary folder beside ``target``; when the block ends without error it becomes ``target``.

    An existing ``target`` is replaced: it is moved aside, the new folder renamed into place, then the old
    one removed (a folder cannot be renamed over another on every OS). On error nothing changes.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        yield tmp
        tmp.chmod(0o755)  # mkdtemp makes it private; a saved model or cache is read like any folder
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
            old.rmdir()
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

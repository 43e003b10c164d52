"""A training run's folder: ``checkpoints/`` while it trains, ``adapter/`` when it has finished.

Everything that decides what happens to a run folder lives here: which checkpoint a resume starts
from, and whether the folder can be written before any work starts.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from dataclasses import dataclass
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


IF_EXISTS = ("refuse", "overwrite", "replace")  # what a fresh (not resumed) run does with an earlier run there


class RunExistsError(ValueError):
    """A fresh run was started in a folder that holds an earlier run; nothing was touched."""


def describe_run(output_dir: Path) -> str | None:
    """What an earlier run left in ``output_dir`` (checkpoints: last step and time; a finished adapter), or None."""
    output_dir = Path(output_dir)
    parts = []
    last = last_complete_checkpoint(output_dir / "checkpoints")
    if last is not None:
        parts.append(f"스텝 {last.name.split('-')[1]}까지의 체크포인트({_when(last)})")
    meta = output_dir / "adapter" / "course_adapter.json"
    if meta.exists():
        step = json.loads(meta.read_text(encoding="utf-8")).get("global_step", "?")
        parts.append(f"스텝 {step}에서 끝난 어댑터({_when(meta)})")
    elif (output_dir / "checkpoints").exists() and last is None:
        parts.append("완성되지 않은 체크포인트 폴더")
    return ", ".join(parts) or None


def _when(path: Path) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M")


def check_earlier_run(output_dir: Path, resume: bool, if_exists: str) -> str | None:
    """Before any work: refuse a fresh run over an earlier one unless told what to do. Returns the description."""
    if if_exists not in IF_EXISTS:
        raise ValueError(f"if_exists={if_exists!r}: choose one of {', '.join(IF_EXISTS)}")
    found = describe_run(output_dir)
    if found and not resume and if_exists == "refuse":
        raise RunExistsError(f"{output_dir}에 이전 학습이 있습니다: {found}. 아무것도 바꾸지 않았습니다. 이어서 하려면 "
                             f"--resume, 새로 하려면 다른 --output, 이전 학습을 {output_dir}.previous-<시각>으로 옮기고 "
                             f"새로 하려면 --overwrite를 고르세요")
    return found


def move_aside(output_dir: Path) -> Path:
    """Rename an earlier run folder to ``<output>.previous-<YYYYmmdd-HHMMSS>`` (one atomic rename); return it."""
    import datetime

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    target = output_dir.with_name(f"{output_dir.name}.previous-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = output_dir.with_name(f"{output_dir.name}.previous-{stamp}-{n}")
    output_dir.rename(target)
    return target


def make_way(output_dir: Path, earlier: str | None, resume: bool, if_exists: str, what: str = "학습",
             progress=print) -> Path | None:
    """For a fresh run over an earlier one (``check_earlier_run`` allowed it): move it aside (``"overwrite"``; the new
    place is returned) or delete it (``"replace"``), saying which. Nothing happens when resuming or when there is none."""
    if not earlier or resume:
        return None
    if if_exists == "overwrite":
        moved = move_aside(output_dir)
        progress(f"{output_dir}에 있던 이전 {what}({earlier})을 {moved}로 옮겼습니다")
        return moved
    shutil.rmtree(output_dir)
    progress(f"{output_dir}의 이전 {what}({earlier})을 지우고 새로 시작합니다")
    return None


class CtrlC:
    """While active, the first Ctrl-C (SIGINT) asks the Trainer to save a checkpoint at the end of the current
    step and stop; a second Ctrl-C interrupts at once, as usual. Only in the main thread (where signals arrive)."""

    def __init__(self):
        self.pressed = False
        self.previous = None

    def __enter__(self):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        import signal

        if self.pressed:  # second Ctrl-C: give up on the clean stop
            signal.signal(signal.SIGINT, self.previous)
            raise KeyboardInterrupt
        self.pressed = True
        print("\nCtrl-C: saving a checkpoint at the end of this step, then stopping (Ctrl-C again to stop now)",
              flush=True)

    def __exit__(self, *exc):
        import signal

        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False

    def callback(self):
        """A TrainerCallback that turns the first Ctrl-C into save + stop."""
        from transformers import TrainerCallback

        owner = self

        class StopOnCtrlC(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if owner.pressed:
                    control.should_save = True
                    control.should_training_stop = True

        return StopOnCtrlC()


def disk_full_error(err: OSError, checkpoint_dir: Path, step: int) -> OSError:
    """The message for a full disk while training wrote a checkpoint: where, and which checkpoint still resumes."""
    last = last_complete_checkpoint(checkpoint_dir)
    keep = f"{last.name} is complete and resumes" if last else "no complete checkpoint exists yet"
    return OSError(err.errno, f"disk full while writing a checkpoint in {checkpoint_dir} after step {step} "
                              f"({err.strerror}); {keep}. Free space, then run again with --resume")


@dataclass
class Clock:
    seconds: float = 0.0


@contextlib.contextmanager
def guarded(run, trainer, progress=print):
    """Around the caller's ``trainer.train(...)``: progress lines, Ctrl-C (a checkpoint, then a stop) and a full disk
    (an error that says what to free) handled; yields a ``Clock`` whose ``seconds`` the block took."""
    import errno

    from .monitoring import use_text_progress

    use_text_progress(trainer, progress)
    clock = Clock()
    start = time.perf_counter()
    try:
        with run.ctrl_c:
            yield clock
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise disk_full_error(err, run.checkpoint_dir, trainer.state.global_step) from None
        raise
    finally:
        clock.seconds = time.perf_counter() - start


def losses_before_training(profile, model, test: list, pad: int, output_dir: Path) -> list:
    """The test records' losses before training (``loss.record_losses``), kept in the run folder: a resumed run reads
    the ones its start measured (same model, adapter recipe and records) instead of another pass over the records."""
    from .evaluation import cached_evaluate
    from .loss import record_losses

    key = {"model": profile.model, "dtype": profile.dtype, "quantization": profile.quantization,
           "lora": str(profile.lora), "test": test, "batch_size": profile.train.eval_batch_size}
    return cached_evaluate(output_dir / "test_loss_before.json", key,
                           lambda: record_losses(model, test, pad, profile.train.eval_batch_size))

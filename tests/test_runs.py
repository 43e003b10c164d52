"""A run folder: which checkpoint a resume uses, and whether the folder can be written."""
import shutil
from collections import namedtuple

import pytest

from course_utils.runs import check_writable, last_complete_checkpoint


def test_half_written_checkpoint_is_never_picked(tmp_path):
    for step, files in [(2, ["trainer_state.json", "adapter_model.safetensors", "optimizer.pt", "scheduler.pt"]),
                        (4, ["adapter_model.safetensors"])]:
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        for f in files:
            (d / f).write_text("{}")
    assert last_complete_checkpoint(tmp_path).name == "checkpoint-2"


def test_unwritable_or_full_output_fails_before_training(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError):
        check_writable(blocker / "out")
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10, 10, 1024))
    with pytest.raises(OSError, match=rf"Only 0 MiB free at {tmp_path / 'out'}"):
        check_writable(tmp_path / "out")

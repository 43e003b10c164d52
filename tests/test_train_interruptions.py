"""Hard kills (SIGKILL of a real subprocess) lose nothing: training resumes from the last complete
checkpoint and ends like an uninterrupted run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

HELPERS = Path(__file__).parent / "helpers"
LOSS_TOLERANCE = 0.02  # held-out loss (nats/token) of a resumed run vs the uninterrupted one
KILL_TIMINGS: dict[str, float] = {}


def run_helper(script: str, *args, env=None) -> subprocess.CompletedProcess:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(HELPERS / script), *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "COURSE_PROFILE": "smoke", **(env or {})}, timeout=600)
    KILL_TIMINGS[f"{script} {' '.join(map(str, args[1:]))}"] = time.perf_counter() - start
    return done


def last_json(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return last_json(run_helper("train_and_kill.py", tmp_path_factory.mktemp("reference"), "none"))


@pytest.mark.parametrize("mode,at,resume_from", [("mid-run", 3, "checkpoint-2"), ("mid-save", 4, "checkpoint-2")])
def test_killed_training_resumes_from_last_complete_checkpoint(reference, tmp_path, mode, at, resume_from):
    killed = run_helper("train_and_kill.py", tmp_path, mode, at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    checkpoints = tmp_path / "checkpoints"
    assert (checkpoints / "checkpoint-2" / "trainer_state.json").exists()
    if mode == "mid-save":
        half = checkpoints / f"checkpoint-{at}"
        assert half.exists() and not (half / "trainer_state.json").exists()  # really half written
    assert not (tmp_path / "adapter").exists()
    resumed = last_json(run_helper("train_and_kill.py", tmp_path, "none"))
    assert resumed["resumed_from"].endswith(resume_from)  # the half-written checkpoint is never picked
    assert resumed["global_step"] == reference["global_step"]
    assert resumed["logged_steps"] == reference["logged_steps"]  # each optimizer step logged exactly once
    assert abs(resumed["heldout_loss_after"] - reference["heldout_loss_after"]) < LOSS_TOLERANCE
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    print(f"kill-test timings (s): {KILL_TIMINGS}")


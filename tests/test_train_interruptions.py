"""Hard kills (SIGKILL of a real subprocess), a full disk and Ctrl-C lose nothing: training resumes from the last
complete checkpoint and ends like an uninterrupted run.

Every run is the smoke profile (its model, data and schedule) scored on 2 held-out records instead of 4: these
tests are about checkpoints and processes, and each run evaluates three times."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import smoke_profiles

HELPERS = Path(__file__).parent / "helpers"
LOSS_TOLERANCE = 0.02  # held-out loss (nats/token) of a resumed run vs the uninterrupted one
KILL_TIMINGS: dict[str, float] = {}
STEPS = 10  # the Ctrl-C test's run: SIGINT after step 3 must find training still going


@pytest.fixture(scope="module")
def profiles(tmp_path_factory):
    return smoke_profiles(tmp_path_factory.mktemp("profiles"))


def run_helper(script: str, profiles: Path, *args, env=None) -> subprocess.CompletedProcess:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(HELPERS / script), str(profiles), *map(str, args)], capture_output=True,
                          text=True, env={**os.environ, "COURSE_PROFILE": "smoke", **(env or {})}, timeout=600)
    KILL_TIMINGS[f"{script} {' '.join(map(str, args[1:]))}"] = time.perf_counter() - start
    return done


def trained(profiles: Path, output: Path) -> dict:
    """Train (or resume, when ``output`` has checkpoints) to the end in this process; the measured values compared.
    Only the runs that are killed (tests/helpers/train_and_kill.py) need a process of their own; a resume reads only
    what that process left on disk."""
    from course_utils.memory import free
    from course_utils.profiles import get_profile
    from course_utils.train import train

    result = train(get_profile("smoke", profiles), output, resume=(output / "checkpoints").exists(),
                   progress=lambda m: None)
    result.model = None
    free()
    return {"global_step": result.global_step, "heldout_loss_after": result.heldout_loss_after,
            "resumed_from": result.resumed_from, "logged_steps": [e["step"] for e in result.log_history if "loss" in e]}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, profiles):
    return trained(profiles, tmp_path_factory.mktemp("reference"))


@pytest.mark.parametrize("mode,at,resume_from", [("mid-run", 3, "checkpoint-2"), ("mid-save", 4, "checkpoint-2")])
def test_killed_training_resumes_from_last_complete_checkpoint(reference, profiles, tmp_path, mode, at, resume_from):
    killed = run_helper("train_and_kill.py", profiles, tmp_path, mode, at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    checkpoints = tmp_path / "checkpoints"
    assert (checkpoints / "checkpoint-2" / "trainer_state.json").exists()
    if mode == "mid-save":
        half = checkpoints / f"checkpoint-{at}"
        assert half.exists() and not (half / "trainer_state.json").exists()  # really half written
    assert not (tmp_path / "adapter").exists()
    resumed = trained(profiles, tmp_path)
    assert resumed["resumed_from"].endswith(resume_from)  # the half-written checkpoint is never picked
    assert resumed["global_step"] == reference["global_step"]
    assert resumed["logged_steps"] == reference["logged_steps"]  # each optimizer step logged exactly once
    assert abs(resumed["heldout_loss_after"] - reference["heldout_loss_after"]) < LOSS_TOLERANCE
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    print(f"kill-test timings (s): {KILL_TIMINGS}")



def test_a_full_disk_while_checkpointing_stops_with_a_message_and_the_previous_checkpoint_resumes(reference, profiles,
                                                                                                   tmp_path):
    full = run_helper("train_and_kill.py", profiles, tmp_path, "enospc", 4)
    assert full.returncode == 1
    message = full.stderr.strip().splitlines()[-1]
    assert message == (f"error: [Errno 28] disk full while writing a checkpoint in {tmp_path / 'checkpoints'} after "
                       f"step 4 (No space left on device); checkpoint-2 is complete and resumes. Free space, then run "
                       f"again with --resume")
    assert not (tmp_path / "adapter").exists()
    resumed = trained(profiles, tmp_path)
    assert resumed["resumed_from"].endswith("checkpoint-2")
    assert resumed["global_step"] == reference["global_step"]
    assert abs(resumed["heldout_loss_after"] - reference["heldout_loss_after"]) < LOSS_TOLERANCE


def test_ctrl_c_saves_a_checkpoint_says_how_to_resume_and_the_resume_finishes(tmp_path):
    """SIGINT to a real `python -m course_utils.train` process while it trains (a longer smoke run, so there is time)."""
    profiles = smoke_profiles(tmp_path, max_steps=STEPS, save_steps=STEPS // 2, eval_steps=STEPS // 2)
    out = tmp_path / "run"
    cmd = [sys.executable, "-u", "-m", "course_utils.train", "--profiles", str(profiles), "--profile", "smoke",
           "--output", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COURSE_PROFILE": "smoke"})
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith(f"스텝 3/{STEPS}"):
            proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=300)
    text = "".join(lines)
    assert code == 130, text[-3000:]
    stopped = next(line for line in lines if line.startswith("Ctrl-C로 스텝 "))
    step = int(stopped.split("스텝 ")[1].split("에서")[0])
    assert 3 <= step < STEPS
    assert f"--output {out} --resume" in stopped
    assert (out / "checkpoints" / f"checkpoint-{step}" / "trainer_state.json").exists()
    assert not (out / "adapter").exists()  # not finished
    assert f"{step} 스텝 학습 후 시험 세트 손실 (" in text  # the model it stopped with, as 07 and 09 print it
    done = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, env={**os.environ, "COURSE_PROFILE": "smoke"},
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"스텝 {step}/{STEPS}에서 이어 갑니다" in done.stdout
    assert (out / "adapter" / "adapter_model.safetensors").exists()

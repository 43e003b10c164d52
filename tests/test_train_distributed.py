"""The training entry point of notebook 05 under `accelerate launch`: 2 CPU processes, DDP over gloo (the smoke
profile, scored on 2 held-out records)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import smoke_profiles

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "accelerate"


def test_accelerate_launch_two_cpu_processes(tmp_path):
    accelerate = Path(sys.executable).with_name("accelerate")
    assert accelerate.exists() or shutil.which("accelerate"), "accelerate CLI missing from the environment"
    out, profiles = tmp_path / "ddp", smoke_profiles(tmp_path)
    # the shipped DDP config (distributed_type MULTI_GPU = accelerate's torchrun launcher); without CUDA
    # each rank runs on the CPU and torch.distributed uses gloo. fp16 is a GPU setting: off here.
    cmd = [str(accelerate if accelerate.exists() else "accelerate"), "launch", "--config_file", str(CONFIGS / "ddp.yaml"),
           "--mixed_precision", "no",
           "-m", "course_utils.train", "--profiles", str(profiles), "--profile", "smoke", "--output", str(out)]
    env = {**os.environ, "COURSE_PROFILE": "smoke", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    assert "rank 0/2: 스텝 4에서 끝 — 어댑터를" in log, log[-4000:]
    assert "rank 1/2: 스텝 4에서 끝 — 어댑터는 rank 0이 저장합니다" in log, log[-4000:]
    assert "rank 1/2: 스텝 4에서 끝 — 어댑터를" not in log
    # gradients were synchronized: both ranks end with the same weights, so the same test loss
    after = re.findall(r"4 스텝 학습 후 시험 세트 손실 \([^)]*\): (\d+\.\d+)", log)
    assert len(after) == 2 and after[0] == after[1], after
    # one adapter and one TensorBoard log, written once (no temporary folders of a second writer left behind)
    assert sorted(p.name for p in out.iterdir()) == ["adapter", "checkpoints", "tensorboard", "test_loss_before.json"]
    assert len(list((out / "tensorboard").glob("events.out.tfevents.*"))) == 1
    meta = json.loads((out / "adapter" / "course_adapter.json").read_text())
    assert meta["world_size"] == 2 and meta["global_step"] == 4

    from course_utils.adapter import load_adapter_model
    from course_utils.profiles import get_profile

    model, _, meta = load_adapter_model(out / "adapter", get_profile("smoke", profiles))
    assert any("lora_A" in name for name, _ in model.named_parameters())


@pytest.mark.parametrize("name", ["ddp.yaml", "deepspeed_zero2.yaml", "fsdp.yaml"])
def test_shipped_accelerate_configs_are_valid_for_this_accelerate(name):
    from accelerate.commands.config.config_args import ClusterConfig

    config = ClusterConfig.from_yaml_file(str(CONFIGS / name))  # unknown keys raise
    assert config.num_processes == 2 and config.num_machines == 1
    assert config.distributed_type.value == {"ddp.yaml": "MULTI_GPU", "deepspeed_zero2.yaml": "DEEPSPEED",
                                             "fsdp.yaml": "FSDP"}[name]

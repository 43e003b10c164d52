"""Notebook 00's checks: each failing machine gets advice that names the fix."""
from __future__ import annotations

import pytest

from course_utils.setup_check import diagnose, gather_facts

CPU_LAPTOP = {
    "python": "3.11.7", "torch": "2.13.0+cpu", "torch_cuda_build": None, "cuda_available": False, "nvidia_smi": False,
    "gpu_name": None, "gpu_memory_bytes": None, "cpu_count": 4,
    "bitsandbytes": {"installed": True, "version": "0.50.2", "nf4_works": True, "device": "cpu"},
    "profile": "cpu", "profile_from_env": False, "network": False, "hub_offline": True,
    "offline_models": {"gemma-3-270m": {"installed": True, "cached": False}},
    "cache_root": "/home/me/.cache/lora-8gb-course", "free_disk_bytes": 50 * 1024**3, "runtime": None,
}


def by_name(checks):
    return {c.name: c for c in checks}


def test_a_healthy_cpu_laptop_passes_everything():
    checks = by_name(diagnose(CPU_LAPTOP))
    assert all(c.ok for c in checks.values()), [c for c in checks.values() if not c.ok]
    assert checks["profile"].value == "cpu (no CUDA)"
    assert checks["torch"].value == "2.13.0+cpu (CPU-only build)"
    assert "converted on first use" in checks["model gemma-3-270m"].value


@pytest.mark.parametrize("change,name,advice", [
    ({"nvidia_smi": True}, "torch", r"NVIDIA GPU but torch is a CPU-only build. Install a CUDA build: pip install torch"),
    ({"nvidia_smi": True, "torch_cuda_build": "12.6"}, "GPU", r"driver is missing or too old"),
    ({"bitsandbytes": {"installed": False}}, "bitsandbytes", r"pip install bitsandbytes==0\.50\.2"),
    ({"bitsandbytes": {"installed": True, "nf4_works": False, "error": "RuntimeError: no CUDA libs"}}, "bitsandbytes",
     r"no CUDA libs\. Reinstall bitsandbytes"),
    ({"free_disk_bytes": 2 * 1024**3}, "free disk", r"needs about 5 GiB; free space or set COURSE_CACHE"),
    ({"profile": "gpu8gb", "profile_from_env": True}, "profile", r"gpu8gb needs CUDA: set COURSE_PROFILE=cpu"),
    ({"cuda_available": True, "torch_cuda_build": "12.6", "nvidia_smi": True, "gpu_name": "GTX 1650",
      "gpu_memory_bytes": 4 * 1024**3}, "GPU", r"Less than 8 GB: use seq_len 256"),
    ({"offline_models": {"gemma-3-270m": {"installed": False, "cached": False}}}, "model gemma-3-270m",
     r"make \.venv/\.installed"),
    ({"python": "3.9.18"}, "Python", r"Python 3\.10 or newer"),
])
def test_each_broken_machine_gets_named_advice(change, name, advice):
    import re

    check = by_name(diagnose({**CPU_LAPTOP, **change}))[name]
    assert not check.ok
    assert re.search(advice, check.advice), check.advice


def test_an_8gb_gpu_selects_gpu8gb_and_reports_memory():
    gpu = {**CPU_LAPTOP, "cuda_available": True, "torch_cuda_build": "12.6", "nvidia_smi": True,
           "gpu_name": "NVIDIA GeForce RTX 3070", "gpu_memory_bytes": 8 * 1024**3, "profile": "gpu8gb",
           "bitsandbytes": {"installed": True, "version": "0.50.2", "nf4_works": True, "device": "cuda"}}
    checks = by_name(diagnose(gpu))
    assert all(c.ok for c in checks.values())
    assert checks["GPU"].value == "NVIDIA GeForce RTX 3070, 8.0 GiB"
    assert checks["profile"].value == "gpu8gb (CUDA found)"


def test_this_machine_is_read(monkeypatch):
    monkeypatch.setattr("course_utils.setup_check._network", lambda *a, **k: False)
    facts = gather_facts()
    assert facts["torch"].startswith("2.13") and facts["free_disk_bytes"] > 0
    assert facts["bitsandbytes"]["installed"] and facts["bitsandbytes"]["nf4_works"]  # nf4 runs on the CPU here
    assert set(facts["offline_models"]) == {"gemma-3-270m", "smollm2-135m-instruct"}
    names = [c.name for c in diagnose(facts)]
    assert names[:3] == ["Python", "torch", "GPU"] and "profile" in names

"""Notebook 00's checks: each failing machine gets advice that names the fix."""
from __future__ import annotations

import pytest

from course_utils.setup_check import diagnose, gather_facts
from course_utils.units import GIB

CPU_LAPTOP = {
    "python": "3.11.7", "torch": "2.13.0+cpu", "torch_cuda_build": None, "cuda_available": False, "nvidia_smi": False,
    "gpu_name": None, "gpu_memory_bytes": None, "cpu_count": 4,
    "bitsandbytes": {"installed": True, "version": "0.50.2", "nf4_works": True, "device": "cpu"},
    "profile": "cpu", "profile_from_env": False, "network": False, "hub_offline": True,
    "offline_models": {"gemma-3-270m": {"installed": True, "cached": False}},
    "cache_root": "/home/me/.cache/lora-8gb-course", "free_disk_bytes": 50 * GIB,
}


def by_name(checks):
    return {c.name: c for c in checks}


def test_a_healthy_cpu_laptop_passes_everything():
    checks = by_name(diagnose(CPU_LAPTOP))
    assert all(c.ok for c in checks.values()), [c for c in checks.values() if not c.ok]
    assert checks["프로필"].value == "cpu (CUDA 없음)"
    assert checks["torch"].value == "2.13.0+cpu (CPU 전용 빌드)"
    assert "처음 쓸 때 한 번 변환" in checks["모델 gemma-3-270m"].value


@pytest.mark.parametrize("change,name,advice", [
    ({"nvidia_smi": True}, "torch", r"NVIDIA GPU가 있는데 torch가 CPU 전용 빌드입니다\. CUDA 빌드를 설치하세요: pip install torch"),
    ({"nvidia_smi": True, "torch_cuda_build": "12.6"}, "GPU", r"드라이버가 없거나 .* 너무 오래되었습니다"),
    ({"bitsandbytes": {"installed": False}}, "bitsandbytes", r"pip install bitsandbytes==0\.50\.2"),
    ({"bitsandbytes": {"installed": True, "nf4_works": False, "error": "RuntimeError: no CUDA libs"}}, "bitsandbytes",
     r"no CUDA libs\. bitsandbytes==0\.50\.2를 다시 설치하세요"),
    ({"free_disk_bytes": 2 * GIB}, "남은 디스크", r"cpu 프로필에는 약 5 GiB가 필요합니다.*: 공간을 비우거나 COURSE_CACHE"),
    ({"profile": "gpu8gb", "profile_from_env": True}, "프로필",
     r"gpu8gb에는 CUDA가 필요합니다: COURSE_PROFILE을 cpu로 .*export COURSE_PROFILE=cpu.*\$env:COURSE_PROFILE=\"cpu\""),
    ({"cuda_available": True, "torch_cuda_build": "12.6", "nvidia_smi": True, "gpu_name": "GTX 1650",
      "gpu_memory_bytes": 4 * GIB, "gpu_free_bytes": 3 * GIB}, "GPU", r"8 GB보다 작습니다: .*seq_len을 256"),
    # an 8 GB card another program already fills (at d545876 only the card's total was compared)
    ({"cuda_available": True, "torch_cuda_build": "12.6", "nvidia_smi": True, "gpu_name": "RTX 3070",
      "gpu_memory_bytes": 8 * GIB, "gpu_free_bytes": GIB}, "GPU", r"지금 비어 있는 메모리가 gpu8gb 학습의 추정 .* nvidia-smi"),
    # gpu8gb writes more than 5 GiB: Mi:dm 2.0 Mini (2.3 B values) from the hub, merged in bf16, two GGUF files
    ({"profile": "gpu8gb", "cuda_available": True, "torch_cuda_build": "12.6", "nvidia_smi": True, "gpu_name": "RTX 3070",
      "gpu_memory_bytes": 8 * GIB, "gpu_free_bytes": 7 * GIB, "free_disk_bytes": 6 * GIB}, "남은 디스크",
     r"gpu8gb 프로필에는 약 16 GiB가 필요합니다"),
    ({"offline_models": {"gemma-3-270m": {"installed": False, "cached": False}}}, "모델 gemma-3-270m",
     r"python -m course_utils\.course setup.*Windows: `py -3\.11 -m course_utils\.course setup"),
    ({"python": "3.9.18"}, "Python", r"Python 3\.10 이상"),
])
def test_each_broken_machine_gets_named_advice(change, name, advice):
    import re

    check = by_name(diagnose({**CPU_LAPTOP, **change}))[name]
    assert not check.ok
    assert re.search(advice, check.advice), check.advice


def test_an_8gb_gpu_selects_gpu8gb_and_reports_memory():
    gpu = {**CPU_LAPTOP, "cuda_available": True, "torch_cuda_build": "12.6", "nvidia_smi": True,
           "gpu_name": "NVIDIA GeForce RTX 3070", "gpu_memory_bytes": 8 * GIB, "gpu_free_bytes": int(7.4 * GIB),
           "profile": "gpu8gb",
           "bitsandbytes": {"installed": True, "version": "0.50.2", "nf4_works": True, "device": "cuda"}}
    checks = by_name(diagnose(gpu))
    assert all(c.ok for c in checks.values())
    assert checks["GPU"].value == "NVIDIA GeForce RTX 3070, 8.0 GiB (지금 비어 있음 7.4 GiB)"
    assert checks["프로필"].value == "gpu8gb (CUDA 있음)"


def test_this_machine_is_read(monkeypatch):
    monkeypatch.setattr("course_utils.setup_check._network", lambda *a, **k: False)
    facts = gather_facts()
    assert facts["torch"].startswith("2.13") and facts["free_disk_bytes"] > 0
    assert facts["bitsandbytes"]["installed"] and facts["bitsandbytes"]["nf4_works"]  # nf4 runs on the CPU here
    assert set(facts["offline_models"]) == {"gemma-3-270m", "smollm2-135m-instruct"}
    names = [c.name for c in diagnose(facts)]
    assert names[:3] == ["Python", "torch", "GPU"] and "프로필" in names


@pytest.mark.parametrize("change,value,advice", [
    ({"os": "Windows", "machine": "AMD64"}, "Windows (AMD64)", r"python -m course_utils\.course setup / test / run / lab"),
    ({"os": "Darwin", "machine": "arm64", "mps_available": True}, "macOS, Apple Silicon (MPS 있음)",
     r"bitsandbytes 4비트가 macOS에서 되는지는 시험하지 않았습니다.*bitsandbytes 줄.*미검증"),
    ({"os": "Linux", "colab": True}, "Google Colab", r"T4|GPU 런타임이면 gpu8gb\(fp16\)"),
    ({"os": "Linux", "machine": "x86_64"}, "Linux (x86_64)", r"python3 -m course_utils\.course run"),
])
def test_each_platform_gets_korean_advice_and_cpu_without_cuda(change, value, advice):
    import re

    checks = by_name(diagnose({**CPU_LAPTOP, **change}))
    assert checks["운영 체제"].value == value and re.search(advice, checks["운영 체제"].advice)
    assert checks["프로필"].value == "cpu (CUDA 없음)"  # no CUDA: the cpu profile, on every platform


def test_where_to_run_covers_windows_macos_and_colab():
    from course_utils.setup_check import where_to_run

    places = [row["어디서"] for row in where_to_run()]
    assert places == ["Linux, WSL2", "Windows (PowerShell)", "macOS (Apple Silicon)", "Google Colab"]

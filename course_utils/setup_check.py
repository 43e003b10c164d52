"""What this machine is and what that means for the course (notebook 00).

``gather_facts()`` reads the machine (versions, GPU, bitsandbytes, disk, network, offline models);
``diagnose(facts)`` turns facts into checks with advice, and is a pure function so every failing
case can be tested without that hardware.
"""
from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from .data import hub_offline
from .units import GIB

MIN_FREE_DISK = 5 * GIB  # bytes, at least: the offline models' caches, checkpoints (disk_needed counts per profile)


def disk_needed(profile_name: str) -> int:
    """Bytes the profile's run writes, at least ``MIN_FREE_DISK``: the base weights once (a hub download in fp16, or
    the fp32 safetensors cache of a GGUF model), the merged model in the training dtype (07), the F16 and Q8_0 GGUF
    exports (08: 2 and about 1.06 bytes per value), and 1 GiB for checkpoints, data and tokenizer caches."""
    from .models import count_params, get_spec, meta_model
    from .profiles import get_profile
    from .vram import DTYPE_BYTES

    profile = get_profile(profile_name)
    spec = get_spec(profile.model)
    values = count_params(meta_model(spec)).total
    base = 4 if spec.source == "gguf" else 2
    merged = DTYPE_BYTES[profile.dtype]
    return max(MIN_FREE_DISK, int(values * (base + merged + 2 + 1.0625)) + GIB)
CUDA_TORCH_HINT = ("pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126  "
                   "(pick the CUDA version your driver supports)")


@dataclass
class Check:
    name: str
    value: str
    ok: bool  # False: something to fix before the course runs as intended
    advice: str = ""


def _network(host: str = "huggingface.co", port: int = 443, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _bitsandbytes(cuda: bool) -> dict:
    """Whether bitsandbytes imports and quantizes nf4 on this machine's device."""
    if importlib.util.find_spec("bitsandbytes") is None:
        return {"installed": False}
    try:
        import bitsandbytes as bnb
        import torch

        from .quantization import quantize_nf4

        device = "cuda" if cuda else "cpu"
        ok = quantize_nf4(torch.randn(64, 64, device=device)).restored.shape == (64, 64)
        return {"installed": True, "version": bnb.__version__, "nf4_works": ok, "device": device}
    except Exception as err:  # a broken CUDA setup raises many kinds
        return {"installed": True, "nf4_works": False, "error": f"{type(err).__name__}: {err}"[:200]}


def offline_models() -> dict[str, dict]:
    """For each offline (GGUF) model: is its package installed, is the safetensors cache built. A model cut from
    another (smoke's first blocks of SmolLM2) is not listed: it comes with the whole model's package."""
    from .loading import is_cached
    from .models import MODELS

    found = {}
    for key, spec in MODELS.items():
        if spec.source == "gguf" and not spec.truncated_from:
            found[key] = {"installed": importlib.util.find_spec(spec.gguf_package) is not None,
                          "cached": is_cached(spec)}
    return found


def gather_facts() -> dict:
    """Read this machine. Takes a few seconds (one small nf4 quantization, a 2 s network probe)."""
    import torch

    from .gguf import cache_root
    from .profiles import default_profile_name
    from .timing import machine_kind

    cuda = torch.cuda.is_available()
    facts = {
        "python": platform.python_version(), "torch": torch.__version__, "torch_cuda_build": torch.version.cuda,
        "cuda_available": cuda, "nvidia_smi": shutil.which("nvidia-smi") is not None,
        "gpu_name": torch.cuda.get_device_name(0) if cuda else None,
        "gpu_memory_bytes": torch.cuda.get_device_properties(0).total_memory if cuda else None,
        # free now, with this process's CUDA context made: what is left after the desktop and other programs
        "gpu_free_bytes": torch.cuda.mem_get_info()[0] if cuda else None,
        "cpu_count": os.cpu_count(), "bitsandbytes": _bitsandbytes(cuda),
        "profile": default_profile_name(), "profile_from_env": bool(os.environ.get("COURSE_PROFILE")),
        "network": _network(), "hub_offline": hub_offline(),
        "offline_models": offline_models(),
        "os": platform.system(), "machine": platform.machine(), "colab": "google.colab" in sys.modules,
        "mps_available": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
    }
    root = cache_root()
    probe = next((p for p in [root, *root.parents] if p.exists()), Path.home())
    facts["cache_root"] = str(root)
    facts["free_disk_bytes"] = shutil.disk_usage(probe).free
    facts["machine_kind"] = machine_kind()
    return facts


def diagnose(facts: dict) -> list[Check]:
    """Checks with advice, in Korean, from ``gather_facts()`` output (pure: tests pass made-up machines)."""
    checks = []
    py_ok = tuple(int(x) for x in facts["python"].split(".")[:2]) >= (3, 10)
    checks.append(Check("Python", facts["python"], py_ok, "" if py_ok else "Python 3.10 이상을 쓰세요"))
    build = f"CUDA {facts['torch_cuda_build']} 빌드" if facts["torch_cuda_build"] else "CPU 전용 빌드"
    torch_ok = not (facts["nvidia_smi"] and not facts["torch_cuda_build"])
    checks.append(Check("torch", f"{facts['torch']} ({build})", torch_ok, "" if torch_ok else
                        f"이 컴퓨터에는 NVIDIA GPU가 있는데 torch가 CPU 전용 빌드입니다. CUDA 빌드를 설치하세요: {CUDA_TORCH_HINT}"))
    if facts["cuda_available"]:
        gib, free = facts["gpu_memory_bytes"] / GIB, facts["gpu_free_bytes"]
        need = gpu_needed()
        if gib < 7.5:
            advice = "8 GB보다 작습니다: gpu8gb 프로필에서 seq_len을 256으로 줄이거나 cpu 프로필을 쓰세요"
        elif free < need:
            advice = (f"지금 비어 있는 메모리가 gpu8gb 학습의 추정 {need / GIB:.2f} GiB보다 적습니다: 다른 프로그램(다른 "
                      f"노트북 커널, 게임, 브라우저의 GPU 가속)이 카드를 쓰고 있습니다. nvidia-smi로 확인하고 닫으세요")
        else:
            advice = ""
        checks.append(Check("GPU", f"{facts['gpu_name']}, {gib:.1f} GiB (지금 비어 있음 {free / GIB:.1f} GiB)",
                            not advice, advice))
    elif facts["torch_cuda_build"] and facts["nvidia_smi"]:
        checks.append(Check("GPU", "CUDA 빌드지만 쓸 수 있는 GPU가 없음", False,
                            "NVIDIA 드라이버가 없거나 이 torch 빌드에 비해 너무 오래되었습니다: 드라이버를 업데이트하거나"
                            "(nvidia-smi가 동작해야 합니다) 자기 CUDA 버전에 맞는 torch 빌드를 설치하세요"))
    else:
        checks.append(Check("GPU", "없음 (CPU만)", True, "cpu 프로필로 강좌 전체를 CPU에서 실행합니다"))
    bnb = facts["bitsandbytes"]
    if not bnb.get("installed"):
        checks.append(Check("bitsandbytes", "설치되지 않음", False,
                            "pip install bitsandbytes==0.50.2 (02, 05, 07에 필요합니다)"))
    elif not bnb.get("nf4_works"):
        where = "GPU" if facts["cuda_available"] else "CPU"
        checks.append(Check("bitsandbytes", f"설치됨, {where}에서 nf4 실패", False,
                            f"{bnb.get('error', '')}. bitsandbytes==0.50.2를 다시 설치하세요 (Reinstall bitsandbytes); "
                            f"GPU라면 `python -m bitsandbytes`가 CUDA 라이브러리를 찾는지 확인하세요"))
    else:
        note = "" if facts["cuda_available"] else "4비트 층이 CPU에서 (느리게) 돕니다: 실제 양자화, 속도는 CPU 속도"
        checks.append(Check("bitsandbytes", f"{bnb['version']}, {bnb['device']}에서 nf4 동작", True, note))
    free, need_disk = facts["free_disk_bytes"], disk_needed(facts["profile"])
    disk_ok = free >= need_disk
    checks.append(Check("남은 디스크", f"{free / GIB:.1f} GiB ({facts['cache_root']})", disk_ok, "" if disk_ok else
                        f"{facts['profile']} 프로필에는 약 {need_disk / GIB:.0f} GiB가 필요합니다(기본 모델, 병합 모델, "
                        f"GGUF 두 개, 체크포인트): 공간을 비우거나 COURSE_CACHE를 여유 있는 디스크로 지정하세요"))
    if facts["network"] and not facts["hub_offline"]:
        checks.append(Check("네트워크", "Hugging Face Hub 연결됨", True, "허브 모델과 KoAlpaca 허브 데이터를 내려받을 수 있습니다"))
    else:
        checks.append(Check("네트워크", "오프라인", True,
                            "smoke와 cpu 프로필은 오프라인으로 동작합니다; 허브 모델(gpu8gb의 Mi:dm 2.0 Mini, TinyLlama, Phi-2 등)은 한 번 인터넷이 필요합니다"))
    for key, state in facts["offline_models"].items():
        if not state["installed"]:
            checks.append(Check(f"모델 {key}", "설치되지 않음", False,
                                "`python -m course_utils.course setup`을 실행하세요 (Windows: `py -3.11 -m "
                                "course_utils.course setup`). 강좌의 패키지를 설치합니다"))
        else:
            checks.append(Check(f"모델 {key}", "캐시 있음" if state["cached"] else "설치됨, 처음 쓸 때 한 번 변환 (2코어 CPU에서 수십 초)", True))
    reason = "COURSE_PROFILE" if facts["profile_from_env"] else ("CUDA 있음" if facts["cuda_available"] else "CUDA 없음")
    wants_gpu = facts["profile"] == "gpu8gb"
    profile_ok = not (wants_gpu and not facts["cuda_available"])
    checks.append(Check("프로필", f"{facts['profile']} ({reason})", profile_ok, "" if profile_ok else
                        "gpu8gb에는 CUDA가 필요합니다: COURSE_PROFILE을 cpu로 바꾸거나 (bash: `export COURSE_PROFILE=cpu`, "
                        "PowerShell: `$env:COURSE_PROFILE=\"cpu\"`) CUDA용 torch를 설치하세요"))
    checks.append(platform_check(facts))
    return checks


def gpu_needed() -> int:
    """Bytes of free GPU memory gpu8gb's training needs (the estimator, QLoRA, at its seq_len and batch), without the
    CUDA context: a process that reads ``mem_get_info`` has made its own context already."""
    from .profiles import get_profile
    from .vram import estimate_vram

    p = get_profile("gpu8gb")
    est = estimate_vram(p.model, "qlora", p.seq_len, p.batch_size, p.lora.r, p.lora.targets, p.gradient_checkpointing,
                        p.optimizer, p.dtype, p.lora.dropout)
    return est.total - est.terms["cuda_context"]


def platform_check(facts: dict) -> Check:
    """What this operating system means for the course (Korean advice). macOS advice is what the code checks:
    no MPS machine has run the course, so MPS training is not offered."""
    system = facts.get("os", "Linux")
    if facts.get("colab"):
        return Check("운영 체제", "Google Colab", True, "첫 셀이 강좌를 설치하고 GPU 런타임이면 gpu8gb(T4는 fp16), 아니면 cpu 프로필을 고릅니다")
    if system == "Windows":
        return Check("운영 체제", f"Windows ({facts.get('machine', '')})", True,
                     "make 없이: python -m course_utils.course setup / test / run / lab (README의 Windows 절). "
                     "GPU는 CUDA용 torch를 먼저 설치하세요. WSL2에서는 Linux와 같습니다")
    if system == "Darwin":
        if facts.get("machine") == "arm64":
            mps = "MPS 있음" if facts.get("mps_available") else "MPS 없음"
            return Check("운영 체제", f"macOS, Apple Silicon ({mps})", True,
                         "cpu 프로필로 CPU에서 실행합니다. 02, 07의 QLoRA 절에 필요한 bitsandbytes 4비트가 macOS에서 되는지는 "
                         "시험하지 않았습니다(이 표의 bitsandbytes 줄이 이 컴퓨터에서 nf4를 직접 시험한 결과입니다). "
                         "MPS로 학습하는 경로는 이 강좌가 시험하지 않아 제공하지 않습니다(미검증)")
        return Check("운영 체제", "macOS (Intel)", True, "cpu 프로필로 CPU에서 실행합니다 (macOS에서는 시험하지 않았습니다)")
    return Check("운영 체제", f"{system} ({facts.get('machine', '')})", True,
                 "python3 -m course_utils.course run / test / lab (make course, make test와 같습니다)")


def where_to_run() -> list[dict]:
    """How the course runs on each kind of machine (notebook 00 shows it; README has the commands)."""
    return [{"어디서": "Linux, WSL2", "시작": "python3 -m course_utils.course run (make course와 같음)",
             "프로필": "CUDA 있으면 gpu8gb, 없으면 cpu", "비고": "CI가 매번 이 환경에서 시험합니다"},
            {"어디서": "Windows (PowerShell)", "시작": "python -m course_utils.course setup, 그다음 run / lab / test",
             "프로필": "CUDA용 torch를 먼저 설치하면 gpu8gb", "비고": "make와 .venv/bin 대신 .venv\\Scripts"},
            {"어디서": "macOS (Apple Silicon)", "시작": "python3 -m course_utils.course setup, 그다음 run",
             "프로필": "cpu", "비고": "bitsandbytes 4비트 없음, MPS 학습은 미검증"},
            {"어디서": "Google Colab", "시작": "노트북을 열고 첫 셀 실행 (강좌를 설치)",
             "프로필": "T4 GPU면 gpu8gb (fp16), 아니면 cpu", "비고": "무료 T4 16 GB, bf16 없음: gpu8gb의 bf16 대신 fp16"}]


def checks_table(checks: list[Check]):
    """A table for the notebook: check, value, status, advice, every text whole (no "…" cut)."""
    import pandas as pd

    table = pd.DataFrame([{"항목": c.name, "값": c.value, "상태": "OK" if c.ok else "고칠 것", "조언": c.advice}
                          for c in checks])
    return table.style.hide(axis="index").set_properties(**{"text-align": "left", "white-space": "pre-wrap"})

"""What this machine is and what that means for the course (notebook 00).

``gather_facts()`` reads the machine (versions, GPU, bitsandbytes, disk, network, offline models);
``diagnose(facts)`` turns facts into checks with advice, and is a pure function so every failing
case can be tested without that hardware.
"""
from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

MIN_FREE_DISK = 5 * 1024**3  # bytes: two model caches, checkpoints and merged models
CUDA_TORCH_HINT = ("pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126  "
                   "(pick the CUDA version your driver supports)")
RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"


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
    """For each offline (GGUF) model: is its package installed, is the safetensors cache built."""
    from .loading import is_cached
    from .models import MODELS

    found = {}
    for key, spec in MODELS.items():
        if spec.source == "gguf":
            found[key] = {"installed": importlib.util.find_spec(spec.gguf_package) is not None,
                          "cached": is_cached(spec)}
    return found


def measured_runtime(profile: str) -> dict | None:
    """The newest committed `benchmarks/course_runtime.py` result for a profile (seconds, machine)."""
    files = sorted(RESULTS.glob(f"course_runtime_{profile}_*.json"))
    if not files:
        return None
    data = json.loads(files[-1].read_text())
    return {"total_seconds": data["total_seconds"], "date": data["date"], "cpu_count": data["cpu_count"],
            "gpu": data.get("gpu"), "file": files[-1].name}


def gather_facts() -> dict:
    """Read this machine. Takes a few seconds (one small nf4 quantization, a 2 s network probe)."""
    import torch

    from .loading import cache_root
    from .profiles import default_profile_name

    cuda = torch.cuda.is_available()
    facts = {
        "python": platform.python_version(), "torch": torch.__version__, "torch_cuda_build": torch.version.cuda,
        "cuda_available": cuda, "nvidia_smi": shutil.which("nvidia-smi") is not None,
        "gpu_name": torch.cuda.get_device_name(0) if cuda else None,
        "gpu_memory_bytes": torch.cuda.get_device_properties(0).total_memory if cuda else None,
        "cpu_count": os.cpu_count(), "bitsandbytes": _bitsandbytes(cuda),
        "profile": default_profile_name(), "profile_from_env": bool(os.environ.get("COURSE_PROFILE")),
        "network": _network(), "hub_offline": os.environ.get("HF_HUB_OFFLINE") == "1",
        "offline_models": offline_models(),
    }
    root = cache_root()
    probe = next((p for p in [root, *root.parents] if p.exists()), Path.home())
    facts["cache_root"] = str(root)
    facts["free_disk_bytes"] = shutil.disk_usage(probe).free
    facts["runtime"] = measured_runtime(facts["profile"])
    return facts


def diagnose(facts: dict) -> list[Check]:
    """Checks with advice from ``gather_facts()`` output (pure: tests pass made-up machines)."""
    checks = []
    py_ok = tuple(int(x) for x in facts["python"].split(".")[:2]) >= (3, 10)
    checks.append(Check("Python", facts["python"], py_ok, "" if py_ok else "Use Python 3.10 or newer"))
    build = f"CUDA {facts['torch_cuda_build']}" if facts["torch_cuda_build"] else "CPU-only build"
    torch_ok = not (facts["nvidia_smi"] and not facts["torch_cuda_build"])
    checks.append(Check("torch", f"{facts['torch']} ({build})", torch_ok, "" if torch_ok else
                        f"This machine has an NVIDIA GPU but torch is a CPU-only build. Install a CUDA build: {CUDA_TORCH_HINT}"))
    if facts["cuda_available"]:
        gib = facts["gpu_memory_bytes"] / 1024**3
        checks.append(Check("GPU", f"{facts['gpu_name']}, {gib:.1f} GiB", gib >= 7.5, "" if gib >= 7.5 else
                            "Less than 8 GB: use seq_len 256 in the gpu8gb profile, or the cpu profile"))
    elif facts["torch_cuda_build"] and facts["nvidia_smi"]:
        checks.append(Check("GPU", "CUDA build, but no GPU usable", False,
                            "The NVIDIA driver is missing or too old for this torch build: update the driver "
                            "(nvidia-smi must work) or install a torch build for your CUDA version"))
    else:
        checks.append(Check("GPU", "none (CPU only)", True, "The cpu profile runs the whole course on the CPU"))
    bnb = facts["bitsandbytes"]
    if not bnb.get("installed"):
        checks.append(Check("bitsandbytes", "not installed", False, "pip install bitsandbytes==0.50.2 (needed for 02, 05, 07)"))
    elif not bnb.get("nf4_works"):
        where = "the GPU" if facts["cuda_available"] else "the CPU"
        checks.append(Check("bitsandbytes", f"installed, nf4 fails on {where}", False,
                            f"{bnb.get('error', '')}. Reinstall bitsandbytes==0.50.2; on a GPU check "
                            f"`python -m bitsandbytes` finds the CUDA libraries"))
    else:
        note = "" if facts["cuda_available"] else "4-bit layers run on the CPU (slowly): real quantization, CPU speed"
        checks.append(Check("bitsandbytes", f"{bnb['version']}, nf4 works on {bnb['device']}", True, note))
    free = facts["free_disk_bytes"]
    disk_ok = free >= MIN_FREE_DISK
    checks.append(Check("free disk", f"{free / 1024**3:.1f} GiB at {facts['cache_root']}", disk_ok, "" if disk_ok else
                        f"The course needs about {MIN_FREE_DISK / 1024**3:.0f} GiB; free space or set COURSE_CACHE "
                        f"to a disk with room"))
    if facts["network"] and not facts["hub_offline"]:
        checks.append(Check("network", "Hugging Face Hub reachable", True, "Hub models and the KoAlpaca hub copy can be downloaded"))
    else:
        checks.append(Check("network", "offline", True,
                            "smoke and cpu profiles work offline; hub models (TinyLlama, Phi-2, ...) need the internet once"))
    for key, state in facts["offline_models"].items():
        if not state["installed"]:
            checks.append(Check(f"model {key}", "not installed", False, "Run `make .venv/.installed` (installs the course's packages)"))
        else:
            checks.append(Check(f"model {key}", "cached" if state["cached"] else "installed, converted on first use (15-45 s)", True))
    reason = "COURSE_PROFILE" if facts["profile_from_env"] else ("CUDA found" if facts["cuda_available"] else "no CUDA")
    wants_gpu = facts["profile"] == "gpu8gb"
    profile_ok = not (wants_gpu and not facts["cuda_available"])
    checks.append(Check("profile", f"{facts['profile']} ({reason})", profile_ok, "" if profile_ok else
                        "gpu8gb needs CUDA: set COURSE_PROFILE=cpu, or install a CUDA build of torch"))
    run = facts.get("runtime")
    if run:
        where = run["gpu"] or f"{run['cpu_count']}-core CPU"
        checks.append(Check("expected runtime", f"{run['total_seconds'] / 60:.1f} min for the whole course, 00-07 (measured {run['date']} "
                            f"on a {where})", True, "Your machine may be faster or slower"))
    return checks


def checks_table(checks: list[Check]):
    """A pandas table for the notebook: check, value, status, advice."""
    import pandas as pd

    return pd.DataFrame([{"항목": c.name, "값": c.value, "상태": "OK" if c.ok else "고칠 것", "조언": c.advice}
                         for c in checks])

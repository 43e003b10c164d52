"""What this machine's GPU means for a profile: refuse a CUDA profile without CUDA, and pick the dtype a model can
run in on this card (bf16 where fp16 overflows). Both run before anything loads or is written."""
from __future__ import annotations

from .models import MODELS
from .profiles import Profile, ProfileError


def check_device(profile: Profile) -> None:
    """Refuse a CUDA profile on a machine where torch sees no CUDA device (before anything is written)."""
    import torch

    if profile.device == "cuda" and not torch.cuda.is_available():
        raise ProfileError(f"profile {profile.name!r} needs a CUDA GPU, but torch {torch.__version__} sees no CUDA "
                           f"device (torch.cuda.is_available() is False). Use --profile cpu on this machine, or "
                           f"install a CUDA build of torch (README: GPU)")


def profile_device(profile: Profile) -> str:
    """Where the profile's training and models run on this machine: "cuda" for a cuda profile where torch sees CUDA,
    else "cpu"."""
    import torch

    return "cuda" if profile.device == "cuda" and torch.cuda.is_available() else "cpu"


def for_this_card(profile: Profile) -> Profile:
    """The profile in the dtype its model can run in on this machine's GPU (unchanged without CUDA, for fp32, and
    where the card computes the profile's dtype).

    A card computes bf16 natively from compute capability 8.0 (an RTX 3070 is 8.6; a T4 is 7.5, and torch's default
    ``is_bf16_supported`` also counts slow emulation there, hence ``including_emulation=False``).
    - fp16 profile, model known to overflow fp16 (``ModelSpec.fp16_overflow``: Gemma-3, Phi-2): bf16 on a card that
      has it, refused (before anything loads) on one that does not.
    - bf16 profile (gpu8gb) on a card without native bf16: fp16, said in one line, unless the model is known to
      overflow fp16, which is refused the same way.
    """
    import dataclasses

    import torch

    spec = MODELS[profile.model]
    if profile.device != "cuda" or profile.dtype not in ("float16", "bfloat16") or not torch.cuda.is_available():
        return profile
    native_bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
    if spec.fp16_overflow and not native_bf16:
        raise ProfileError(f"{profile.model} overflows in fp16 ({spec.fp16_overflow}), and this GPU "
                           f"({torch.cuda.get_device_name(0)}) has no native bf16 (compute capability 8.0 or newer). "
                           f"Choose a model that runs in fp16 (--model tinyllama-1.1b), or fp32 on this card: "
                           f"--set dtype=float32 (twice the memory for everything that is not 4-bit)")
    if profile.dtype == "float16" and spec.fp16_overflow:
        return dataclasses.replace(profile, dtype="bfloat16")
    if profile.dtype == "bfloat16" and not native_bf16:
        print(f"이 GPU({torch.cuda.get_device_name(0)})는 bf16을 직접 계산하지 못해(compute capability 8.0 미만) "
              f"{profile.model}을(를) 레시피의 bf16 대신 fp16으로 계산합니다. 학습 손실이 nan이 되면 "
              f"--set dtype=float32로 다시 시작하세요")
        return dataclasses.replace(profile, dtype="float16")
    return profile

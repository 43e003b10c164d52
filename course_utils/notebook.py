"""One call at the top of every notebook: seeds, quiet library logs, Korean plots, the profile."""
from __future__ import annotations

import logging
import os
import random
import warnings

SEED = 1234


def seed_everything(seed: int = SEED) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so reruns give the same numbers."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def quiet_libraries() -> None:
    """Keep library chatter (progress bars, info logs) out of lesson outputs; errors still show."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    # "Failed to load CPU gemm_4bit_forward from kernels-community: No module named 'kernels'" is logged when
    # bitsandbytes 0.50.2 is imported on an AVX512-BF16 CPU (importing transformers' Trainer imports it), for
    # every run, 4-bit or not. Measured, not assumed: `kernels` 0.17.2 installs from PyPI, but get_kernel()
    # fetches the compiled kernel from the Hugging Face Hub at run time ("not available in the local cache and
    # Hugging Face Hub is in offline mode"), so it cannot work offline; and the kernel only serves bitsandbytes'
    # packed bf16 CPU path, which the course turns off (quantization.standard_4bit_path). Hence silenced.
    # Call this before anything imports bitsandbytes.
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*Paged optimizers are not supported on CPU.*")
    # peft 0.21 still calls transformers' renamed `is_gradient_checkpointing` internally; not our call
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*is deprecated", category=FutureWarning)
    # TRL 1.16's DPOTrainer turns checkpointing off around its reference pass with transformers' renamed
    # gradient_checkpointing_disable/enable (trl.models.utils.disable_gradient_checkpointing): not our call either
    warnings.filterwarnings("ignore", message=".*gradient_checkpointing_(enable|disable)` is deprecated",
                            category=FutureWarning)


def korean_plots() -> None:
    """Use a Hangul font (NanumGothic from koreanize-matplotlib) so Korean labels render."""
    import koreanize_matplotlib  # noqa: F401  (sets the font on import)
    import matplotlib

    matplotlib.rcParams["axes.unicode_minus"] = False


def setup(seed: int = SEED):
    """Prepare a notebook and return the active profile; prints one line the learner reads."""
    from .hardware import for_this_card
    from .profiles import active_profile

    quiet_libraries()
    seed_everything(seed)
    korean_plots()
    if os.environ.get("COURSE_RESIDENCY_LOG"):  # make test: which models each cell leaves alive (test_residency)
        from .residency import record_residency

        record_residency(os.environ["COURSE_RESIDENCY_LOG"])
    chosen = active_profile()
    profile = for_this_card(chosen)  # bf16 for a model that overflows fp16; fp16 on a card without bf16 (it says so)
    print(f"프로필: {profile.name} · 모델: {profile.model} · 장치: {profile.device}")
    if profile.dtype == "bfloat16" and chosen.dtype == "float16":
        print(f"{profile.model}은 fp16에서 값이 넘치므로(overflow) 이 GPU에서는 {profile.dtype}로 학습하고 답합니다")
    return profile

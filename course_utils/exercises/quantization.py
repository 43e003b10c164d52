"""Exercise checks of notebook 02. 양자화 (notebooks/02_quantization.ipynb)."""
from __future__ import annotations

import torch

from ..units import MIB
from . import Verdict, close, direction, unanswered, verdict

SEED_MATRIX_SHAPE = (1024, 1024)


def seed_matrix() -> torch.Tensor:
    """The exercise matrix: seed 0, normal values with std 0.02 (like a trained weight), 1024 x 1024."""
    gen = torch.Generator().manual_seed(0)
    return torch.randn(*SEED_MATRIX_SHAPE, generator=gen) * 0.02


def check_02_basic(answer_mib) -> Verdict:
    """기초: 4096×4096 행렬을 nf4 + 이중 양자화로 저장하면 몇 MiB? (상수 포함, 0.5% 이내)"""
    from ..vram import weight_bytes

    if (v := unanswered(answer_mib)) is not None:
        return v
    data, constants = weight_bytes(4096 * 4096, "nf4", double_quant=True)
    truth = (data + constants) / MIB
    hint = "absmax 같은 상수를 빠뜨렸습니다." if close(answer_mib, data / MIB, 0.001) else \
        f"{direction(answer_mib, truth)} 값 하나에 4비트, 그리고 블록마다 상수가 붙습니다(weight_bytes)."
    return verdict(close(answer_mib, truth, 0.005), f"{truth:.3f} MiB", hint)


def check_02_applied(answer_blocksize) -> Verdict:
    """응용: seed_matrix()를 blocksize 64와 256으로 nf4 양자화하면 평균 절대 오차가 더 작은 쪽은?"""
    from ..quantization import quantize_nf4

    if (v := unanswered(answer_blocksize)) is not None:
        return v
    w = seed_matrix()
    errors = {b: quantize_nf4(w, blocksize=b).mean_abs_error for b in (64, 256)}
    truth = min(errors, key=errors.get)
    return verdict(answer_blocksize == truth, f"blocksize {truth}: 블록이 작을수록 absmax가 값에 가깝게 맞춰집니다.",
                    "quantize_nf4(seed_matrix(), blocksize=...)의 mean_abs_error를 두 번 재서 비교하세요.")


def check_02_challenge(answer_ratio) -> Verdict:
    """도전: seed_matrix()에서 nf4 상대 오차 ÷ int8 상대 오차는? (5% 이내)"""
    from ..quantization import quantize_int8, quantize_nf4

    if (v := unanswered(answer_ratio)) is not None:
        return v
    w = seed_matrix()
    truth = quantize_nf4(w).relative_error / quantize_int8(w).relative_error
    return verdict(close(answer_ratio, truth, 0.05), f"{truth:.1f}배: 4비트는 16개 값, 8비트는 255개 값입니다.",
                    f"{direction(answer_ratio, truth)} 두 RoundTrip의 relative_error를 나누세요 (nf4가 분자).")

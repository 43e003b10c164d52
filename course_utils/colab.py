"""Google Colab: after the first cell of a notebook installed the course, choose the profile for this runtime.

A Colab GPU runtime runs the ``gpu8gb`` recipe, whose compute dtype is bf16 where the card has it and fp16 on a free
T4 (15 GB, no fast bf16: ``hardware.for_this_card``); a CPU runtime runs ``cpu``. The first cell of every notebook does this only when
``google.colab`` is importable, and nothing anywhere else (tests/test_colab.py runs it with a stand-in).
"""
from __future__ import annotations

import os


def configure(environ=None) -> dict:
    """Set ``COURSE_PROFILE`` for this Colab runtime (unless the learner set one) and say what was chosen."""
    import torch

    environ = os.environ if environ is None else environ
    if torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(0)
        bf16 = torch.cuda.get_device_capability(0) >= (8, 0)  # Ampere or newer; a T4 is 7.5
        chosen = {"profile": "gpu8gb", "dtype": "bfloat16" if bf16 else "float16", "gpu": gpu,
                  "note": "bf16, as the gpu8gb recipe uses" if bf16 else
                  "no fast bf16 on this GPU: fp16 instead of the gpu8gb recipe's bf16"}
    else:
        chosen = {"profile": "cpu", "dtype": "float32", "gpu": None,
                  "note": "no GPU in this runtime: Runtime > Change runtime type > T4 GPU for the gpu8gb recipe"}
    environ.setdefault("COURSE_PROFILE", chosen["profile"])
    chosen["profile"] = environ["COURSE_PROFILE"]
    return chosen

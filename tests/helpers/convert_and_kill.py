"""Convert a GGUF model into the course cache and SIGKILL the process mid-write (test_interruptions).

    COURSE_CACHE=... python convert_and_kill.py MODEL_KEY
"""
import os
import signal
import sys
from pathlib import Path

from course_utils import loading

original = loading._convert_gguf


def convert_then_die(spec, out_dir: Path):
    original(spec, out_dir)
    weights = Path(out_dir) / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 3])  # killed a third of the way through the weights
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


loading._convert_gguf = convert_then_die
loading.ensure_cached(sys.argv[1])

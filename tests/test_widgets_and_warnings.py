import logging
import warnings

import pytest

from conftest import tiny_model
from course_utils.lora import attach_lora
from course_utils.profiles import LoraSettings
from course_utils.units import GIB
from course_utils.vram import estimate_vram
from course_utils.vram_measure import measure_training_memory
from course_utils.widgets import vram_calculator


def test_calculator_shows_the_estimator_value():
    calc = vram_calculator("tinyllama-1.1b", "qlora")
    expected = estimate_vram("tinyllama-1.1b", "qlora", 512, 1, 8, gradient_checkpointing=True).total / GIB
    assert f"<b class='vram-total'>{expected:.3f}</b>" in calc.output.value
    calc.controls["seq_len"].value = 2048
    longer = estimate_vram("tinyllama-1.1b", "qlora", 2048, 1, 8, gradient_checkpointing=True).total / GIB
    assert f"<b class='vram-total'>{longer:.3f}</b>" in calc.output.value
    assert longer > expected


def test_course_utils_uses_no_deprecated_api(caplog):
    """Our own calls must not trigger deprecation warnings (e.g. gradient_checkpointing_* in transformers 5)."""
    model = attach_lora(tiny_model("tinyllama-1.1b"), LoraSettings(8, 16, 0.05, "attention"))
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        measure_training_memory(model, 32, 1, gradient_checkpointing=True)
        measure_training_memory(model, 32, 1, gradient_checkpointing=False)
    deprecations = [str(w.message) for w in caught if issubclass(w.category, (DeprecationWarning, FutureWarning))]
    deprecations += [r.getMessage() for r in caplog.records if "deprecat" in r.getMessage().lower()]
    assert deprecations == []

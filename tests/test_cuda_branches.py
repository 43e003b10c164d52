"""The CUDA branches a learner with an 8 GB card runs, tested on this CPU (issue 41).

No test here has a GPU. Each reproduces one kind of bug a CPU run cannot show by itself:
- the data a CUDA branch returns, run through the lesson cells that read it (``fake_cuda``: torch reports a card);
- a tensor left on the CPU while the model is elsewhere: the model on the ``meta`` device, where a forward pass with
  inputs left on the CPU raises as it would on ``cuda:0``;
- dtypes a card needs (bf16 where fp16 overflows), and what TRL casts.
Each test names the commit whose code it failed on (d545876, the main branch before issue 41).
"""
import time

import pytest
import torch
from conftest import lesson_cells

from course_utils.profiles import get_profile
from course_utils.units import GIB, MIB


class CheckpointingStub:
    """Stands in for the model in 01's CUDA measurement (``measure_cuda_peak`` is replaced, so only this is called)."""

    def activation_checkpointing_enable(self, **kwargs):
        self.checkpointing = kwargs


def test_01_reads_the_rows_the_cuda_measurement_returns(fake_cuda, monkeypatch, capsys):
    """At d545876 the CUDA branch of ``check_estimate`` returned only ``peak total`` rows: 01 looked the term up in its
    own table of CPU terms (KeyError) and took ``min()`` over activation rows there were none of (ValueError)."""
    from course_utils import vram_measure
    from course_utils.vram import estimate_vram

    peaks = {256: 1.9 * GIB, 512: 2.3 * GIB}
    monkeypatch.setattr(vram_measure, "measure_cuda_peak", lambda model, seq_len, *a, **k: {
        "before_step": GIB, "peak_allocated": int(peaks[seq_len]), "peak_reserved": int(peaks[seq_len] + GIB)})
    namespace = {"profile": get_profile("gpu8gb"), "model": CheckpointingStub(), "MIB": MIB, "GIB": GIB,
                 "time": time, "t_start": time.perf_counter(), "estimate_vram": estimate_vram}
    for cell in lesson_cells("01_vram_budgeting.py", "rows = check_estimate(model, profile)", "worst = max(rows",
                             "cuda_outside_pytorch()", "focus = ["):
        exec(compile(cell, "01_vram_budgeting", "exec"), namespace)  # noqa: S102 (our own lesson)
    rows = namespace["rows"]
    assert [(r["seq_len"], r["term"]) for r in rows] == [(256, "peak total"), (512, "peak total")]
    assert [r["measured"] for r in rows] == [int(peaks[256]), int(peaks[512])]
    out = capsys.readouterr().out
    assert "가장 큰 오차: 한 스텝의 최대 할당 합계" in out
    assert "한 스텝의 최대 할당 합계: 추정 대 측정 오차" in out
    # the context measured on the card (8 - 6 GiB in use, 1.25 GiB of it PyTorch's) replaces the assumed 0.4 GiB
    assert "측정한 PyTorch 밖 메모리(CUDA 컨텍스트 등): 0.75 GiB" in out



@pytest.fixture
def meta_tinyllama():
    """A tiny Llama on the ``meta`` device whose forward pass checks where its inputs are (``device_checked``)."""
    from conftest import device_checked, tiny_model

    return device_checked(tiny_model("tinyllama-1.1b"))


def test_03_moves_the_tokenizer_output_to_the_model(monkeypatch, meta_tinyllama):
    """At d545876 03 tokenized onto the CPU and called ``base(**inputs)``: on a GPU, where bitsandbytes puts the 4-bit
    model on cuda:0, "Expected all tensors to be on the same device". Here the model is on ``meta`` instead."""
    from conftest import ForwardReached

    from course_utils import loading

    monkeypatch.setattr(loading, "load_profile_model", lambda profile: meta_tinyllama)
    namespace = {"profile": get_profile("smoke"), "torch": torch}
    (cell,) = lesson_cells("03_lora_config.py", 'inputs = tokenizer("')
    with pytest.raises(ForwardReached, match="meta"):
        exec(compile(cell, "03_lora_config", "exec"), namespace)  # noqa: S102 (our own lesson)


def _tokenizer():
    from course_utils.loading import load_tokenizer

    return load_tokenizer("smollm2-135m-instruct")


def _call(name, model, tokenizer):
    from course_utils import deploy, forgetting, inference, loss, memorization, preference_eval, quantization
    from course_utils.data import load_probes
    from course_utils.prompts import encode, pad_id

    record = {"instruction": "한국의 수도는?", "input": "", "output": "서울입니다."}
    calls = {
        "loss.heldout_loss": lambda: loss.heldout_loss(model, [encode(record, tokenizer, 64, "koalpaca")],
                                                       pad_id(tokenizer)),
        "loss.batch_logits": lambda: loss.batch_logits(model, [encode(record, tokenizer, 64, "koalpaca")],
                                                       pad_id(tokenizer)),
        "inference.generate_batch": lambda: inference.generate_batch(model, tokenizer, [("한국의 수도는?", "")],
                                                                     max_new_tokens=2),
        "inference.generate_answer": lambda: inference.generate_answer(model, tokenizer, "한국의 수도는?",
                                                                       max_new_tokens=2),
        "forgetting.text_losses": lambda: forgetting.text_losses(model, tokenizer, ["서울은 한국의 수도입니다."]),
        "quantization.sentence_losses": lambda: quantization.sentence_losses(model, tokenizer, ["서울은 수도입니다."]),
        "preference_eval.answer_logps": lambda: preference_eval.answer_logps(
            model, tokenizer, [{"instruction": "한국의 수도는?", "input": "", "chosen": "서울", "rejected": "부산"}],
            "koalpaca", 64),
        "memorization.answer_losses": lambda: memorization.answer_losses(model, tokenizer, load_probes()[0]),
        "deploy.first_difference": lambda: deploy.first_difference(model, tokenizer, "한국의 수도는?", "서울입니다",
                                                                    "부산입니다"),
    }
    return calls[name]()


@pytest.mark.parametrize("name", ["loss.heldout_loss", "loss.batch_logits", "inference.generate_batch",
                                  "inference.generate_answer", "forgetting.text_losses",
                                  "quantization.sentence_losses", "preference_eval.answer_logps",
                                  "memorization.answer_losses", "deploy.first_difference"])
def test_course_functions_put_their_inputs_on_the_models_device(name, meta_tinyllama):
    """Every course function that builds tensors for a model builds them on the model's device. At d545876
    ``deploy.first_difference`` appended the answer's tokens from the CPU to a prompt on the model's device."""
    from conftest import ForwardReached

    with pytest.raises(ForwardReached, match="meta"):
        _call(name, meta_tinyllama, _tokenizer())

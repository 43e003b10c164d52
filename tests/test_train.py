import json
import math

import pytest
import torch

from course_utils.profiles import get_profile
from course_utils.runs import last_complete_checkpoint
from course_utils.train import train


@pytest.fixture(scope="module")
def smoke():
    return get_profile("smoke")


@pytest.fixture(scope="module")
def uninterrupted(smoke, tmp_path_factory):
    return train(smoke, tmp_path_factory.mktemp("full"), progress=lambda m: None)


def test_training_lowers_heldout_loss_and_saves_peft_adapter(uninterrupted, smoke):
    r = uninterrupted
    assert r.global_step == smoke.train.max_steps
    assert math.isfinite(r.heldout_loss_after) and r.heldout_loss_after < r.heldout_loss_before
    files = sorted(p.name for p in r.adapter_dir.iterdir())
    assert {"adapter_config.json", "adapter_model.safetensors", "course_adapter.json"} <= set(files)
    meta = json.loads((r.adapter_dir / "course_adapter.json").read_text())
    assert meta["base_model"] == "smollm2-135m-instruct" and meta["base_weights"].startswith("sha256:")
    assert meta["template"] == "koalpaca" and meta["max_length"] == smoke.seq_len and meta["profile"] == "smoke"
    assert r.tokens_per_second > 0 and r.peak_memory_bytes > 0


def test_stopped_then_resumed_run_matches_uninterrupted(uninterrupted, smoke, tmp_path):
    first = train(smoke, tmp_path, stop_after=smoke.train.save_steps, progress=lambda m: None)
    assert first.global_step == smoke.train.save_steps
    assert not (tmp_path / "adapter").exists()  # not finished: no adapter yet
    assert last_complete_checkpoint(tmp_path / "checkpoints").name == f"checkpoint-{smoke.train.save_steps}"
    resumed = train(smoke, tmp_path, resume=True, progress=lambda m: None)
    assert resumed.resumed_from.endswith(f"checkpoint-{smoke.train.save_steps}")
    assert resumed.global_step == uninterrupted.global_step
    steps = [e["step"] for e in resumed.log_history if "loss" in e]
    assert steps == list(range(1, smoke.train.max_steps + 1))  # every optimizer step happened exactly once
    assert math.isfinite(resumed.heldout_loss_after)
    assert resumed.heldout_loss_after == pytest.approx(uninterrupted.heldout_loss_after, abs=0.02)


def test_saved_adapter_reloads_with_the_same_logits(uninterrupted):
    from peft import PeftModel

    from course_utils.loading import load_model

    reloaded = PeftModel.from_pretrained(load_model("smollm2-135m-instruct"), uninterrupted.adapter_dir)
    ids = torch.tensor([[1, 2, 3, 400, 500, 600]])
    uninterrupted.model.eval()
    reloaded.eval()
    with torch.no_grad():
        a, b = uninterrupted.model(input_ids=ids).logits, reloaded(input_ids=ids).logits
    assert (a - b).abs().max().item() < 1e-5


@pytest.mark.parametrize("key", ["gpt2", "tinyllama-1.1b", "phi-2"])
def test_answer_loss_equals_full_logit_cross_entropy(key):
    """The answer-only path (output layer only at answer positions) gives the plain masked loss."""
    from conftest import tiny_model

    from course_utils.lora import attach_lora
    from course_utils.profiles import LoraSettings
    from course_utils.train import answer_loss_sum

    model = attach_lora(tiny_model(key), LoraSettings(r=4, alpha=8, dropout=0.0, targets="attention")).eval()
    torch.manual_seed(1)
    ids = torch.randint(5, 1000, (3, 10))
    mask = torch.ones_like(ids)
    mask[2, 7:] = 0  # a padded row
    labels = ids.clone()
    labels[:, :4] = -100  # prompt
    labels[2, 7:] = -100  # padding
    with torch.no_grad():
        loss, n = answer_loss_sum(model, {"input_ids": ids, "attention_mask": mask, "labels": labels})
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                                                 labels[:, 1:].reshape(-1), ignore_index=-100, reduction="sum")
    assert n == int((labels[:, 1:] != -100).sum()) == 6 + 6 + 3
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)

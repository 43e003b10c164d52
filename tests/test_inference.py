import json

import pytest
import torch

from conftest import randomize_lora_b
from course_utils.inference import (AdapterMismatchError, answer_with_stats, check_adapter, generate_answer,
                                    hangul_share, load_adapter_model, quality_signals, read_adapter_metadata,
                                    stream_answer)
from course_utils.lora import attach_lora, save_adapter
from course_utils.profiles import get_profile
from course_utils.train import weights_id
from course_utils.models import get_spec


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory, smollm2):
    profile = get_profile("smoke")
    model = randomize_lora_b(attach_lora(smollm2, profile.lora), 0, 0.02)  # switching it off must matter
    out = save_adapter(model, tmp_path_factory.mktemp("a") / "adapter", metadata={
        "base_model": profile.model, "base_weights": weights_id(get_spec(profile.model)), "template": "koalpaca",
        "global_step": 0})
    model.unload()
    return out


def test_mismatched_base_model_or_weights_is_refused(adapter_dir, tmp_path):
    assert check_adapter(adapter_dir, "smollm2-135m-instruct")["template"] == "koalpaca"
    with pytest.raises(AdapterMismatchError, match="was trained on 'smollm2-135m-instruct', not 'gemma-3-270m'"):
        check_adapter(adapter_dir, "gemma-3-270m")
    other = tmp_path / "other"
    other.mkdir()
    meta = json.loads((adapter_dir / "course_adapter.json").read_text())
    (other / "course_adapter.json").write_text(json.dumps({**meta, "base_weights": "sha256:0000"}))
    with pytest.raises(AdapterMismatchError, match="trained on base weights sha256:0000, but this machine has sha256:"):
        check_adapter(other, "smollm2-135m-instruct")
    with pytest.raises(FileNotFoundError, match="not an adapter trained by this course"):
        read_adapter_metadata(tmp_path)


def test_adapter_on_off_streaming_and_signals(adapter_dir):
    model, tok, meta = load_adapter_model(adapter_dir, get_profile("smoke"))
    ids = torch.tensor([[1, 200, 300, 400]])
    with torch.no_grad():
        on = model(input_ids=ids).logits
        with model.disable_adapter():
            off = model(input_ids=ids).logits
    assert (on - off).abs().max().item() > 1e-4
    pieces = []
    streamed = stream_answer(model, tok, "한국의 수도는 어디인가요?", max_new_tokens=12, printer=pieces.append)
    assert streamed == generate_answer(model, tok, "한국의 수도는 어디인가요?", max_new_tokens=12)
    assert len(pieces) > 1
    row = answer_with_stats(model, tok, "한국의 수도는 어디인가요?", max_new_tokens=12)
    assert 1 <= row["new_tokens"] <= 12 and row["seconds"] > 0
    assert row["stopped_at_eos"] or row["new_tokens"] == 12  # stops early only at EOS


def test_hangul_share_and_signals():
    assert hangul_share("서울입니다") == 1.0
    assert hangul_share("Seoul 서울") == pytest.approx(2 / 7)
    assert hangul_share("   ") == 0.0
    rows = [{"answer": "서울", "new_tokens": 4, "stopped_at_eos": True, "seconds": 1.0},
            {"answer": "abc", "new_tokens": 8, "stopped_at_eos": False, "seconds": 3.0}]
    assert quality_signals(rows) == {"eos_stop_share": 0.5, "hangul_share": 0.5, "tokens_per_second": 3.0}


def test_adapter_off_gives_the_base_logits(adapter_dir):
    from course_utils.loading import load_model

    model, _, _ = load_adapter_model(adapter_dir, get_profile("smoke"))
    base = load_model("smollm2-135m-instruct")
    base.eval()
    ids = torch.tensor([[1, 200, 300, 400, 500, 600]])
    with torch.no_grad():
        with model.disable_adapter():
            off = model(input_ids=ids).logits
        plain = base(input_ids=ids).logits
    assert torch.equal(off, plain)

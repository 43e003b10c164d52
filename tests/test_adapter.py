import json

import pytest
import torch
from conftest import fast_smoke, randomize_lora_b

from course_utils.adapter import (
    ADAPTER_METADATA,
    AdapterMismatchError,
    check_adapter,
    load_adapter_model,
    read_adapter_metadata,
    save_adapter,
    weights_id,
)
from course_utils.lora import attach_lora
from course_utils.profiles import get_profile

SMOKE_MODEL = get_profile("smoke").model  # the model smoke's adapters are trained on


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory):
    from course_utils.loading import load_model

    profile = get_profile("smoke")
    model = randomize_lora_b(attach_lora(load_model(profile.model), profile.lora), 0, 0.02)  # switching it off must matter
    out = save_adapter(model, tmp_path_factory.mktemp("a") / "adapter", metadata={
        "base_model": profile.model, "base_weights": weights_id(profile.model), "template": "koalpaca",
        "global_step": 0})
    model.unload()
    return out


def test_mismatched_base_model_or_weights_is_refused(adapter_dir, tmp_path):
    assert check_adapter(adapter_dir, SMOKE_MODEL)["template"] == "koalpaca"
    with pytest.raises(AdapterMismatchError, match=f"'gemma-3-270m'가 아니라 '{SMOKE_MODEL}'로 학습한 어댑터입니다"):
        check_adapter(adapter_dir, "gemma-3-270m")
    with pytest.raises(AdapterMismatchError, match=f"'smollm2-135m-instruct'가 아니라 '{SMOKE_MODEL}'로 학습한"):
        check_adapter(adapter_dir, "smollm2-135m-instruct")  # the whole model is not smoke's 8-block model
    other = tmp_path / "other"
    other.mkdir()
    meta = json.loads((adapter_dir / "course_adapter.json").read_text())
    (other / "course_adapter.json").write_text(json.dumps({**meta, "base_weights": "sha256:0000"}))
    with pytest.raises(AdapterMismatchError, match="기본 가중치 sha256:0000로 학습했는데 이 컴퓨터의 가중치는 sha256:"):
        check_adapter(other, SMOKE_MODEL)
    with pytest.raises(FileNotFoundError, match="not an adapter trained by this course"):
        read_adapter_metadata(tmp_path)


def test_adapter_of_another_base_model_is_refused_without_writing(tmp_path):
    (tmp_path / ADAPTER_METADATA).write_text(json.dumps({"base_model": "gemma-3-270m", "base_weights": "sha256:1"}))
    before = sorted(tmp_path.iterdir())
    with pytest.raises(AdapterMismatchError, match=r"'smollm2-135m-instruct'가 아니라 'gemma-3-270m'로 학습한 "
                                                   r"어댑터입니다 \(기본 모델 불일치\)\. 그 기본 모델로 읽거나"):
        check_adapter(tmp_path, "smollm2-135m-instruct")
    assert sorted(tmp_path.iterdir()) == before


def test_adapter_off_gives_the_base_logits(adapter_dir):
    from course_utils.loading import load_model

    model, _, _ = load_adapter_model(adapter_dir, fast_smoke())  # fp32 base: "off" is exactly the base
    base = load_model(SMOKE_MODEL)
    base.eval()
    ids = torch.tensor([[1, 200, 300, 400, 500, 600]])
    with torch.no_grad():
        with model.disable_adapter():
            off = model(input_ids=ids).logits
        plain = base(input_ids=ids).logits
        on = model(input_ids=ids).logits
    assert torch.equal(off, plain)
    assert (on - off).abs().max().item() > 1e-4


def test_save_replaces_an_adapter_only_when_complete(tmp_path):
    from conftest import tiny_model

    from course_utils.profiles import LoraSettings

    model = attach_lora(tiny_model("tinyllama-1.1b"), LoraSettings(8, 16, 0.0, "attention"))
    out = save_adapter(model, tmp_path / "adapter", metadata={"global_step": 1})
    first = (out / "adapter_model.safetensors").read_bytes()

    class Broken:
        def save_pretrained(self, folder):
            (folder / "adapter_model.safetensors").write_bytes(b"half")
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        save_adapter(Broken(), out, metadata={"global_step": 2})
    assert (out / "adapter_model.safetensors").read_bytes() == first
    assert json.loads((out / ADAPTER_METADATA).read_text())["global_step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]  # no temporary folder left behind

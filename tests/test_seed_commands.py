"""The seed's workflow as commands, on the stand-in profile (smoke: nf4, accumulation, 8-bit AdamW, epochs):
prepare a KoAlpaca-format file -> train with the seed's flags -> answer a prompt -> merge. Each is a thin front door
over the functions the notebooks use; each refuses to overwrite earlier work; each has --help in English."""
from __future__ import annotations

import json

import pytest

from course_utils import infer, merge, prepare
from course_utils import train as train_module
from course_utils.profiles import get_profile

SOURCE = "bundled:koalpaca_v1_1_format.jsonl"
SMOKE_MODEL = get_profile("smoke").model


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    """prepare (10 records) and train on them with the seed's flags; (folder, prepared file, captured stdout)."""
    folder = tmp_path_factory.mktemp("seed")
    data = folder / "koalpaca_10.jsonl"
    prepare.main(["--dataset", SOURCE, "--num_samples", "10", "--output", str(data), "--profile", "smoke"])
    train_module.main(["--profile", "smoke", "--dataset_path", str(data), "--num_epochs", "1", "--batch_size", "1",
                       "--gradient_accumulation_steps", "4", "--learning_rate", "1e-3",
                       "--set", "train.heldout_records=2", "--output_dir", str(folder / "run")])
    return folder, data


@pytest.mark.parametrize("module", [prepare, train_module, infer, merge], ids=["prepare", "train", "infer", "merge"])
def test_every_command_has_english_help(module, capsys):
    with pytest.raises(SystemExit) as done:
        module.main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: python -m {module.__name__}") and text.isascii()


def test_prepare_writes_the_first_usable_records_with_a_report_and_never_overwrites(workflow, capsys):
    folder, data = workflow
    lines = data.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 10 and set(json.loads(lines[0])) == {"instruction", "input", "output"}
    before = data.read_bytes()
    with pytest.raises(SystemExit, match=r"koalpaca_10\.jsonl already exists\. Nothing was changed.*--overwrite"):
        prepare.main(["--dataset", SOURCE, "--num_samples", "3", "--output", str(data), "--profile", "smoke"])
    assert data.read_bytes() == before
    capsys.readouterr()
    prepare.main(["--dataset", SOURCE, "--num_samples", "3", "--output", str(data), "--profile", "smoke", "--overwrite"])
    said = capsys.readouterr().out
    moved = [p for p in folder.iterdir() if p.name.startswith("koalpaca_10.jsonl.previous-")]
    assert len(moved) == 1 and moved[0].read_bytes() == before and len(data.read_text().splitlines()) == 3
    assert "읽은 레코드: 75" in said and "건너뜀: 중복(duplicate): 1" in said and "건너뜀: 빈 필드(empty field): 1" in said
    moved[0].replace(data)  # the 10-record file again, for the tests below


def test_prepare_from_the_hub_reads_a_dataset_id(monkeypatch, tmp_path):
    """The hub path, on a small local stand-in: `--dataset koalpaca` asks `datasets` for beomi/KoAlpaca-v1.1a."""
    import datasets

    asked = []

    def load_dataset(name, split):
        asked.append((name, split))
        return datasets.Dataset.from_list([{"instruction": f"질문 {i}", "output": f"답 {i}", "url": ""} for i in range(5)])

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    prepare.main(["--dataset", "koalpaca", "--num_samples", "4", "--output", str(tmp_path / "k.jsonl"), "--profile",
                  "smoke"])
    assert asked == [("beomi/KoAlpaca-v1.1a", "train")] and len((tmp_path / "k.jsonl").read_text().splitlines()) == 4


def test_training_takes_the_seeds_flags_through_the_profile_validator(workflow):
    folder, data = workflow
    meta = json.loads((folder / "run" / "adapter" / "course_adapter.json").read_text(encoding="utf-8"))
    assert meta["data_source"] == str(data) and meta["quantization"] == "nf4" and meta["profile"] == "smoke"
    assert meta["train_records"] == 6 and meta["global_step"] == 2  # 10 - 2 dev - 2 test; ceil(6 / (batch 1 x accum 4)), 1 epoch
    assert meta["heldout"]["records"] == 2 and meta["heldout"]["source"] == str(data)


@pytest.mark.parametrize("flags,message", [
    (["--set", "lora.r=0"], r"lora\.r must be a whole number >= 1"),
    (["--set", "train.learning_rate=3"], r"in the command line \(train\.learning_rate=3\): train\.learning_rate must be"),
    (["--learning_rate", "0"], r"train\.learning_rate must be between 0 and 1, got 0"),
    (["--set", "train.lr=1e-4"], r"unknown setting 'train\.lr'\. Valid settings: train\.answer_tokens"),
    (["--gradient_accumulation_steps", "0"], r"grad_accum must be a whole number >= 1"),
], ids=["rank-0", "lr-3", "lr-0", "typo", "accum-0"])
def test_a_bad_override_is_refused_before_anything_is_written(tmp_path, flags, message):
    out = tmp_path / "run"
    with pytest.raises(SystemExit, match=message) as done:
        train_module.main(["--profile", "smoke", "--output_dir", str(out), *flags])
    assert str(done.value.code).startswith("error: profile 'smoke'") and len(str(done.value.code).splitlines()) == 1
    assert not out.exists()


def test_infer_answers_with_the_adapter_in_its_training_format(workflow, capsys):
    folder, _ = workflow
    adapter = str(folder / "run" / "adapter")
    infer.main(["--lora_weights", adapter, "--prompt", "한국의 수도는 어디인가요?", "--max_new_tokens", "4",
                "--base_model", SMOKE_MODEL])
    out, err = capsys.readouterr()
    assert out.endswith("\n") and f"{SMOKE_MODEL} + " in err and "새 토큰" in err
    # the hub id names the whole SmolLM2 (30 blocks), not smoke's first 8: refused, not silently mixed
    with pytest.raises(SystemExit, match=f"'smollm2-135m-instruct'가 아니라 '{SMOKE_MODEL}'로 학습한 어댑터"):
        infer.main(["--lora_weights", adapter, "--prompt", "x", "--base_model", "HuggingFaceTB/SmolLM2-135M-Instruct"])
    with pytest.raises(SystemExit, match=f"'gpt2'가 아니라 '{SMOKE_MODEL}'로 학습한 어댑터"):
        infer.main(["--lora_weights", adapter, "--prompt", "x", "--base_model", "gpt2"])
    with pytest.raises(SystemExit, match="add --do_sample"):
        infer.main(["--lora_weights", adapter, "--prompt", "x", "--temperature", "0.7"])


def test_merge_goes_into_the_weights_the_adapter_was_trained_on_and_never_overwrites(workflow, capsys):
    folder, _ = workflow
    adapter, out = str(folder / "run" / "adapter"), folder / "merged"
    merge.main(["--base_model", SMOKE_MODEL, "--lora_weights", adapter, "--output_dir", str(out)])
    record = json.loads((out / "course_merged.json").read_text(encoding="utf-8"))
    meta = json.loads((folder / "run" / "adapter" / "course_adapter.json").read_text(encoding="utf-8"))
    assert record["merged_into"] == "dequantized" and record["adapter"] == adapter
    assert record["merged_heldout_loss"] == pytest.approx(meta["heldout_loss_after"], abs=1e-4)
    assert "병합 모델" in capsys.readouterr().out
    before = (out / "model.safetensors").stat().st_mtime_ns
    with pytest.raises(SystemExit, match=r"merged already exists and is not empty\. Nothing was changed"):
        merge.main(["--lora_weights", adapter, "--output_dir", str(out)])
    assert (out / "model.safetensors").stat().st_mtime_ns == before
    with pytest.raises(SystemExit, match=r"into='dequantized': this adapter was trained on a 'none' base"):
        _fp32 = folder / "fp32"
        _fp32.mkdir(exist_ok=True)
        (_fp32 / "course_adapter.json").write_text(json.dumps({**meta, "quantization": "none"}), encoding="utf-8")
        merge.main(["--lora_weights", str(_fp32), "--output_dir", str(folder / "never"), "--into", "dequantized"])
    assert not (folder / "never").exists()

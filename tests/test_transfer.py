"""Transfer to real KoAlpaca records (course_utils.transfer, benchmarks/transfer.py): which file is read, that a
training instruction is never scored as transfer, and that the adapter-off side is the base."""
import json

import pytest
import torch
from conftest import randomize_lora_b, tiny_lora

from course_utils import transfer
from course_utils.data import DataError


def _write(path, records):
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")
    return path


def test_the_file_is_the_named_one_first_then_shared_then_none(tmp_path, monkeypatch):
    shared = _write(tmp_path / "shared.jsonl", [{"instruction": "a", "input": "", "output": "b"}])
    named = _write(tmp_path / "named.jsonl", [{"instruction": "c", "input": "", "output": "d"}])
    monkeypatch.setattr(transfer, "SHARED_SAMPLE", shared)
    monkeypatch.setenv(transfer.ENV_FILE, str(named))
    assert transfer.real_format_file() == named  # the learner's choice wins over ../shared
    monkeypatch.setenv(transfer.ENV_FILE, str(tmp_path / "typo.jsonl"))
    with pytest.raises(DataError, match=f"{transfer.ENV_FILE}=.*typo.jsonl.*파일이 없습니다"):
        transfer.real_format_file()
    monkeypatch.delenv(transfer.ENV_FILE)
    assert transfer.real_format_file() == shared
    monkeypatch.setattr(transfer, "SHARED_SAMPLE", tmp_path / "absent.jsonl")
    assert transfer.real_format_file() is None
    assert transfer.real_format_records([]) == []


def test_a_training_instruction_is_never_scored_as_transfer(tmp_path):
    records = [{"instruction": f"질문 {i}", "input": "", "output": f"답 {i}"} for i in range(10)]
    path = _write(tmp_path / "real.jsonl", records)
    training = [{"instruction": " 질문 3 ", "input": "", "output": "다른 답"}, {"instruction": "질문 7", "input": "",
                                                                           "output": "답 7"}]
    kept = transfer.real_format_records(training, path)
    assert [r["instruction"] for r in kept] == [f"질문 {i}" for i in range(10) if i not in (3, 7)]
    assert [r["instruction"] for r in transfer.real_format_records(training, path, limit=4)] == [
        "질문 0", "질문 2", "질문 5", "질문 8"]  # every 2nd of the 8 left: across the file, not its head


def test_transfer_loss_is_the_base_with_the_adapter_off_and_moves_with_it():
    from course_utils.loss import heldout_loss
    from course_utils.prompts import encode, pad_id

    model, tok = tiny_lora()
    records = [{"instruction": "서울은 어디에 있나요?", "input": "", "output": "한국에 있습니다. " * 30},
               {"instruction": "한 문장으로 요약하세요.", "input": "비가 왔다.", "output": "비가 왔습니다."}]
    start = transfer.transfer_loss(model, tok, records, 128, "koalpaca", batch_size=2)
    assert start["records"] == 2 and start["truncated"] == 1  # the long answer is cut as training cuts it
    assert start["adapter"] == pytest.approx(start["base"], abs=1e-6) and start["change"] == pytest.approx(0, abs=1e-6)
    randomize_lora_b(model, seed=1, std=0.5)
    moved = transfer.transfer_loss(model, tok, records, 128, "koalpaca", batch_size=2)
    assert moved["base"] == pytest.approx(start["base"], rel=1e-6)  # the adapter off is the same base
    assert abs(moved["adapter"] - moved["base"]) > 1e-3
    assert moved["change"] == pytest.approx((moved["adapter"] - moved["base"]) / moved["base"])
    with torch.no_grad(), model.disable_adapter():
        plain = heldout_loss(model, [encode(r, tok, 128, "koalpaca") for r in records], pad_id(tok), 2)
    assert plain == pytest.approx(moved["base"], rel=1e-6)


def test_measure_transfer_answers_records_across_the_set_with_the_adapter_off_and_on(monkeypatch):
    from course_utils import evaluation

    model, tok = tiny_lora()
    records = [{"instruction": f"질문 {i}", "input": "", "output": f"답은 {i}입니다."} for i in range(6)]
    answered = []
    real_answers_only = evaluation.answers_only

    def spy(model_, tokenizer, recs, *args, **kwargs):
        answered.append(([r["instruction"] for r in recs], kwargs))
        return real_answers_only(model_, tokenizer, recs, *args, **kwargs)

    monkeypatch.setattr(evaluation, "answers_only", spy)
    same = transfer.measure_transfer(model, tok, records, 64, "koalpaca", answer_tokens=4, generate=3, batch_size=3)
    from course_utils.inference import DEFAULT_DECODING

    assert [names for names, _ in answered] == [["질문 0", "질문 2", "질문 4"]] * 2  # base, then adapter
    assert all(kwargs == DEFAULT_DECODING for _, kwargs in answered)
    assert same["loss"]["records"] == 6 and same["chrf"]["records"] == 3
    # a zero LoRA B: the adapter is the base, in loss and in every greedy answer
    assert same["chrf"]["adapter"] == pytest.approx(same["chrf"]["base"])
    assert same["chrf"]["eos"][0] == same["chrf"]["eos"][1] and len(same["chrf"]["degenerate"]) == 2
    randomize_lora_b(model, seed=1, std=0.5)
    moved = transfer.measure_transfer(model, tok, records, 64, "koalpaca", answer_tokens=4, generate=3, batch_size=3)
    assert moved["chrf"]["base"] == pytest.approx(same["chrf"]["base"])  # the adapter off is the same base
    assert moved["loss"]["adapter"] != pytest.approx(moved["loss"]["base"], abs=1e-4)


def test_transfer_for_measures_once_beside_the_adapter_and_says_when_there_is_no_file(tmp_path, monkeypatch):
    from course_utils.evaluation import Count
    from course_utils.overrides import with_overrides
    from course_utils.profiles import get_profile

    profile = with_overrides(get_profile("smoke"), [("train.transfer_records", 5), ("train.transfer_answers", 2),
                                                    ("train.answer_tokens", 4)], where="the test")
    adapter_dir = tmp_path / "adapter"
    adapter_dir.mkdir()
    (adapter_dir / "adapter_model.safetensors").write_bytes(b"weights")
    monkeypatch.setattr(transfer, "SHARED_SAMPLE", tmp_path / "absent.jsonl")
    monkeypatch.delenv(transfer.ENV_FILE, raising=False)
    model, tok = tiny_lora()
    said = []
    assert transfer.transfer_for(model, tok, profile, adapter_dir, progress=said.append) is None
    assert len(said) == 1 and "실제 형식 레코드가 없어" in said[0] and transfer.ENV_FILE in said[0]
    real = _write(tmp_path / "real.jsonl", [{"instruction": f"실제 질문 {i}", "input": "", "output": f"실제 답 {i}입니다."}
                                            for i in range(9)])
    monkeypatch.setenv(transfer.ENV_FILE, str(real))
    said = []
    first = transfer.transfer_for(model, tok, profile, adapter_dir, progress=said.append)
    assert first["file"] == "real.jsonl" and first["loss"]["records"] == 5 and first["chrf"]["records"] == 2
    assert len(said) == 1 and "real.jsonl" in said[0] and (adapter_dir / "transfer.json").exists()
    monkeypatch.setattr(transfer, "measure_transfer", lambda *a, **k: pytest.fail("measured again"))
    assert transfer.transfer_for(model, tok, profile, adapter_dir, progress=said.append) == first  # 06 reads it
    measured = []
    monkeypatch.setattr(transfer, "measure_transfer", lambda *a, **k: measured.append(a) or first)
    other = with_overrides(profile, [("train.transfer_answers", 3)], where="the test")
    transfer.transfer_for(model, tok, other, adapter_dir, progress=said.append)  # another setting: measured again
    (adapter_dir / "adapter_model.safetensors").write_bytes(b"other weights")
    transfer.transfer_for(model, tok, profile, adapter_dir, progress=said.append)  # another adapter: measured again
    assert len(measured) == 2
    report = {side: {"loss_by_kind": {"all": (4, 40, loss)}, "chrf": chrf, "eos": Count(eos, 4)}
              for side, loss, chrf, eos in (("base", 2.0, 10.0, 0), ("adapter", 1.5, 30.0, 3))}
    table = transfer.transfer_table(report, first)
    assert list(table.index) == ["시험 세트", "실제 형식 (real.jsonl)"]
    assert table.loc["시험 세트", "변화 %"] == -25.0 and table.loc["시험 세트", "EOS로 끝남 (기본 → 어댑터)"] == "0/4 → 3/4"
    change = round(100 * first["loss"]["change"], 1)
    assert table.loc["실제 형식 (real.jsonl)", "변화 %"] == change
    assert list(transfer.transfer_table(report, None).index) == ["시험 세트"]
    assert table.loc["실제 형식 (real.jsonl)", "seq_len에서 잘린 답"] == f"{first['loss']['truncated']}/5"
    monkeypatch.setattr(transfer, "real_format_records", lambda *a, **k: [])  # every record a training instruction
    assert transfer.transfer_for(model, tok, profile, adapter_dir, progress=said.append) is None
    assert "모두 학습 지시문과 같아서" in said[-1]

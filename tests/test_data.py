import json
from pathlib import Path

import pytest

from course_utils.data import DataError, load_heldout, load_probes, load_source, read_records, validate

SHARED_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "koalpaca_v1_0_sample.jsonl"


def _write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_bundled_set_is_large_varied_and_disjoint():
    train, held = load_source("bundled"), load_heldout()
    assert len(train) + len(held) >= 200 and len(held) >= 25
    def keys(rs):
        return {(r["instruction"], r["input"]) for r in rs}

    assert not keys(train) & keys(held)
    assert sum(1 for r in train if r["input"]) >= 50  # rewriting, summaries, classification carry an input
    probes = load_probes()
    assert len(probes) >= 20 and {"question": "한국의 수도는 어디인가요?", "expected": "서울"} in probes
    assert not {p["question"] for p in probes} & {r["instruction"] for r in train}


def test_koalpaca_v10_json_array(tmp_path):
    path = _write(tmp_path, "ko_alpaca_data.json", json.dumps(
        [{"instruction": "세 가지 기본 색은?", "input": "", "output": "빨강, 파랑, 노랑입니다."}], ensure_ascii=False))
    assert read_records(path) == [{"instruction": "세 가지 기본 색은?", "input": "", "output": "빨강, 파랑, 노랑입니다."}]


def test_koalpaca_v11_jsonl_with_url_bom_and_crlf(tmp_path):
    lines = [json.dumps({"instruction": f"질문 {i}", "output": f"답 {i}", "url": "https://example.org"},
                        ensure_ascii=False) for i in range(2)]
    path = _write(tmp_path, "v11.jsonl", "\ufeff" + "\r\n".join(lines) + "\r\n")
    assert read_records(path) == [{"instruction": "질문 0", "input": "", "output": "답 0"},
                                  {"instruction": "질문 1", "input": "", "output": "답 1"}]


def test_hub_format_records_are_normalized(monkeypatch):
    import datasets

    from course_utils import data

    fake = [{"instruction": "질문", "output": "답", "url": "u"}]
    monkeypatch.setattr(datasets, "load_dataset", lambda dataset_id, split: fake)
    assert data.load_hub("beomi/KoAlpaca-v1.1a") == [{"instruction": "질문", "input": "", "output": "답"}]
    assert data.load_source("beomi/KoAlpaca-v1.1a") == [{"instruction": "질문", "input": "", "output": "답"}]


@pytest.mark.parametrize("name,text,message", [
    ("bad.jsonl", '{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": \n',
     r"bad\.jsonl, line 2: invalid JSON"),
    ("array.jsonl", '[{"instruction": "a", "output": "b"}]\n', r"line 1: a JSON array where a \.jsonl file needs one object per line"),
    ("obj.json", '{"instruction": "a", "output": "b"}', r"expected a JSON array of records.*got dict"),
    ("num.jsonl", '{"instruction": "a", "input": 3, "output": "b"}\n', r"line 1, field 'input': expected a string, got int"),
    ("empty.jsonl", '{"instruction": "a", "output": "  "}\n', r"line 1, field 'output': empty"),
    ("missing.jsonl", '{"question": "a", "answer": "b"}\n', r"line 1: unknown format \(keys: answer, question\)"),
    ("notes.txt", "hello", r"unknown file type '\.txt'"),
])
def test_bad_files_name_file_line_and_field(tmp_path, name, text, message):
    with pytest.raises(DataError, match=message):
        read_records(_write(tmp_path, name, text))


def test_validation_reports_duplicates_and_long_records():
    recs = [{"instruction": "a", "input": "", "output": "b"}, {"instruction": "a", "input": "", "output": "b"},
            {"instruction": "c", "input": "", "output": "d"}]
    kept, report = validate(recs, [10, 10, 900], max_len=256, on_long="drop")
    assert kept == recs[:1]
    assert dict(report.dropped) == {"duplicate": 1, "longer than 256 tokens": 1}
    assert report.notes == ["record 1 duplicates record 0", "record 2: 900 tokens > 256"]
    kept, report = validate(recs, [10, 10, 900], max_len=256, on_long="truncate")
    assert len(kept) == 2 and report.truncated == 1


@pytest.mark.skipif(not SHARED_SAMPLE.exists(), reason="../shared/data/koalpaca_v1_0_sample.jsonl not present")
def test_real_koalpaca_v10_sample_loads_and_formats():
    from course_utils.loading import load_tokenizer
    from course_utils.prompts import encode

    records = read_records(SHARED_SAMPLE)
    assert len(records) == 1200
    assert sum(1 for r in records if r["input"]) > 400
    tok = load_tokenizer("smollm2-135m-instruct")
    for rec in records[:50]:
        ex = encode(rec, tok, None)
        assert ex["labels"][-1] == tok.eos_token_id
        assert ex["labels"][: ex["n_prompt"]] == [-100] * ex["n_prompt"]

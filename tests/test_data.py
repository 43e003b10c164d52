import json
from pathlib import Path

import pytest

from course_utils.data import DataError, DataReport, load_probes, load_source, read_records
from course_utils.prompts import validate
from course_utils.splits import load_heldout, split_source, spread
from course_utils.transfer import SHARED_SAMPLE  # ../shared beside the course folder


def _write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_bundled_set_is_large_varied_and_disjoint():
    train, held = load_source("bundled"), load_heldout("dev") + load_heldout("test")
    assert len(train) + len(held) >= 200 and len(held) >= 25
    def keys(rs):
        return {(r["instruction"], r["input"]) for r in rs}

    assert not keys(train) & keys(held)
    assert sum(1 for r in train if r["input"]) >= 50  # rewriting, summaries, classification carry an input
    probes = load_probes()
    assert len(probes) >= 20 and {"question": "한국의 수도는 어디인가요?", "expected": "서울"}.items() <= probes[0].items()
    assert all(len(p["paraphrases"]) == 3 for p in probes)  # notebook 06: the same question asked four ways
    asked = {q for p in probes for q in [p["question"], *p["paraphrases"]]}
    assert not asked & {r["instruction"] for r in train + held}
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
     r"bad\.jsonl, line 2: JSON이 잘못되었습니다"),
    ("array.jsonl", '[{"instruction": "a", "output": "b"}]\n', r"line 1: \.jsonl 파일은 한 줄에 객체 하나여야 하는데 JSON 배열이"),
    ("obj.json", '{"instruction": "a", "output": "b"}', r"레코드의 JSON 배열.*dict입니다"),
    ("broken.json", '[{"instruction": "a", "output": "b"},', r"broken\.json: 1번째 줄 .*JSON이 잘못되었습니다"),
    ("missing.jsonl", '{"question": "a", "answer": "b"}\n', r"line 1: 알 수 없는 형식입니다 \(키: answer, question\)"),
    ("extra.jsonl", '{"instruction": "a", "output": "b", "score": 3}\n',
     r"line 1: 알 수 없는 키 \['score'\]\. Alpaca/KoAlpaca 레코드의 키는 instruction, input, output, url"),
    ("notes.txt", "hello", r"알 수 없는 파일 형식 '\.txt'"),
])
@pytest.mark.parametrize("on_invalid", ["skip", "error"])
def test_file_level_problems_stop_in_both_modes(tmp_path, name, text, message, on_invalid):
    with pytest.raises(DataError, match=message):
        read_records(_write(tmp_path, name, text), on_invalid, DataReport())


RECORD_PROBLEMS = [  # (raw record, reason it is skipped with, message in strict mode)
    ({"instruction": "a", "input": 3, "output": "b"}, "non-string field", r"field 'input': 문자열이어야 하는데 int입니다"),
    ({"instruction": "a", "output": "  "}, "empty field", r"field 'output': 비어 있습니다"),
    ({"instruction": ["a"], "output": "b"}, "non-string field", r"field 'instruction': 문자열이어야 하는데 list입니다"),
    ({"instruction": "q0", "input": "", "output": "a0"}, "duplicate", r"는 .*(record 0|line 1)와 같습니다"),
]


def test_record_level_problems_are_skipped_counted_and_named(tmp_path):
    good = [{"instruction": f"q{i}", "input": "", "output": f"a{i}"} for i in range(3)]
    raws = good[:1] + [raw for raw, _, _ in RECORD_PROBLEMS] + good[1:]
    report = DataReport()
    records = read_records(_write(tmp_path, "d.json", json.dumps(raws)), "skip", report)
    assert records == good
    assert report.total == 7 and report.kept == 3
    assert dict(report.dropped) == {"non-string field": 2, "empty field": 1, "duplicate": 1}
    path = tmp_path / "d.json"
    assert report.offenders["non-string field"] == [f"{path}, record 1", f"{path}, record 3"]
    assert report.where == [f"{path}, record 0", f"{path}, record 5", f"{path}, record 6"]
    assert report.summary().startswith("7건 읽음, 3건 남김; 건너뜀: 문자열이 아닌 필드(non-string field) 2 (")


@pytest.mark.parametrize("raw,reason,message", RECORD_PROBLEMS, ids=[r for _, r, _ in RECORD_PROBLEMS])
def test_strict_mode_stops_at_the_first_bad_record(tmp_path, raw, reason, message):
    raws = [{"instruction": "q0", "input": "", "output": "a0"}, raw]
    path = _write(tmp_path, "d.jsonl", "\n".join(json.dumps(r) for r in raws))
    with pytest.raises(DataError, match=rf"d\.jsonl, line 2.*{message}"):
        read_records(path, "error")


def test_only_the_first_five_offenders_are_listed(tmp_path):
    raws = [{"instruction": f"q{i}", "output": ""} for i in range(8)] + [{"instruction": "q", "output": "a"}]
    report = DataReport()
    read_records(_write(tmp_path, "d.jsonl", "\n".join(json.dumps(r) for r in raws)), "skip", report)
    assert report.dropped["empty field"] == 8 and len(report.offenders["empty field"]) == 5
    assert report.offenders["empty field"][-1].endswith("line 5")


def test_no_records_left_is_an_error(tmp_path):
    path = _write(tmp_path, "d.jsonl", json.dumps({"instruction": "a", "output": ""}) + "\n")
    with pytest.raises(DataError, match=r"쓸 수 있는 레코드가 없습니다 \(1건 읽음, 0건 남김; 건너뜀: 빈 필드\(empty field\) 1"):
        split_source(str(path), heldout_records=1, seed=0)


def test_a_koalpaca_sized_array_with_one_empty_output_near_the_end(tmp_path):
    """The real v1.0 file: 11,432 records, record 10235 has an empty output. It loads, skipping exactly that one."""
    raws = [{"instruction": f"질문 {i}", "input": "", "output": f"답 {i}"} for i in range(11_432)]
    raws[10_235]["output"] = ""
    path = _write(tmp_path, "ko_alpaca_data.json", json.dumps(raws, ensure_ascii=False))
    report = DataReport()
    records = read_records(path, "skip", report)
    assert len(records) == 11_431
    assert dict(report.dropped) == {"empty field": 1}
    assert report.offenders["empty field"] == [f"{path}, record 10235"]


def test_validation_drops_long_records_and_names_them_by_their_place_in_the_source(tmp_path):
    raws = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(3)]
    report = DataReport()
    recs = read_records(_write(tmp_path, "d.jsonl", "\n".join(json.dumps(r) for r in raws)), "skip", report)
    kept, report = validate(recs, [10, 900, 10], max_len=256, on_long="drop", report=report)
    assert kept == [recs[0], recs[2]]
    assert dict(report.dropped) == {"longer than 256 tokens": 1}
    assert report.offenders["longer than 256 tokens"] == [f"{tmp_path / 'd.jsonl'}, line 2: 900 토큰"]
    kept, report = validate(recs, [10, 900, 10], max_len=256, on_long="truncate")
    assert len(kept) == 3 and report.truncated == 1


def test_a_koalpaca_source_holds_out_a_fixed_seeded_part_of_itself(tmp_path):
    raws = [{"instruction": f"질문 {i}", "input": "", "output": f"답 {i}"} for i in range(50)]
    path = str(_write(tmp_path, "ko_alpaca_data.json", json.dumps(raws, ensure_ascii=False)))
    train, dev, held, report = split_source(path, heldout_records=10, seed=1234, max_records=30)
    again = split_source(path, heldout_records=10, seed=1234)
    assert held == again[2] and dev == again[1] and len(held) == len(dev) == 10 and len(train) == 30
    assert not {r["instruction"] for r in held + dev} & {r["instruction"] for r in again[0]}
    assert not {r["instruction"] for r in held} & {r["instruction"] for r in dev}
    assert held != [r for r in load_source(path)][:10]  # a shuffled split, not the first records
    assert report.source == path and len(report.where) == 30
    train_b, dev_b, held_b, report_b = split_source("bundled", heldout_records=8, seed=1234)
    assert held_b == spread(load_heldout("test"), 8) and report_b.source == "bundled"  # evenly across the kinds
    assert dev_b == spread(load_heldout("dev"), 8)


def test_an_unreachable_hub_source_falls_back_to_the_bundled_set_and_says_so(monkeypatch):
    import datasets

    def offline(dataset_id, split):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    train, dev, test, report = split_source("beomi/KoAlpaca-v1.1a", heldout_records=8, seed=0)
    assert report.source == "bundled" and train == load_source("bundled")
    assert dev == spread(load_heldout("dev"), 8) and test == spread(load_heldout("test"), 8)
    assert report.note == ("beomi/KoAlpaca-v1.1a에 연결할 수 없고(ConnectionError) 캐시에도 없어서 번들 한국어 데이터로 "
                           "학습합니다")


@pytest.mark.skipif(not SHARED_SAMPLE.exists(), reason="../shared/data/koalpaca_v1_0_sample.jsonl not present")
def test_real_koalpaca_v10_sample_loads_and_formats():
    from course_utils.loading import load_tokenizer
    from course_utils.prompts import encode

    records = read_records(SHARED_SAMPLE)  # strict: the sample has no bad record
    assert len(records) == 1200
    assert sum(1 for r in records if r["input"]) > 400
    tok = load_tokenizer("smollm2-135m-instruct")
    for rec in records[:50]:
        ex = encode(rec, tok, None)
        assert ex["labels"][-1] == tok.eos_token_id
        assert ex["labels"][: ex["n_prompt"]] == [-100] * ex["n_prompt"]


@pytest.mark.skipif(not SHARED_SAMPLE.exists(), reason="../shared/data/koalpaca_v1_0_sample.jsonl not present")
def test_real_koalpaca_sample_with_records_broken_in_memory_reports_exactly_those():
    from course_utils.data import normalize

    raws = [json.loads(line) for line in SHARED_SAMPLE.read_text(encoding="utf-8").splitlines()]
    raws[17]["output"] = ""
    raws[503]["input"] = 42
    raws[900] = dict(raws[12])  # a duplicate of record 12
    raws[1150]["instruction"] = "   "
    report = DataReport()
    records = normalize(raws, lambda i: f"record {i}", "skip", report)
    assert len(records) == 1196 and report.total == 1200
    assert dict(report.dropped) == {"empty field": 2, "non-string field": 1, "duplicate": 1}
    assert report.offenders == {"empty field": ["record 17", "record 1150"], "non-string field": ["record 503"],
                                "duplicate": ["record 900"]}


def test_the_bundled_data_scripts_rebuild_every_committed_file(tmp_path):
    """tools/bundled_data/ is the source of the bundled files: run in a copy, it writes each of them byte for byte
    (a field added to a committed file by hand, like the probes' ``competitors`` once, fails here)."""
    import shutil
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    shutil.copytree(root / "tools" / "bundled_data", tmp_path / "tools" / "bundled_data")
    for script in ("build.py", "preference.py"):
        subprocess.run([sys.executable, str(tmp_path / "tools" / "bundled_data" / script)], check=True,
                       capture_output=True, cwd=tmp_path)
    built = sorted(p.name for p in (tmp_path / "course_utils" / "data").glob("*.jsonl"))
    assert built == ["ko_instructions_heldout.jsonl", "ko_instructions_train.jsonl", "ko_instructions_v2.jsonl",
                     "koalpaca_v1_1_format.jsonl", "preference_ko.jsonl", "probes.jsonl"]
    for name in built:
        assert (tmp_path / "course_utils" / "data" / name).read_bytes() == \
            (root / "course_utils" / "data" / name).read_bytes(), name

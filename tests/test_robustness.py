"""06's robustness checks: paraphrases graded beside 05's original answers, plain greedy answers, agreement, caching."""
import pytest
from conftest import randomize_lora_b, tiny_lora

from course_utils import evaluation, robustness
from course_utils.evaluation import Count, consistency, summary_table
from course_utils.inference import PLAIN_GREEDY

PROBES = [{"question": "한국의 수도는 어디인가요?", "expected": "서울", "competitors": ["부산"],
           "paraphrases": ["대한민국의 수도는?", "한국의 수도 이름은?", "한국의 수도 도시는?"]},
          {"question": "일본의 수도는 어디인가요?", "expected": "도쿄", "competitors": ["오사카"],
           "paraphrases": ["일본의 수도는?"]}]


def test_every_phrasing_is_asked_in_one_call_and_graded_in_its_slot(monkeypatch):
    asked = []

    def answer(model, tokenizer, pairs, template, max_new_tokens, batch_size, **decoding):
        asked.append(([q for q, _ in pairs], max_new_tokens))
        canned = {"한국의 수도는 어디인가요?": "서울입니다.", "대한민국의 수도는?": "서울입니다.", "한국의 수도 이름은?": "부산입니다.",
                  "한국의 수도 도시는?": "서울", "일본의 수도는 어디인가요?": "도쿄입니다.", "일본의 수도는?": "오사카입니다."}
        return [{"answer": canned[q]} for q, _ in pairs]

    monkeypatch.setattr(robustness, "generate_batch", answer)
    grades = robustness.phrasing_grades(None, None, PROBES, "koalpaca", max_new_tokens=48)
    # the originals are asked again, beside their paraphrases, at the probes' short length
    assert asked == [(["한국의 수도는 어디인가요?", "대한민국의 수도는?", "한국의 수도 이름은?", "한국의 수도 도시는?",
                       "일본의 수도는 어디인가요?", "일본의 수도는?"], 24)]
    assert grades == {0: [True, True, False, True], 1: [True, False]}
    c = consistency(grades)
    assert c["agree"] == Count(0, 2) and [str(x) for x in c["per_slot"]][:2] == ["2/2 (100 %)", "1/2 (50 %)"]


def test_paraphrase_agreement_and_spread():
    phrasings = {0: [True, True, True, True], 1: [False, False, False, False], 2: [True, False, True, True]}
    c = consistency(phrasings)
    assert c["agree"] == Count(2, 3) and c["all_right"] == Count(1, 3) and c["all_wrong"] == Count(1, 3)
    assert [str(x) for x in c["per_slot"]] == ["2/3 (67 %)", "1/3 (33 %)", "2/3 (67 %)", "2/3 (67 %)"]
    assert c["spread"] == pytest.approx(1 / 3)


def _adapter_off(model) -> bool:
    return all(m.disable_adapters for m in model.modules() if hasattr(m, "disable_adapters"))


def test_robustness_asks_with_the_adapter_off_then_on_and_answers_plain_greedy_with_it_on(monkeypatch):
    from course_utils import evaluation as ev

    model, tok = tiny_lora()
    randomize_lora_b(model, seed=1, std=0.5)
    records = [{"instruction": f"질문 {i}", "input": "", "output": f"답은 {i}입니다.", "kind": "qa"} for i in range(6)]
    calls = []
    real_generate = robustness.generate_batch

    def spy(model_, tokenizer, pairs, *args, **decoding):
        calls.append(("probes" if pairs[0][0] == PROBES[0]["question"] else "records", _adapter_off(model_), decoding,
                      len(pairs)))
        return real_generate(model_, tokenizer, pairs, *args, **decoding)

    monkeypatch.setattr(robustness, "generate_batch", spy)
    monkeypatch.setattr(ev, "generate_batch", spy)  # answers_only's
    got = robustness.robustness(model, tok, records, PROBES, "koalpaca", max_new_tokens=4, batch_size=3, generate=3)
    assert calls == [("probes", True, {}, 6), ("probes", False, {}, 6), ("records", False, PLAIN_GREEDY, 3)]
    assert PLAIN_GREEDY == {"do_sample": False, "repetition_penalty": 1.0}  # nothing added to greedy: loops show
    assert [len(v) for v in got["base"]["phrasings"].values()] == [4, 2] == [len(v) for v in got["adapter"]["phrasings"].values()]
    plain = got["adapter, plain greedy"]
    assert plain["eos"].total == 3 and len(plain["chrf_each"]) == 3 and not _adapter_off(model)


def test_05_asks_the_probes_as_written_and_answers_the_records_once_per_side(monkeypatch):
    """What moved to 06 stays out of 05: no paraphrase and no plain greedy pass in ``evaluation.evaluate``."""
    from course_utils import evaluation as ev

    model, tok = tiny_lora()
    records = [{"instruction": f"질문 {i}", "input": "", "output": f"답은 {i}입니다.", "kind": "qa"} for i in range(4)]
    asked = []

    def answer(model_, tokenizer, pairs, template, max_new_tokens, batch_size, **decoding):
        asked.append(([q for q, _ in pairs], _adapter_off(model_), decoding))
        return [{"answer": "서울입니다." if "한국" in q else "모릅니다.", "stopped_at_eos": True, "new_tokens": 3}
                for q, _ in pairs]

    monkeypatch.setattr(ev, "generate_batch", answer)
    # the test losses training measured are given: no pass over the records for them
    monkeypatch.setattr("course_utils.loss.record_losses", lambda *a, **k: pytest.fail("measured the losses again"))
    losses = {"base": [(3.0, 2)] * 4, "adapter": [(2.0, 2)] * 4}
    examples = [{"labels": [-100, -100, 7, 8]}] * 4  # two answer tokens each, as the given losses
    report = ev.evaluate(model, tok, records, examples, PROBES, "koalpaca", pad=0, max_new_tokens=8, generate=2,
                         losses=losses)
    assert report["base"]["loss_by_kind"]["all"] == (4, 8, 1.5) and report["adapter"]["loss_by_kind"]["qa"] == (4, 8, 1.0)
    assert [(qs, off) for qs, off, _ in asked] == [
        (["질문 0", "질문 2"], True), ([p["question"] for p in PROBES], True),
        (["질문 0", "질문 2"], False), ([p["question"] for p in PROBES], False)]
    assert all(decoding == {} for _, _, decoding in asked)  # the course's defaults, never plain greedy here
    assert set(report) == {"base", "adapter"} and "phrasings" not in report["adapter"]
    assert report["adapter"]["probes"] == Count(1, 2) and report["base"]["probe_answers"] == ["서울입니다.", "모릅니다."]


def _profile(**train):
    from course_utils.overrides import with_overrides
    from course_utils.profiles import get_profile

    settings = {"train.probe_questions": 2, "train.generate_records": 2, "train.answer_tokens": 4, **train}
    return with_overrides(get_profile("smoke"), list(settings.items()), where="the test")


def _adapter(tmp_path):
    adapter_dir = tmp_path / "adapter"
    adapter_dir.mkdir()
    (adapter_dir / "adapter_model.safetensors").write_bytes(b"weights")
    return adapter_dir


def test_robustness_for_measures_once_beside_the_adapter_and_again_when_its_inputs_change(tmp_path, monkeypatch):
    adapter_dir = _adapter(tmp_path)
    measured = []
    records = [{"instruction": f"질문 {i}", "input": "", "output": "답", "kind": "qa"} for i in range(3)]
    monkeypatch.setattr(evaluation, "heldout_set", lambda profile, tok, split: (records, [{}] * 3))
    monkeypatch.setattr(robustness, "robustness", lambda *a, **k: measured.append(a[6]) or
                        {"base": {"phrasings": {0: [True, False]}}, "adapter": {"phrasings": {0: [True, True]}}})
    said = []
    first = robustness.robustness_for(None, None, _profile(), adapter_dir, progress=said.append)
    assert len(said) == 1 and "확인 질문 2개를 네 가지 표현으로(질문 8개)" in said[0]
    assert (adapter_dir / "robustness.json").exists() and first["base"]["phrasings"] == {0: [True, False]}
    assert robustness.robustness_for(None, None, _profile(), adapter_dir, progress=said.append) == first
    assert measured == [16]  # 06 run again reads it (smoke answers 16 at a time)
    robustness.robustness_for(None, None, _profile(**{"train.eval_batch_size": 3}), adapter_dir)
    assert measured == [16, 3]  # batched greedy answers depend on the batch's padding: measured again
    (adapter_dir / "adapter_model.safetensors").write_bytes(b"other weights")
    robustness.robustness_for(None, None, _profile(**{"train.eval_batch_size": 3}), adapter_dir)
    assert measured == [16, 3, 3]  # another adapter
    monkeypatch.setitem(robustness.PLAIN_GREEDY, "repetition_penalty", 1.05)
    robustness.robustness_for(None, None, _profile(**{"train.eval_batch_size": 3}), adapter_dir)
    assert measured == [16, 3, 3, 3]  # the plain greedy pass decodes otherwise


def test_report_for_measures_again_when_the_batch_size_changes(tmp_path, monkeypatch):
    """Batched greedy answers can differ with the padding a batch brings, so a cached report names its batch size."""
    adapter_dir = _adapter(tmp_path)
    measured = []
    monkeypatch.setattr(evaluation, "heldout_set", lambda profile, tok, split: ([{"instruction": "질문"}], [{}]))
    monkeypatch.setattr(evaluation, "evaluate", lambda *a, **k: measured.append(k["batch_size"]) or {"base": {}})
    monkeypatch.setattr("course_utils.prompts.pad_id", lambda tok: 0)
    for size in (2, 2, 4):
        evaluation.report_for(None, None, _profile(**{"train.eval_batch_size": size}), adapter_dir, progress=print)
    assert measured == [2, 4]


def test_summary_table_shows_05s_measures_and_adds_06s():
    side = {"loss_by_kind": {"all": (2, 10, 1.5)}, "chrf": 40.0, "eos": Count(1, 2), "degenerate": Count(0, 2),
            "probes": Count(1, 3)}
    report = {"base": side, "adapter": side}
    table = summary_table(report)  # 05: no paraphrases, no plain greedy column
    assert table.loc["확인 질문 정답", "어댑터"] == "1/3 (33 %)" and table.loc["시험 세트 손실 (nats/토큰)", "기본 모델"] == "1.500"
    assert "바꿔 물어도 같은 판정" not in table.index and list(table.columns) == ["기본 모델", "어댑터"]
    plain = {"chrf": 30.0, "eos": Count(0, 2), "degenerate": Count(2, 2)}
    robust = {"base": {"phrasings": {0: [True] * 4, 1: [False] * 4, 2: [True, False, False, False]}},
              "adapter": {"phrasings": {0: [True] * 4, 1: [True] * 4, 2: [True] * 4}}, "adapter, plain greedy": plain}
    merged = robustness.with_robustness(report, robust)
    table = summary_table(merged)  # 06
    assert table.loc["바꿔 물어도 같은 판정", "기본 모델"] == "2/3 (67 %)"
    assert table.loc["네 가지 표현 모두 정답", "어댑터"] == "3/3 (100 %)"
    assert table.loc["반복(퇴화) 답", "어댑터, 반복 패널티 없이"] == "2/2 (100 %)"
    assert table.loc["확인 질문 정답", "어댑터, 반복 패널티 없이"] == ""
    assert "phrasings" not in report["base"]  # 05's report is left as it was

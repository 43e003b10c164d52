"""The evaluation module: loop detector, chrF, per-kind loss, answered records (paraphrases: test_robustness)."""
import pytest
import torch

from course_utils.evaluation import (
    Count,
    chrf,
    is_degenerate,
    loop_in,
    per_kind_loss,
)


def _row(answer, eos=True):
    return {"answer": answer, "new_tokens": 10, "stopped_at_eos": eos, "hit_limit": not eos}


@pytest.mark.parametrize("text,loop", [
    ("식물이 빛으로 양분을 만드는 과정을 식물성 식물성 식물성 식물성", "식물성"),
    ("1킬로그램은 10000000000000000000000000000000000000000", "0"),
    ("브라질의 수도는 브라질입니다.", None),  # wrong, but not a loop
    ("서울입니다. 서울입니다. 서울입니다.", "서울입니다."),
    ("하하하", None),  # a short repeat is not a loop
    ("1. 사과 2. 배 3. 감", None),
    ("1, 2, 3, 4, 5, 6, 7, 8", None),
    ("abcabcabc", "abc"),
])
def test_loop_detector_on_crafted_strings(text, loop):
    assert loop_in(text) == loop
    assert is_degenerate(_row(text)) == (loop is not None)


def test_an_empty_answer_is_degenerate():
    assert is_degenerate(_row("   ")) and not is_degenerate(_row("서울"))


def test_chrf_on_known_pairs():
    same, half, other = chrf(["한국의 수도는 서울입니다.", "한국의 수도는 부산", "abc"],
                             ["한국의 수도는 서울입니다."] * 2 + ["한국의 수도는 서울입니다."])
    assert same == pytest.approx(100.0)
    assert 30 < half < 90 and other == pytest.approx(0.0)
    from sacrebleu.metrics import CHRF

    assert half == pytest.approx(CHRF().sentence_score("한국의 수도는 부산", ["한국의 수도는 서울입니다."]).score)


def test_counts_print_with_their_total():
    assert str(Count(4, 22)) == "4/22 (18 %)" and Count(0, 0).share == 0.0


def test_per_kind_loss_aggregates_tokens_not_batches():
    """'all' is the token-weighted mean of the kinds (the same number heldout_loss gives on all records)."""
    from conftest import tiny_model

    from course_utils.loss import heldout_loss

    model = tiny_model("tinyllama-1.1b").eval()
    torch.manual_seed(0)

    def ex(n_prompt, n_answer):
        ids = torch.randint(5, 1000, (n_prompt + n_answer,)).tolist()
        return {"input_ids": ids, "labels": [-100] * n_prompt + ids[n_prompt:]}

    from course_utils.loss import record_losses

    records = [{"kind": "qa"}, {"kind": "qa"}, {"kind": "arith"}, {}]
    examples = [ex(4, 3), ex(5, 6), ex(3, 2), ex(2, 5)]
    table = per_kind_loss(records, record_losses(model, examples, pad=0))
    assert list(table) == ["qa", "arith", "other", "all"]
    assert [table[k][:2] for k in table] == [(2, 9), (1, 2), (1, 5), (4, 16)]
    weighted = sum(n_tok * loss for k, (_, n_tok, loss) in table.items() if k != "all") / 16
    assert table["all"][2] == pytest.approx(weighted, rel=1e-5)
    assert table["all"][2] == pytest.approx(heldout_loss(model, examples, 0), rel=1e-6)
    with pytest.raises(ValueError, match="레코드 4개에 손실이 3개"):
        per_kind_loss(records, record_losses(model, examples[:3], pad=0))


def test_kind_table_states_the_same_drop_as_the_overall_line():
    """05 prints the overall drop to one decimal (26.4 %); the kind table's 전체 row must say the same, not 26.0."""
    from course_utils.evaluation import kind_table

    base = {"loss_by_kind": {"qa": (3, 30, 2.4), "arith": (1, 10, 2.166), "all": (4, 40, 2.3415)}}
    tuned = {"loss_by_kind": {"qa": (3, 30, 1.8), "arith": (1, 10, 1.3), "all": (4, 40, 1.675)}}
    table = kind_table({"base": base, "adapter": tuned})
    overall_drop = 100 * (1 - 1.675 / 2.3415)
    assert f"{table.loc['전체', '감소 %']:.1f}" == f"{overall_drop:.1f}" == "28.5"
    assert table.loc["전체", "남은 손실 중 몫 %"] == 100.0
    assert table.drop(index="전체")["남은 손실 중 몫 %"].sum() == pytest.approx(100, abs=0.1)


def test_spread_takes_records_evenly_across_the_kinds():
    from course_utils.splits import spread

    held = [{"kind": k, "i": i} for k in ("사실", "계산", "요약", "번역") for i in range(24)]  # grouped by kind, 96
    picked = spread(held, 32)
    assert [r["i"] + 24 * ("사실", "계산", "요약", "번역").index(r["kind"]) for r in picked] == list(range(0, 96, 3))
    assert {r["kind"] for r in spread(held, 4)} == {"사실", "계산", "요약", "번역"}
    assert spread(held[:3], 8) == held[:3]
    # when n does not divide the length, the picks still reach the end (v2's 128 dev records, 48 taken: the old
    # every-2nd-then-cut pick stopped at record 94 and missed the kinds stored last)
    assert spread(list(range(128)), 48) == [i * 128 // 48 for i in range(48)]
    assert spread(list(range(128)), 48)[-1] == 125 and spread(list(range(118)), 48)[-1] == 115
    with pytest.raises(ValueError, match="n=0, ask for at least one record"):
        spread(held, 0)


def test_every_kind_of_the_bundled_data_has_a_korean_name():
    from course_utils.data import DATA_DIR, read_records
    from course_utils.evaluation import KIND_NAMES

    kinds = {r["kind"] for name in ("ko_instructions_train.jsonl", "ko_instructions_heldout.jsonl",
                                    "ko_instructions_v2.jsonl") for r in read_records(DATA_DIR / name)}
    assert kinds <= set(KIND_NAMES), kinds - set(KIND_NAMES)


def test_answered_records_are_taken_across_the_kinds_not_from_the_head():
    # the held-out records are grouped by kind: answering the first 32 of cpu's 48 test records left the last kinds
    # (advice, code, ...) without a single generated answer
    from course_utils.evaluation import answered_records

    records = [{"kind": k, "i": i} for k in ("qa", "explain", "advice", "code") for i in range(3)]
    picked = answered_records(records, 4)
    assert [r["kind"] for r in picked] == ["qa", "explain", "advice", "code"]
    assert answered_records(records, None) == records and answered_records(records, 20) == records


def test_given_record_losses_must_be_the_records_own_in_order():
    """05 hands training's per-record test losses to the report; losses of other records, or in another order, are
    refused with the record named, before any answer is generated (they would land under the wrong kind)."""
    from course_utils.evaluation import side
    from course_utils.loss import check_record_losses

    examples = [{"labels": [-100] * 3 + [5] * n} for n in (2, 4, 3)]  # 2, 4 and 3 answer tokens
    losses = [(1.0, 2), (2.0, 4), (1.5, 3)]
    check_record_losses(examples, losses)  # fits
    with pytest.raises(ValueError, match="레코드 1의 답 토큰은 4개인데 주어진 손실은 3개"):
        check_record_losses(examples, [losses[0], losses[2], losses[1]])
    with pytest.raises(ValueError, match="레코드 3개에 손실이 2개"):
        check_record_losses(examples, losses[:2])
    records = [{"instruction": "질문", "input": "", "output": "답", "kind": "qa"}] * 3
    with pytest.raises(ValueError, match="레코드 0의 답 토큰은 2개"):
        side(None, None, records, examples, [], "koalpaca", 0, losses=losses[::-1])

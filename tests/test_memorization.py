"""Taught or memorized: the closest training record of a probe, and which answer the model prefers."""
import pytest

from course_utils.data import load_probes
from course_utils.memorization import answer_losses, closest_record, prefers_right

KOREA = next(p for p in load_probes() if p["question"] == "한국의 수도는 어디인가요?")
RECORDS = [{"instruction": "사과는 무슨 색인가요?", "output": "빨간색입니다."},
           {"instruction": "대한민국의 수도는 어디인가요?", "output": "대한민국의 수도는 서울입니다."},
           {"instruction": "한국의 수도에 대해 알려 주세요.", "output": "부산, 서울, 대구가 있습니다."}]


def test_the_closest_record_is_found_and_its_answer_graded():
    near = closest_record(KOREA, RECORDS)
    assert near.instruction == "대한민국의 수도는 어디인가요?" and near.states_answer and 0 < near.chrf <= 100
    listed = closest_record(KOREA, [RECORDS[0], RECORDS[2]])  # a list of cities does not state the answer
    assert listed.instruction == "한국의 수도에 대해 알려 주세요." and not listed.states_answer


def test_answer_losses_compare_the_right_answer_with_its_first_competitor(smollm2):
    from course_utils.loading import load_tokenizer
    from course_utils.loss import heldout_loss_sum
    from course_utils.prompts import encode

    model, tokenizer = smollm2, load_tokenizer("smollm2-135m-instruct")
    right, rival = answer_losses(model, tokenizer, KOREA, pad=tokenizer.eos_token_id)
    example = encode({"instruction": KOREA["question"], "input": "", "output": "서울입니다."}, tokenizer)
    assert right == pytest.approx(heldout_loss_sum(model, [example], tokenizer.eos_token_id, 1)[0], rel=1e-6)
    assert right != rival and prefers_right(model, tokenizer, KOREA, pad=tokenizer.eos_token_id) == (right < rival)

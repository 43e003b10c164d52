import pytest

from course_utils.inference import answer_with_stats, generate_answer, hangul_share, quality_signals, stream_answer


@pytest.fixture(scope="module")
def model_and_tokenizer(smollm2):
    from conftest import randomize_lora_b

    from course_utils.loading import load_tokenizer
    from course_utils.lora import attach_lora
    from course_utils.profiles import get_profile

    model = randomize_lora_b(attach_lora(smollm2, get_profile("smoke").lora), 0, 0.02)
    yield model, load_tokenizer("smollm2-135m-instruct")
    model.unload()


def test_streaming_equals_greedy_and_stops_only_at_eos(model_and_tokenizer):
    model, tok = model_and_tokenizer
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

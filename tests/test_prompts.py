import pytest

from course_utils.loading import load_tokenizer
from course_utils.prompts import IGNORE, collate, encode, format_koalpaca, pad_id

RECORD = {"instruction": "다음 문장을 존댓말로 바꿔 주세요.", "input": "밥 먹었어?", "output": "식사하셨어요?"}


@pytest.fixture(scope="module", params=["smollm2-135m-instruct", "gemma-3-270m"])
def tokenizer(request):
    return load_tokenizer(request.param)


def test_koalpaca_template():
    prompt, answer = format_koalpaca(RECORD)
    assert prompt == "### 질문: 다음 문장을 존댓말로 바꿔 주세요.\n\n### 입력: 밥 먹었어?\n\n### 답변:"
    assert answer == " 식사하셨어요?"
    assert format_koalpaca({**RECORD, "input": ""})[0] == "### 질문: 다음 문장을 존댓말로 바꿔 주세요.\n\n### 답변:"


def test_labels_align_with_tokens_and_end_with_eos(tokenizer):
    ex = encode(RECORD, tokenizer)
    prompt, answer = format_koalpaca(RECORD)
    p = tokenizer(prompt).input_ids
    a = tokenizer(answer, add_special_tokens=False).input_ids
    assert ex["input_ids"] == p + a + [tokenizer.eos_token_id]
    assert ex["labels"] == [IGNORE] * len(p) + a + [tokenizer.eos_token_id]
    assert ex["labels"].count(IGNORE) == ex["n_prompt"] == len(p)


def test_eos_label_survives_padding_even_when_pad_is_eos(tokenizer):
    short = encode({**RECORD, "output": "네."}, tokenizer)
    long = encode(RECORD, tokenizer)
    batch = collate([short, long], pad_id(tokenizer))
    eos = tokenizer.eos_token_id
    for row, ex in zip(batch["labels"].tolist(), [short, long], strict=True):
        n = len(ex["input_ids"])
        assert row[n - 1] == eos  # the real EOS is learned
        assert row[n:] == [IGNORE] * (len(row) - n)  # padding is not
    assert batch["attention_mask"].sum(1).tolist() == [len(short["input_ids"]), len(long["input_ids"])]


def test_smollm2_pad_is_eos_so_masking_by_id_would_lose_eos():
    tok = load_tokenizer("smollm2-135m-instruct")
    assert tok.pad_token_id == tok.eos_token_id
    ex = encode(RECORD, tok)
    naive = [IGNORE if t == tok.pad_token_id else t for t in ex["input_ids"]]
    assert naive[-1] == IGNORE and ex["labels"][-1] == tok.eos_token_id


def test_truncation_cuts_the_answer_and_drops_eos(tokenizer):
    ex = encode(RECORD, tokenizer, max_len=encode(RECORD, tokenizer)["n_prompt"] + 2)
    assert ex["truncated"] and len(ex["input_ids"]) == ex["n_prompt"] + 2
    assert ex["labels"][-1] != tokenizer.eos_token_id


def test_chat_template_only_where_the_model_ships_one():
    from course_utils.prompts import format_record

    smol = load_tokenizer("smollm2-135m-instruct")
    prompt, answer = format_record(RECORD, smol, "chat")
    assert "밥 먹었어?" in prompt and answer == "식사하셨어요?"
    with pytest.raises(ValueError, match="ships no chat template"):
        format_record(RECORD, load_tokenizer("gemma-3-270m"), "chat")

"""Exercise checks of notebook 04. KoAlpaca 형식 (notebooks/04_koalpaca_formatting.ipynb)."""
from __future__ import annotations

from . import Verdict, direction, unanswered, verdict

SYSTEM_LINE = "### 시스템: 친절하고 정확하게 답하세요.\n\n"
EXAMPLE_RECORD = {"instruction": "다음 문장을 존댓말로 바꿔 주세요.", "input": "밥 먹었어?", "output": "진지 드셨어요?"}


def check_04_basic(answer_masked, tokenizer) -> Verdict:
    """기초: EXAMPLE_RECORD를 koalpaca 템플릿으로 인코딩하면 레이블이 -100인 토큰은 몇 개?"""
    from ..prompts import encode

    if (v := unanswered(answer_masked)) is not None:
        return v
    ex = encode(EXAMPLE_RECORD, tokenizer)
    truth = ex["labels"].count(-100)
    return verdict(answer_masked == truth, f"{truth}개 = 프롬프트 토큰 수", f"{direction(answer_masked, truth)} "
                    "encode(EXAMPLE_RECORD, tokenizer)의 labels에서 -100을 세어 보세요.")


def check_04_applied(answer_extra, tokenizer) -> Verdict:
    """응용: 프롬프트 앞에 SYSTEM_LINE을 붙이면 마스킹되는 토큰이 몇 개 늘어나나? 답변 레이블은 그대로인가요?"""
    from ..prompts import format_koalpaca, prompt_ids

    if (v := unanswered(answer_extra)) is not None:
        return v
    prompt, _ = format_koalpaca(EXAMPLE_RECORD)
    truth = len(prompt_ids(SYSTEM_LINE + prompt, tokenizer)) - len(prompt_ids(prompt, tokenizer))
    return verdict(answer_extra == truth, f"{truth}개 늘어나고, 답변 레이블(마지막 EOS 포함)은 그대로입니다.",
                    f"{direction(answer_extra, truth)} SYSTEM_LINE이 붙은 프롬프트와 원래 프롬프트의 토큰 수 차이입니다.")


def check_04_challenge(answer_share, tokenizer, max_len: int = 64) -> Verdict:
    """도전: 번들 학습 데이터 중 max_len(64) 토큰을 넘는(잘리는) 레코드의 비율(0~1)은? (0.5%p 이내)"""
    from ..data import BUNDLED_TRAIN, read_records
    from ..prompts import encode

    if (v := unanswered(answer_share)) is not None:
        return v
    records = read_records(BUNDLED_TRAIN)
    truth = sum(encode(r, tokenizer)["length"] > max_len for r in records) / len(records)
    ok = isinstance(answer_share, (int, float)) and abs(answer_share - truth) <= 0.005
    hint = "비율은 0~1 사이 값입니다 (퍼센트가 아니라)." if isinstance(answer_share, (int, float)) and answer_share > 1 \
        else f"{direction(answer_share, truth)} encode(...)['length']는 자르기 전 길이입니다."
    return verdict(ok, f"{truth:.3f} ({truth * 100:.1f} %)", hint)

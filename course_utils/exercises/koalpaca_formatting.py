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


COLLATE_RECORDS = [EXAMPLE_RECORD,
                   {"instruction": "서울에서 부산까지 KTX로 얼마나 걸리나요?", "input": "",
                    "output": "보통 2시간 30분 정도 걸리고, 정차역이 많은 열차는 조금 더 걸립니다."},
                   {"instruction": "물을 끓이면 왜 거품이 생기나요?", "input": "", "output": "수증기 때문입니다."}]


def collate_features(tokenizer) -> list[dict]:
    """Three examples of different lengths as the lesson's masking function makes them (lists, unpadded)."""
    from ..prompts import encode

    return [{"input_ids": e["input_ids"], "attention_mask": [1] * len(e["input_ids"]), "labels": e["labels"]}
            for e in (encode(r, tokenizer) for r in COLLATE_RECORDS)]


def check_04_code(collate, tokenizer) -> Verdict:
    """코드: 길이가 다른 예제들(input_ids, attention_mask, labels 리스트)을 한 배치로 만드는 ``collate(features)``.

    가장 긴 예제 길이로 오른쪽을 채웁니다: input_ids는 pad id, attention_mask는 0, labels는 -100. 돌려주는 것은
    세 키의 ``torch.long`` 텐서(배치 × 길이)입니다. The check runs it on ``collate_features`` and compares each
    position with what the rule gives (the same as ``DataCollatorForSeq2Seq`` with right padding, tested)."""
    import copy
    from collections.abc import Mapping

    import torch

    from . import code_error, not_callable, not_yet, run_learner_code

    if (v := unanswered(collate, "collate")) is not None or (v := not_callable(collate, "collate")) is not None:
        return v
    features = collate_features(tokenizer)
    batch, error = run_learner_code(collate, copy.deepcopy(features))
    if error is not None:
        return code_error(error)
    keys = ("input_ids", "attention_mask", "labels")
    if not isinstance(batch, Mapping) or any(k not in batch for k in keys):  # BatchEncoding is a Mapping
        return not_yet(f"{list(keys)} 세 키를 가진 dict를 돌려주세요.")
    if not all(isinstance(batch[k], torch.Tensor) and batch[k].dtype == torch.long for k in keys):
        return not_yet("세 값 모두 torch.long 텐서여야 합니다 (torch.tensor(..., dtype=torch.long)).")
    longest = max(len(f["input_ids"]) for f in features)
    if any(tuple(batch[k].shape) != (len(features), longest) for k in keys):
        return not_yet(f"모양이 (예제 수, 가장 긴 예제의 길이) = ({len(features)}, {longest})이어야 합니다.")
    problems = []
    for row, f in enumerate(features):
        n = len(f["input_ids"])
        if batch["input_ids"][row, :n].tolist() != f["input_ids"] or batch["labels"][row, :n].tolist() != f["labels"]:
            problems.append("실제 토큰이 앞에 그대로 있어야 합니다 (채우는 쪽은 뒤, 오른쪽입니다)")
        elif batch["labels"][row, n:].ne(-100).any():
            problems.append("labels의 채운 자리가 -100이 아닙니다: 손실이 패딩까지 학습합니다")
        elif batch["input_ids"][row, n:].ne(tokenizer.pad_token_id).any():
            problems.append("input_ids의 채운 자리는 tokenizer.pad_token_id입니다")
        elif batch["attention_mask"][row].tolist() != [1] * n + [0] * (longest - n):
            problems.append("attention_mask는 실제 토큰 1, 채운 자리 0입니다")
    problems = list(dict.fromkeys(problems))
    masked = int(batch["labels"].eq(-100).sum())
    return verdict(not problems, f"배치 {tuple(batch['input_ids'].shape)}, 손실에서 빠지는 자리 {masked}개 "
                   "(프롬프트 + 채운 자리)", "; ".join(problems) + ".")

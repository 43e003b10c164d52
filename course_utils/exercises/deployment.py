"""Exercise checks of notebook 08. 배포 (notebooks/08_deployment.ipynb)."""
from __future__ import annotations

from pathlib import Path

from . import Verdict, close, direction, unanswered, verdict


def check_08_basic(answer_ratio, gguf_dir) -> Verdict:
    """기초: Q8_0 GGUF 파일은 F16 GGUF 파일의 몇 배 크기인가? (2% 이내)"""
    if (v := unanswered(answer_ratio)) is not None:
        return v
    sizes = {t: (Path(gguf_dir) / f"model-{t}.gguf").stat().st_size for t in ("f16", "q8_0")}
    truth = sizes["q8_0"] / sizes["f16"]
    return verdict(close(answer_ratio, truth, 0.02), f"{truth:.3f}배: 값 하나가 2바이트에서 1바이트 + 32값마다 스케일 하나로",
                   f"{direction(answer_ratio, truth)} 두 파일의 크기(stat().st_size)를 나누세요 (Q8_0이 분자).")


def check_08_applied(answer_tokens, tokenizer, question: str = "한국의 수도는 어디인가요?") -> Verdict:
    """응용: 병합 모델의 채팅 템플릿으로 question을 보내면 프롬프트는 몇 토큰인가?"""
    if (v := unanswered(answer_tokens)) is not None:
        return v
    truth = len(tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                              tokenize=True)["input_ids"])
    return verdict(answer_tokens == truth, f"{truth} 토큰: 학습 때 프롬프트와 같은 토큰입니다 (BOS, ### 질문:, ### 답변:).",
                   f"{direction(answer_tokens, truth)} tokenizer.apply_chat_template(..., add_generation_prompt=True, "
                   "tokenize=True)['input_ids']의 길이입니다.")


def check_08_challenge(answer_status) -> Verdict:
    """도전: 강좌의 서버에 max_tokens=0으로 요청하면 HTTP 상태 코드는? (숫자)"""
    from ..serve_checks import request_problem

    if (v := unanswered(answer_status)) is not None:
        return v
    body = {"messages": [{"role": "user", "content": "안녕"}], "max_tokens": 0}
    truth = 400 if request_problem("/v1/chat/completions", body) else 200
    return verdict(answer_status == truth, f"{truth}: 잘못된 요청은 일을 시작하기 전에 메시지와 함께 거절합니다 (4xx).",
                   "서버가 요청을 검사하는 규칙은 course_utils/serve_checks.py의 request_problem에 있습니다.")

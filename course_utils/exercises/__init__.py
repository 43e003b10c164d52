"""Checks for the exercises at the end of notebooks 01-07 (기초 / 응용 / 도전), one module per lesson.

Each ``check_NN_…`` computes the right answer itself, compares it with the learner's, prints "정답" or
"아직" with a reason that points the way without giving the number away, and returns a ``Verdict``. An
unanswered exercise (``None``) is "아직", never an error, so notebooks run top to bottom. Worked
solutions are in ``notebooks/solutions/``. This module holds what every lesson's checks share.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok


def verdict(ok: bool, right: str, not_yet: str) -> Verdict:
    """Print and return 정답 (with ``right``) or 아직 (with ``not_yet``, a hint that does not give the answer)."""
    v = Verdict(ok, f"정답 ✅ {right}" if ok else f"아직 🔸 {not_yet}")
    print(v.message)
    return v


def not_yet(message: str) -> Verdict:
    """Print and return 아직 with ``message``."""
    v = Verdict(False, f"아직 🔸 {message}")
    print(v.message)
    return v


def unanswered(answer) -> Verdict | None:
    """아직 when the learner has not filled ``answer`` yet, else None."""
    return not_yet("answer에 답을 넣고 이 셀을 다시 실행하세요.") if answer is None else None


def close(answer, truth: float, rel: float) -> bool:
    """``answer`` is a number within ``rel`` (relative) of ``truth``."""
    return isinstance(answer, (int, float)) and not isinstance(answer, bool) and math.isclose(answer, truth, rel_tol=rel)


def direction(answer, truth) -> str:
    return "너무 큽니다" if answer > truth else "너무 작습니다"

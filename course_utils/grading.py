"""Grading a short factual answer (the probe questions): one function, ``grade``, used by 05, 06, 09, the exercises
and the benchmarks.

An answer is right only when an accepted answer appears in its *first sentence* and no competing candidate appears
there. Competitors are the probe's ``competitors`` (other capitals, other formulas, other dates) and, for a numeric
answer, every other whole number that is not in the question. So "서울, 부산, 대구, 경기도" (a list of guesses) is wrong
for the capital of Korea, and "10시간 정도. 24시간 이내에" is wrong for the hours of a day: 24 is not in the first
sentence. A number counts only whole: "24" does not match inside "240" or "2024", and "1,000" equals "1000". A Latin
word or formula counts only whole too ("H2O" is not in "H2O2"). Korean words match inside words, because particles
attach to them ("런던입니다").
"""
from __future__ import annotations

import re
from dataclasses import dataclass

NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")  # "24", "1,000", "8.15"
SENTENCE_END = re.compile(r"[\n!?。]|\.(?!\d)|(?<!\d)\.")  # a full stop, but not the one inside "8.15"
ASCII_ALNUM = re.compile(r"[A-Za-z0-9]")


@dataclass(frozen=True)
class Grade:
    correct: bool
    sentence: str  # the first sentence of the answer: the only part that is graded
    found: str | None  # the accepted answer found there
    competitor: str | None  # a competing candidate found there (makes the answer wrong)
    reason: str  # in Korean, for the tables

    @property
    def mark(self) -> str:
        return "✓" if self.correct else "✗"


def first_sentence(answer: str) -> str:
    text = answer.strip()
    end = SENTENCE_END.search(text)
    return (text[: end.start()] if end else text).strip()


def _value(number: str) -> float:
    return float(number.replace(",", ""))


def _is_number(text: str) -> bool:
    return bool(NUMBER.fullmatch(text.strip()))


def _spans(text: str, candidate: str) -> list[tuple[int, int]]:
    """Where ``candidate`` occurs in ``text`` as a whole: a number as a whole number, a Latin word or formula not
    inside a longer one, a Korean word anywhere."""
    if _is_number(candidate):
        want = _value(candidate)
        return [m.span() for m in NUMBER.finditer(text) if _value(m.group()) == want]
    spans = []
    for m in re.finditer(re.escape(candidate), text, flags=re.IGNORECASE):
        before = text[m.start() - 1] if m.start() else ""
        after = text[m.end()] if m.end() < len(text) else ""
        if ASCII_ALNUM.match(candidate[0]) and ASCII_ALNUM.match(before or " "):
            continue
        if ASCII_ALNUM.match(candidate[-1]) and ASCII_ALNUM.match(after or " "):
            continue
        spans.append(m.span())
    return spans


def accepted(probe: dict) -> list[str]:
    """Every accepted spelling of the probe's answer, the expected one first."""
    return [probe["expected"], *probe.get("accept", [])]


def accepted_text(probe: dict) -> str:
    """The expected column of a table: every accepted spelling shown ("런던 (또는 London)")."""
    others = probe.get("accept", [])
    return probe["expected"] + (f" (또는 {', '.join(others)})" if others else "")


def _competitors(probe: dict, sentence: str) -> list[str]:
    listed = list(probe.get("competitors", []))
    if _is_number(probe["expected"]):  # a numeric answer: every other number competes, except the question's own
        asked = " ".join([probe["question"], *probe.get("paraphrases", [])])
        allowed = {_value(n) for a in accepted(probe) for n in NUMBER.findall(a)} | \
            {_value(n) for n in NUMBER.findall(asked)}
        listed += [m.group() for m in NUMBER.finditer(sentence) if _value(m.group()) not in allowed]
    return listed


def grade(answer: str, probe: dict) -> Grade:
    """Right when an accepted answer is in the first sentence and no competitor is there (see the module text)."""
    sentence = first_sentence(answer)
    found = next((a for a in accepted(probe) if _spans(sentence, a)), None)
    if found is None:
        return Grade(correct=False, sentence=sentence, found=None, competitor=None, reason="첫 문장에 정답 없음")
    rest = sentence
    for a in accepted(probe):  # the accepted answers' own text cannot compete ("H2" inside "H2O")
        for start, end in _spans(rest, a):
            rest = rest[:start] + " " * (end - start) + rest[end:]
    rival = next((c for c in _competitors(probe, rest) if _spans(rest, c)), None)
    if rival is not None:
        return Grade(correct=False, sentence=sentence, found=found, competitor=rival,
                     reason=f"첫 문장에 다른 후보 '{rival}'도 있음")
    return Grade(correct=True, sentence=sentence, found=found, competitor=None, reason=f"첫 문장에 '{found}'")

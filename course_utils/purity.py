"""Korean purity (06 and 10): does an answer drift out of Korean?

An answer drifts when it has Han characters (Hanja or Chinese), kana, or a run of more than ``NAME_WORDS`` Latin words
that its question does not already contain, unless the question asks for that language ("영어로 번역하세요"). A short Latin run is a name or a term ("Thank you", "New York City", "CPU"),
a comma ends a run (a list of acronyms is not a sentence), and a line that looks like code (brackets, ``=``, a
keyword first) is skipped, so none of them counts. Chinese characters in Korean
answers are what learners of Qwen-family models report most; the course's models are measured for it the same way.
"""
from __future__ import annotations

import re

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")  # CJK ideographs: Hanja, Chinese
# hiragana, katakana, half-width katakana; not "・" (U+30FB, a middle dot Korean text uses too) nor "ー" (U+30FC)
KANA = re.compile(r"[\u3040-\u30fa\u30fd-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
LATIN_RUN = re.compile(r"[A-Za-z]+(?:[ '-]+[A-Za-z]+)*")  # Latin words joined by spaces, apostrophes, hyphens
CODE_LINE = re.compile(r"[()\[\]{}=;`<>]|:\s*$|^\s*(import|from|def|class|for|while|if|return|print|SELECT)\b")
NAME_WORDS = 3  # "New York City": a name; four Latin words in a row are a sentence in another language
# a question that asks for the language ("영어로 번역하세요") makes its script the right answer, not a drift
ASKS = {"han": ("한자", "중국어", "Chinese", "漢字"), "kana": ("일본어", "Japanese", "가나"), "latin": ("영어", "English", "영문")}


def drift(answer: str, question: str = "") -> str | None:
    """Why ``answer`` left Korean, in Korean (for the tables), or None when it did not. Characters and runs that
    ``question`` contains are the learner's own and do not count."""
    asked = {script for script, words in ASKS.items() if any(w in question for w in words)}
    han = [c for c in HAN.findall(answer) if c not in question and "han" not in asked]
    if han:
        return f"한자 {''.join(dict.fromkeys(han))[:6]}"
    kana = [c for c in KANA.findall(answer) if c not in question and "kana" not in asked]
    if kana:
        return f"가나 {''.join(dict.fromkeys(kana))[:6]}"
    for line in answer.splitlines() if "latin" not in asked else ():
        if CODE_LINE.search(line):  # a line of code: its keywords and identifiers are not a drift out of Korean
            continue
        for run in LATIN_RUN.finditer(line):
            words = re.findall(r"[A-Za-z]+", run.group())
            if len(words) > NAME_WORDS and run.group() not in question:
                return f"로마자 {len(words)}단어 '{run.group()[:30]}'"
    return None


def drifted(answers: list[str], questions: list[str]) -> list[tuple[int, str]]:
    """(index, reason) of every answer that drifts out of Korean (``drift``)."""
    return [(i, why) for i, (a, q) in enumerate(zip(answers, questions, strict=True)) if (why := drift(a, q))]

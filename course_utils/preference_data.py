"""Preference pairs (notebook 10): the bundled Korean pairs, and pairs made from what the learner's own SFT adapter
gets wrong, measured with 06's code.

A pair is {instruction, input, chosen, rejected, kind, split}. TRL's trainers read ``prompt``/``chosen``/``rejected``
text (``trl_dataset``): the prompt is the course's template, the answers start with its space, and TRL appends the EOS,
exactly as ``prompts.encode`` builds a training record (tests/test_preference.py compares the token ids).
"""
from __future__ import annotations

import json
from pathlib import Path

PAIRS_FILE = Path(__file__).with_name("data") / "preference_ko.jsonl"
FIELDS = ("instruction", "chosen", "rejected")
SPLITS = ("train", "dev", "test")  # dev: the recipe is chosen on it (benchmarks/preference_recipe.py); test: reported
FAR_CHRF = 20.0  # an own answer this far from the reference (chrF below it) is a "wrong answer" pair


class PairError(ValueError):
    """A preference pair is malformed: the message names the line, the field and the fix."""


def load_pairs(path: str | Path = PAIRS_FILE) -> list[dict]:
    """Every pair of a JSONL file, checked: the three text fields non-empty, chosen != rejected, a known split."""
    pairs = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}, {number}번째 줄"
        try:
            pair = json.loads(line)
        except json.JSONDecodeError as err:
            raise PairError(f"{where}: 올바른 JSON이 아닙니다({err.msg}). 한 줄에 JSON 객체 하나를 쓰세요") from None
        if not isinstance(pair, dict):
            raise PairError(f"{where}: {', '.join(FIELDS)}가 든 JSON 객체여야 하는데 {type(pair).__name__}입니다")
        for field in FIELDS:
            if not isinstance(pair.get(field), str) or not pair[field].strip():
                raise PairError(f"{where}: 필드 '{field}'는 비어 있지 않은 문자열이어야 하는데 {pair.get(field)!r}입니다. "
                                f"질문(instruction), 고른 답(chosen), 버린 답(rejected)을 모두 쓰세요")
        if pair["chosen"].strip() == pair["rejected"].strip():
            raise PairError(f"{where}: 'chosen'과 'rejected'가 같은 글입니다: 쌍에는 서로 다른 두 답이 필요합니다")
        if pair.get("split", "train") not in SPLITS:
            raise PairError(f"{where}: split={pair['split']!r}; {', '.join(SPLITS)} 중 하나를 쓰세요 (dev: 학습률을 "
                            f"고르는 데, test: 보고에만 씁니다)")
        pairs.append({"input": "", "kind": "pair", "split": "train", **pair})
    if not pairs:
        raise PairError(f"{path}: 쌍이 하나도 없습니다")
    return pairs


def split_pairs(pairs: list[dict]) -> tuple[list[dict], list[dict], list[dict]]:
    """(training pairs, dev pairs, test pairs) by their ``split`` field."""
    return tuple([p for p in pairs if p["split"] == split] for split in SPLITS)


def own_pairs(model, tokenizer, records: list[dict], template: str, max_new_tokens: int, batch_size: int = 8) -> list[dict]:
    """Pairs from the adapter's own mistakes on ``records`` (training records, never the held-out ones or the probes),
    answered under plain greedy decoding as 06 measures loops:

    - ``own-loop``: an answer that loops (``evaluation.is_degenerate``);
    - ``own-runon``: an answer that hit the token limit without EOS;
    - ``own-wrong``: an answer whose chrF against the reference is below ``FAR_CHRF``.

    The chosen answer is always the record's reference, written by a person: the adapter's own answer cut where it
    should have stopped was chosen before, and some such cuts were nonsense ("일찍 일어나서 씻고 옷을 입고 집으로
    가기" as the way to get up early), which DPO then learned to prefer.
    """
    from .evaluation import chrf, is_degenerate
    from .inference import PLAIN_GREEDY, generate_batch

    rows = generate_batch(model, tokenizer, [(r["instruction"], r.get("input", "")) for r in records], template,
                          max_new_tokens, batch_size, **PLAIN_GREEDY)
    scores = chrf([r["answer"] for r in rows], [r["output"] for r in records])
    pairs = []
    for record, row, score in zip(records, rows, scores, strict=True):
        answer, kind, chosen = row["answer"], None, record["output"]
        if is_degenerate(row):
            kind = "own-loop"
        elif row["hit_limit"]:
            kind = "own-runon"
        elif score < FAR_CHRF:
            kind = "own-wrong"
        if kind and answer.strip() and answer.strip() != chosen.strip():
            pairs.append({"instruction": record["instruction"], "input": record.get("input", ""), "chosen": chosen,
                          "rejected": answer, "kind": kind, "split": "train", "chrf": round(score, 1)})
    return pairs


def trl_dataset(pairs: list[dict], tokenizer, template: str):
    """A ``datasets.Dataset`` of prompt / chosen / rejected text as TRL's DPO and ORPO trainers read it. datasets'
    progress bars are switched off: the trainers map the dataset three times, each a bar (a widget in a notebook)."""
    import datasets
    from datasets import Dataset

    datasets.disable_progress_bars()
    from .prompts import format_record

    rows = []
    for p in pairs:
        prompt, chosen = format_record({**p, "output": p["chosen"]}, tokenizer, template)
        _, rejected = format_record({**p, "output": p["rejected"]}, tokenizer, template)
        rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    return Dataset.from_list(rows)


def kind_counts(pairs: list[dict]) -> dict[str, int]:
    """How many pairs of each kind, in first-seen order."""
    counts: dict[str, int] = {}
    for p in pairs:
        counts[p["kind"]] = counts.get(p["kind"], 0) + 1
    return counts

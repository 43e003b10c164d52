"""Taught, memorized or generalized: where a probe's answer stands in the training data, and which answer the model
prefers before and after training.

- ``closest_record``: the training record whose instruction is closest to the probe's question, by chrF (sacrebleu,
  the same character n-gram F score 05/06 report for answers), and whether that record's output already states the
  probe's answer (graded by ``grading.grade``). A probe answered right whose fact was in such a record may have been
  repeated; one whose fact was not there was not simply copied from the data.
- ``prefers_right``: the answer-token cross-entropy of "<정답>입니다." against "<first competitor>입니다." after the
  probe's prompt, the same loss training minimizes. A lower loss for the right answer means the model ranks it above
  the competitor, whatever it generates. Measured with the adapter off (the base model) and on.
"""
from __future__ import annotations

from dataclasses import dataclass

from .grading import grade
from .loss import heldout_loss_sum
from .prompts import KOALPACA, encode


@dataclass(frozen=True)
class Closest:
    instruction: str  # the closest training record's instruction
    output: str
    chrf: float  # chrF of that instruction against the probe's question (0-100)
    states_answer: bool  # its output is graded right for the probe: the fact was in the training data


def closest_record(probe: dict, records: list[dict]) -> Closest:
    """The training record closest to ``probe``'s question (chrF of the instruction), and whether it states the answer."""
    from sacrebleu.metrics import CHRF

    chrf = CHRF()
    score, best = max(((chrf.sentence_score(r["instruction"], [probe["question"]]).score, r) for r in records),
                      key=lambda pair: pair[0])
    return Closest(instruction=best["instruction"], output=best["output"], chrf=score,
                   states_answer=grade(best["output"], probe).correct)


def answer_losses(model, tokenizer, probe: dict, template: str = KOALPACA, pad: int = 0) -> tuple[float, float]:
    """(loss of "<expected>입니다.", loss of "<first competitor>입니다.") after the probe's prompt, in nats per answer."""
    def loss(text: str) -> float:
        example = encode({"instruction": probe["question"], "input": "", "output": f"{text}입니다."}, tokenizer,
                         template=template)
        total, _ = heldout_loss_sum(model, [example], pad, batch_size=1)
        return total

    return loss(probe["expected"]), loss(probe["competitors"][0])


def prefers_right(model, tokenizer, probe: dict, template: str = KOALPACA, pad: int = 0) -> bool:
    right, rival = answer_losses(model, tokenizer, probe, template, pad)
    return right < rival

"""What fine-tuning broke: the loss on general text outside the instruction format, with the adapter off and on.

The measure is peft's own "forgetting" metric of its MetaMathQA method comparison (peft PR #2925, fixed in #3419):
the mean next-token cross-entropy on general text after training minus before. peft 0.21 does not ship it as a
library function (it lives in the repository's ``method_comparison`` benchmark), so the course computes it here,
the same way: targets shifted by one, "before" = the base model (a LoRA adapter starts as an identity, so the base
with the adapter disabled is exactly the model before training). The text is the course's own: 40+ general Korean
paragraphs and 40+ English ones (``data/general_ko.jsonl``, ``data/general_en.jsonl``, written for the course,
CC BY 4.0): no question, no answer, no template. A positive change means the adapter made ordinary text less likely:
it forgot something. Each change comes with the count of paragraphs that got worse, so one odd paragraph cannot
carry the mean.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .loss import length_batches

DATA = Path(__file__).parent / "data"
LANGUAGES = {"ko": "한국어 일반 문단", "en": "영어 일반 문단"}


def general_texts(language: str, limit: int | None = None) -> list[str]:
    """The bundled general paragraphs of ``language`` ("ko" or "en"); the first ``limit`` of them when given."""
    if language not in LANGUAGES:
        raise ValueError(f"언어 {language!r}의 일반 문단은 없습니다: {', '.join(LANGUAGES)} 중에서 고르세요")
    lines = (DATA / f"general_{language}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines if line.strip()][:limit]


def general_sentences(language: str, limit: int | None = None) -> list[str]:
    """The sentences of the bundled general paragraphs of ``language``, in order (split after ".", "!" or "?" followed
    by a space); the first ``limit`` of them when given. Notebook 02 measures quantization's loss on them."""
    import re

    sentences = [s for text in general_texts(language) for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]
    return sentences[:limit]


@torch.no_grad()
def text_losses(model, tokenizer, texts: list[str], batch_size: int = 4) -> list[tuple[float, int]]:
    """(sum of next-token cross-entropy in nats, number of predicted tokens) for each text, in order.

    Each text is tokenized as the model reads plain text (the tokenizer's special tokens: BOS for Gemma and Llama),
    right-padded in batches of similar length (``loss.length_batches``); every token after the first is a target."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    encoded = [tokenizer(t)["input_ids"] for t in texts]
    out: list[tuple[float, int]] = [(0.0, 0)] * len(texts)
    for indices in length_batches([len(ids) for ids in encoded], batch_size):
        chunk = [encoded[i] for i in indices]
        width = max(len(ids) for ids in chunk)
        ids = torch.zeros(len(chunk), width, dtype=torch.long)
        mask = torch.zeros(len(chunk), width, dtype=torch.long)
        for row, seq in enumerate(chunk):
            ids[row, :len(seq)] = torch.tensor(seq)
            mask[row, :len(seq)] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False).logits
        targets = ids[:, 1:].to(device).masked_fill(mask[:, 1:].to(device) == 0, -100)
        for row, i in enumerate(indices):
            # one row at a time, as (tokens, vocabulary): the (batch, vocabulary, tokens) layout rounds worse on a CPU
            # (2e-4 per token measured on SmolLM2, against 0 for this one, compared with transformers' own loss), and
            # the whole batch's log-probabilities would be another vocabulary-sized copy of its logits (Gemma: 262,144
            # per token)
            per_token = F.cross_entropy(logits[row, :-1].float(), targets[row], ignore_index=-100, reduction="none")
            out[i] = (float(per_token.sum()), int((targets[row] != -100).sum()))
        del logits
    model.train(was_training)
    return out


def mean_loss(losses: list[tuple[float, int]]) -> float:
    """Token-weighted mean of ``text_losses`` output (nats/token)."""
    return sum(s for s, _ in losses) / sum(n for _, n in losses)


@dataclass(frozen=True)
class Forgetting:
    language: str
    before: float  # mean next-token loss (nats/token), adapter off (= before training)
    after: float  # the same with the adapter on
    worse: int  # paragraphs whose own mean loss rose
    texts: int

    @property
    def change(self) -> float:
        """after - before (nats/token): peft's forgetting number; > 0 means ordinary text became less likely."""
        return self.after - self.before

    @property
    def relative(self) -> float:
        return self.change / self.before


def compare_losses(language: str, before: list[tuple[float, int]], after: list[tuple[float, int]]) -> Forgetting:
    worse = sum(a / n > b / m for (b, m), (a, n) in zip(before, after, strict=True))
    return Forgetting(language, mean_loss(before), mean_loss(after), worse, len(before))


def base_losses(model, tokenizer, limit: int | None = None, batch_size: int = 4) -> dict:
    """Per-paragraph losses of the base model (a peft model with its adapter disabled), by language."""
    with model.disable_adapter():
        return {lang: text_losses(model, tokenizer, general_texts(lang, limit), batch_size) for lang in LANGUAGES}


def measure(model, tokenizer, limit: int | None = None, batch_size: int = 4, before: dict | None = None
            ) -> dict[str, Forgetting]:
    """Forgetting of a peft model on each language's general paragraphs (the first ``limit`` of each): adapter off
    (``before``, measured here unless given, e.g. once for all trials of a search) against adapter on."""
    before = before or base_losses(model, tokenizer, limit, batch_size)
    return {lang: compare_losses(lang, before[lang], text_losses(model, tokenizer, general_texts(lang, limit),
                                                                batch_size)) for lang in LANGUAGES}


def table(results: dict[str, Forgetting], heldout_before: float | None = None, heldout_after: float | None = None):
    """The held-out answer loss (what training aimed at) beside the general-text losses (what it may have broken)."""
    import pandas as pd

    rows = []
    if heldout_before is not None:
        rows.append({"텍스트": "시험 세트의 답 (학습 목표)", "학습 전": round(heldout_before, 4),
                     "학습 후": round(heldout_after, 4), "변화 (nats/토큰)": round(heldout_after - heldout_before, 4),
                     "변화 %": round(100 * (heldout_after / heldout_before - 1), 1), "나빠진 문단": ""})
    for lang, f in results.items():
        rows.append({"텍스트": LANGUAGES[lang], "학습 전": round(f.before, 4), "학습 후": round(f.after, 4),
                     "변화 (nats/토큰)": round(f.change, 4), "변화 %": round(100 * f.relative, 1),
                     "나빠진 문단": f"{f.worse}/{f.texts}"})
    return pd.DataFrame(rows).set_index("텍스트")

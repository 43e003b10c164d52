"""What the learner gets: answer quality of a model with its adapter off and on, measured and counted.

For the held-out records: answer loss per kind of task, the greedy answer scored against the reference
with chrF (character n-gram F-score, sacrebleu's implementation: it counts characters, which suits
Korean), the share of answers that end with EOS, and the share of degenerate answers (a loop). For the
probe questions: accuracy (whether the answer survives rephrasing the question is 06's: ``robustness``).
Every share comes with its count ("4/22"), never a bare percentage.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from .grading import grade
from .inference import generate_batch

KIND_NAMES = {"qa": "사실 질문", "explain": "설명", "rewrite": "고쳐 쓰기·번역", "summary": "요약·제목",
              "classify": "분류", "lists": "나열·정렬·순서", "arith": "계산", "howto": "방법 안내", "compare": "비교",
              "advice": "조언", "code": "코드"}
# a piece of 1-30 characters repeated three or more times in a row ("식물성 식물성 식물성", "0000000")
# how a report's sides are labelled in tables a learner reads
SIDE_NAMES = {"base": "기본 모델", "adapter": "어댑터", "adapter, plain greedy": "어댑터, 반복 패널티 없이"}
LOOP = re.compile(r"(\S.{0,29}?)(?:\s*\1){2,}", re.DOTALL)
LOOP_MIN_CHARS = 6  # ... covering at least this many characters ("ㅎㅎㅎ" or "111" alone are not a loop)
PROBE_TOKENS = 24  # probes are short factual questions: at most this many new tokens (the profile's answer length if less)


@dataclass(frozen=True)
class Count:
    """``hits`` out of ``total``, printed as "4/22 (18 %)"."""

    hits: int
    total: int

    @property
    def share(self) -> float:
        return self.hits / self.total if self.total else 0.0

    def __str__(self) -> str:
        return f"{self.hits}/{self.total} ({100 * self.share:.0f} %)"


def loop_in(text: str) -> str | None:
    """The first repeated piece that makes ``text`` a loop (see ``LOOP``), or None."""
    for m in LOOP.finditer(text):
        if len(m.group(0)) >= LOOP_MIN_CHARS:
            return m.group(1)
    return None


def is_degenerate(row: dict) -> bool:
    """A generated answer (``inference.generate_batch`` row) that loops, or is empty."""
    return not row["answer"].strip() or loop_in(row["answer"]) is not None


def chrf(answers: list[str], references: list[str]) -> list[float]:
    """Sentence-level chrF (0-100) of each answer against its reference (sacrebleu, default chrF settings)."""
    from sacrebleu.metrics import CHRF

    metric = CHRF()
    return [metric.sentence_score(a, [r]).score for a, r in zip(answers, references, strict=True)]


def per_kind_loss(records: list[dict], losses: list[tuple[float, int]]) -> dict:
    """kind -> (records, answer tokens, mean answer-token loss in nats) over held-out ``records`` from their
    ``loss.record_losses`` (in the same order); plus "all" (token-weighted over every record). Records without a
    ``kind`` count as "other"."""
    if len(losses) != len(records):
        raise ValueError(f"레코드 {len(records)}개에 손실이 {len(losses)}개입니다: 같은 레코드를 같은 순서로 잰 손실을 주세요")
    from .loss import total_loss

    out = {}
    kinds = sorted({r.get("kind", "other") for r in records}, key=lambda k: list(KIND_NAMES).index(k)
                   if k in KIND_NAMES else len(KIND_NAMES))
    for kind in kinds:
        group = [pair for r, pair in zip(records, losses, strict=True) if r.get("kind", "other") == kind]
        out[kind] = (len(group), sum(n for _, n in group), total_loss(group))
    out["all"] = (len(records), sum(n for _, n in losses), total_loss(losses))
    return out


def consistency(phrasings: dict[int, list[bool]]) -> dict:
    """Agreement across paraphrases: questions whose phrasings agree (``agree``), split into all right and all wrong,
    and the accuracy of each phrasing slot (original, paraphrase 1, 2, 3) with its spread (best minus worst slot)."""
    slots = max(len(v) for v in phrasings.values())
    per_slot = [Count(sum(v[j] for v in phrasings.values() if len(v) > j),
                      sum(1 for v in phrasings.values() if len(v) > j)) for j in range(slots)]
    return {"agree": Count(sum(len(set(v)) == 1 for v in phrasings.values()), len(phrasings)),
            "all_right": Count(sum(all(v) for v in phrasings.values()), len(phrasings)),
            "all_wrong": Count(sum(not any(v) for v in phrasings.values()), len(phrasings)),
            "per_slot": per_slot, "spread": max(c.share for c in per_slot) - min(c.share for c in per_slot)}


def answered_records(records: list, generate: int | None) -> list:
    """The records answered by generation: ``generate`` of them taken evenly across ``records`` (``spread``: the
    held-out records are grouped by kind, so the first ones would leave the last kinds unanswered), all when None."""
    from .splits import spread

    return spread(records, generate) if generate else records


def side(model, tokenizer, records, examples, probes, template: str, pad: int, max_new_tokens: int = 48,
         batch_size: int = 8, generate: int | None = None, losses: list | None = None, **decoding) -> dict:
    """Everything 05 measures for one model (one side: adapter off or on); answers are generated for ``generate``
    records (``answered_records``), the loss uses every record (``losses``: this side's ``loss.record_losses`` of
    ``examples`` when already measured; they must fit ``examples``, ``loss.check_record_losses``). The probes are
    asked as written; their paraphrases are 06's (``robustness``)."""
    from .loss import check_record_losses, record_losses

    if losses is not None:
        check_record_losses(examples, losses)
    held = answers_only(model, tokenizer, answered_records(records, generate), template, max_new_tokens,
                        batch_size, **decoding)
    answers = generate_batch(model, tokenizer, [(p["question"], "") for p in probes], template,
                             min(PROBE_TOKENS, max_new_tokens), batch_size, **decoding)
    losses = record_losses(model, examples, pad, batch_size) if losses is None else losses
    return {"loss_by_kind": per_kind_loss(records, losses), **held,
            "probes": Count(sum(grade(a["answer"], p).correct for a, p in zip(answers, probes, strict=True)),
                            len(probes)),
            "probe_answers": [a["answer"] for a in answers]}


def evaluate(model, tokenizer, records, examples, probes, template: str, pad: int, max_new_tokens: int = 48,
             batch_size: int = 8, generate: int | None = None, losses: dict | None = None, **decoding) -> dict:
    """``side`` with the adapter off ("base") and on ("adapter") of a peft ``model``, with the course's decoding
    defaults. ``losses``: {"base": ..., "adapter": ...} record losses already measured (training's, before and after),
    or None to measure them."""
    losses = losses or {}
    with model.disable_adapter():
        base = side(model, tokenizer, records, examples, probes, template, pad, max_new_tokens, batch_size, generate,
                    losses.get("base"), **decoding)
    tuned = side(model, tokenizer, records, examples, probes, template, pad, max_new_tokens, batch_size, generate,
                 losses.get("adapter"), **decoding)
    return {"base": base, "adapter": tuned}


def answers_only(model, tokenizer, records, template: str, max_new_tokens: int = 48, batch_size: int = 8,
                 **decoding) -> dict:
    """Held-out answers under one decoding setting: chrF (mean and each), EOS share, degenerate share (``side``'s
    answer half, 06's decoding table)."""
    rows = generate_batch(model, tokenizer, [(r["instruction"], r["input"]) for r in records], template,
                          max_new_tokens, batch_size, **decoding)
    scores = chrf([r["answer"] for r in rows], [r["output"] for r in records])
    return {"answers": rows, "chrf": sum(scores) / len(scores), "chrf_each": scores,
            "eos": Count(sum(r["stopped_at_eos"] for r in rows), len(rows)),
            "degenerate": Count(sum(is_degenerate(r) for r in rows), len(rows))}


def heldout_set(profile, tokenizer, split: str) -> tuple[list[dict], list[dict]]:
    """(records, their encoded examples) of one held-out split of the profile's data, as training split it:
    ``"dev"`` for a choice (06's decoding comparison), ``"test"`` for a report (05's and 06's evaluation)."""
    from .prompts import encode
    from .splits import split_source

    d = profile.data
    _, dev, test, _ = split_source(d.source, profile.train.heldout_records, profile.train.seed, d.on_invalid,
                                   d.max_records)
    held = {"dev": dev, "test": test}[split]
    return held, [encode(r, tokenizer, profile.seq_len, d.template) for r in held]


def report_key(profile, weights: str, records: list[dict], probes: list[dict]) -> dict:
    """What a cached evaluation of the adapter whose weights hash to ``weights`` depends on: the records and probes,
    decoding, prompt format and the answer settings; the batch size too, since batched greedy answers can differ with
    the padding a batch brings."""
    from .inference import DEFAULT_DECODING

    t = profile.train
    return {"adapter": weights, "records": records, "probes": probes, "decoding": DEFAULT_DECODING,
            "template": profile.data.template, "seq_len": profile.seq_len, "generate": t.generate_records,
            "answer_tokens": t.answer_tokens, "batch_size": t.eval_batch_size}


def report_for(model, tokenizer, profile, adapter_dir, progress=print, test_losses: dict | None = None) -> dict:
    """The evaluation of an adapter (``model`` is it on its base), stored beside it: 05 measures, 06 reads.
    ``test_losses``: the test records' losses training already measured (``TrainResult.test_losses``: the base before
    training, the kept checkpoint after), added up per kind of task instead of two more passes over the records."""
    from .data import load_probes
    from .prompts import pad_id

    records, examples = heldout_set(profile, tokenizer, "test")  # reported only
    probes = load_probes()[: profile.train.probe_questions]
    key = report_key(profile, adapter_digest(adapter_dir), records, probes)
    generate, tokens = profile.train.generate_records, profile.train.answer_tokens

    def run():
        progress(f"기본 모델과 어댑터를 평가합니다: 양쪽 각각 시험 레코드 {min(generate, len(records))}개의 답과 확인 질문 "
                 f"{len(probes)}개 (CPU에서 몇 분)...")
        return evaluate(model, tokenizer, records, examples, probes, profile.data.template, pad_id(tokenizer),
                        max_new_tokens=tokens, batch_size=profile.train.eval_batch_size, generate=generate,
                        losses=test_losses)

    return cached_evaluate(Path(adapter_dir) / "evaluation.json", key, run)


def adapter_digest(adapter_dir) -> str:
    """sha256 of an adapter's weights: the part of a cached evaluation's key that says which adapter it measured."""
    return hashlib.sha256((Path(adapter_dir) / "adapter_model.safetensors").read_bytes()).hexdigest()


def cached_evaluate(cache: str | Path, key: dict, run) -> dict:
    """``run()``'s report, or the one stored in ``cache`` when it was made with the same ``key`` (adapter weights,
    records, decoding). 05 evaluates once after training and 06 reads the same numbers instead of spending minutes;
    what 06 measures itself (``robustness``) is stored the same way for its next run."""
    from .files import write_text

    cache = Path(cache)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    if cache.exists():
        stored = json.loads(cache.read_text(encoding="utf-8"))
        if stored.get("key") == digest:
            return _decode(stored["report"])
    report = run()
    write_text(cache, json.dumps({"key": digest, "report": _encode(report)}, ensure_ascii=False))
    return report


def _encode(obj):
    if isinstance(obj, Count):
        return {"__count__": [obj.hits, obj.total]}
    if isinstance(obj, dict):
        return {str(k): _encode(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_encode(v) for v in obj]
    return obj


def _decode(obj, parent: str = ""):
    if isinstance(obj, dict):
        if "__count__" in obj:
            return Count(*obj["__count__"])
        return {(int(k) if parent == "phrasings" else k): _decode(v, k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    return obj


def summary_table(report: dict):
    """One row per measure, columns base / adapter (counts kept), for the notebooks; with 06's measures when the
    report carries them (``robustness.with_robustness``): paraphrase agreement, and a plain greedy column."""
    import pandas as pd

    rows = {}
    for name, s in report.items():
        row = {"chrF": f"{s['chrf']:.1f}", "EOS로 끝남": str(s["eos"]), "반복(퇴화) 답": str(s["degenerate"])}
        if "loss_by_kind" in s:
            row = {"시험 세트 손실 (nats/토큰)": f"{s['loss_by_kind']['all'][2]:.3f}", **row,
                   "확인 질문 정답": str(s["probes"])}
        if "phrasings" in s:  # 06 adds them (robustness.with_robustness)
            c = consistency(s["phrasings"])
            row |= {"바꿔 물어도 같은 판정": str(c["agree"]), "네 가지 표현 모두 정답": str(c["all_right"]),
                    "네 가지 표현 모두 오답": str(c["all_wrong"])}
        rows[SIDE_NAMES.get(name, name)] = row
    return pd.DataFrame(rows).fillna("")


def kind_table(report: dict):
    """Answer loss per kind of task, base vs adapter, with the change and each kind's share of what remains. Percentages
    to one decimal, as 05 prints the overall drop, so the 전체 row equals that line."""
    import pandas as pd

    base, tuned = report["base"]["loss_by_kind"], report["adapter"]["loss_by_kind"]
    remaining = sum(n_tok * loss for kind, (_, n_tok, loss) in tuned.items() if kind != "all")
    return pd.DataFrame([{"종류": KIND_NAMES.get(kind, kind) if kind != "all" else "전체", "레코드": n, "답변 토큰": tok,
                          "학습 전": round(base[kind][2], 2), "학습 후": round(loss, 2),
                          "감소 %": round(100 * (1 - loss / base[kind][2]), 1),
                          "남은 손실 중 몫 %": round(100 * tok * loss / remaining, 1)}
                         for kind, (n, tok, loss) in tuned.items()]).set_index("종류")

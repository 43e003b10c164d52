"""Does a measured answer hold when the question or the decoding changes: 06's checks of an adapter.

- Phrasing: each probe question is asked as written and in its 3 paraphrases, with the adapter off and on, and
  graded; ``evaluation.consistency`` counts the questions whose four judgements agree.
- Decoding: the adapter's answers to the same test records under plain greedy decoding (no repetition penalty,
  so loops show), beside 05's answers under the course's defaults.

05 measured these until its cpu run went over its 20 minutes on a 2-core CPU; without them 05 answers 22 probes per
side instead of 88 and makes no third pass over the answered records (Benchmark 11 times both parts). Stored beside
the adapter like 05's report, so running 06 again reads them.
"""
from __future__ import annotations

from pathlib import Path

from .evaluation import PROBE_TOKENS, adapter_digest, answered_records, answers_only, cached_evaluate, report_key
from .grading import grade
from .inference import PLAIN_GREEDY, generate_batch


def phrasing_grades(model, tokenizer, probes: list[dict], template: str, max_new_tokens: int = 48,
                    batch_size: int = 8, **decoding) -> dict[int, list[bool]]:
    """probe index -> [original correct, paraphrase 1 correct, ...]: every phrasing asked of this model in one call
    (the original too: 05's answer came from its training model, which on gpu8gb is loaded differently from 06's, so
    a disagreement between slots would not be the phrasing's alone)."""
    asked = [(i, q) for i, p in enumerate(probes) for q in [p["question"], *p.get("paraphrases", [])]]
    answers = generate_batch(model, tokenizer, [(q, "") for _, q in asked], template,
                             min(PROBE_TOKENS, max_new_tokens), batch_size, **decoding)
    by_probe: dict[int, list[bool]] = {}
    for (i, _), a in zip(asked, answers, strict=True):
        by_probe.setdefault(i, []).append(grade(a["answer"], probes[i]).correct)
    return by_probe


def robustness(model, tokenizer, records: list[dict], probes: list[dict], template: str, max_new_tokens: int = 48,
               batch_size: int = 8, generate: int | None = None) -> dict:
    """The probes in every phrasing with the adapter off ("base") and on ("adapter") of a peft ``model``, and the
    adapter's answers to the answered records (``evaluation.answered_records``) under plain greedy decoding
    ("adapter, plain greedy")."""
    with model.disable_adapter():
        base = phrasing_grades(model, tokenizer, probes, template, max_new_tokens, batch_size)
    tuned = phrasing_grades(model, tokenizer, probes, template, max_new_tokens, batch_size)
    plain = answers_only(model, tokenizer, answered_records(records, generate), template, max_new_tokens, batch_size,
                         **PLAIN_GREEDY)
    return {"base": {"phrasings": base}, "adapter": {"phrasings": tuned}, "adapter, plain greedy": plain}


def robustness_for(model, tokenizer, profile, adapter_dir, progress=print) -> dict:
    """``robustness`` of an adapter (``model`` is it on its base), stored beside it like 05's report: measured the
    first time 06 runs, read after."""
    from .data import load_probes
    from .evaluation import heldout_set

    records, _ = heldout_set(profile, tokenizer, "test")
    probes = load_probes()[: profile.train.probe_questions]
    t = profile.train
    key = {**report_key(profile, adapter_digest(adapter_dir), records, probes), "plain": PLAIN_GREEDY}
    phrasings = sum(1 + len(p.get("paraphrases", [])) for p in probes)

    def run():
        progress(f"확인 질문 {len(probes)}개를 네 가지 표현으로(질문 {phrasings}개) 기본 모델과 어댑터에 묻고, 시험 레코드 "
                 f"{min(t.generate_records, len(records))}개를 반복 패널티 없이 답합니다 (CPU에서 몇 분)...")
        return robustness(model, tokenizer, records, probes, profile.data.template, t.answer_tokens, t.eval_batch_size,
                          t.generate_records)

    return cached_evaluate(Path(adapter_dir) / "robustness.json", key, run)


def with_robustness(report: dict, robust: dict) -> dict:
    """05's report with 06's measures added to its sides, so ``evaluation.summary_table`` shows them all."""
    merged = {name: dict(side) for name, side in report.items()}
    for name, extra in robust.items():
        merged[name] = {**merged.get(name, {}), **extra}
    return merged

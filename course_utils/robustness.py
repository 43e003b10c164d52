"""Does a measured answer hold when the question or the decoding changes: 06's checks of an adapter.

- Phrasing: each probe question is asked again in its 3 paraphrases, with the adapter off and on, and graded like the
  original; the original's answer is the one 05's report holds. ``evaluation.consistency`` counts the questions
  whose four judgements agree.
- Decoding: the adapter's answers to the same test records under plain greedy decoding (no repetition penalty,
  so loops show), beside 05's answers under the course's defaults.

06 measures these, not 05, so that 05 fits in 20 minutes on a 2-core CPU: on the cpu profile they are 132 more
generated answers (22 probes × 3 paraphrases × 2 sides) and one more pass over the answered records. Stored beside
the adapter like 05's report, so running 06 again reads them.
"""
from __future__ import annotations

from pathlib import Path

from .evaluation import PROBE_TOKENS, adapter_digest, answered_records, answers_only, cached_evaluate, report_key
from .grading import grade
from .inference import generate_batch


def paraphrase_grades(model, tokenizer, probes: list[dict], originals: list[str], template: str,
                      max_new_tokens: int = 48, batch_size: int = 8, **decoding) -> dict[int, list[bool]]:
    """probe index -> [original correct, paraphrase 1 correct, ...]: ``originals`` are the answers already generated
    for the original questions (05's report), the paraphrases are answered here with the same settings."""
    asked = [(i, q) for i, p in enumerate(probes) for q in p.get("paraphrases", [])]
    answers = generate_batch(model, tokenizer, [(q, "") for _, q in asked], template,
                             min(PROBE_TOKENS, max_new_tokens), batch_size, **decoding)
    by_probe = {i: [grade(a, p).correct] for i, (p, a) in enumerate(zip(probes, originals, strict=True))}
    for (i, _), a in zip(asked, answers, strict=True):
        by_probe[i].append(grade(a["answer"], probes[i]).correct)
    return by_probe


def robustness(model, tokenizer, report: dict, records: list[dict], probes: list[dict], template: str,
               max_new_tokens: int = 48, batch_size: int = 8, generate: int | None = None) -> dict:
    """The paraphrases with the adapter off ("base") and on ("adapter") of a peft ``model``, and the adapter's
    answers to ``report``'s answered records under plain greedy decoding ("adapter, plain greedy")."""
    with model.disable_adapter():
        base = paraphrase_grades(model, tokenizer, probes, report["base"]["probe_answers"], template, max_new_tokens,
                                 batch_size)
    tuned = paraphrase_grades(model, tokenizer, probes, report["adapter"]["probe_answers"], template, max_new_tokens,
                              batch_size)
    plain = answers_only(model, tokenizer, answered_records(records, generate), template, max_new_tokens, batch_size,
                         do_sample=False, repetition_penalty=1.0)
    return {"base": {"phrasings": base}, "adapter": {"phrasings": tuned}, "adapter, plain greedy": plain}


def robustness_for(model, tokenizer, profile, adapter_dir, report: dict, progress=print) -> dict:
    """``robustness`` of the adapter whose 05 evaluation is ``report`` (``evaluation.report_for``), stored beside the
    adapter: measured the first time 06 runs, read after."""
    from .data import load_probes
    from .evaluation import heldout_set

    records, _ = heldout_set(profile, tokenizer, "test")
    probes = load_probes()[: profile.train.probe_questions]
    t = profile.train
    key = {**report_key(profile, adapter_digest(adapter_dir), records, probes),
           "originals": [report[s]["probe_answers"] for s in ("base", "adapter")]}
    paraphrases = sum(len(p.get("paraphrases", [])) for p in probes)

    def run():
        progress(f"바꿔 물은 질문 {paraphrases}개(확인 질문 {len(probes)}개)를 기본 모델과 어댑터로, 시험 레코드 "
                 f"{min(t.generate_records, len(records))}개를 반복 패널티 없이 답합니다 (CPU에서 몇 분)...")
        return robustness(model, tokenizer, report, records, probes, profile.data.template, t.answer_tokens,
                          t.eval_batch_size, t.generate_records)

    return cached_evaluate(Path(adapter_dir) / "robustness.json", key, run)


def with_robustness(report: dict, robust: dict) -> dict:
    """05's report with 06's measures added to its sides, so ``evaluation.summary_table`` shows them all."""
    merged = {name: dict(side) for name, side in report.items()}
    for name, extra in robust.items():
        merged[name] = {**merged.get(name, {}), **extra}
    return merged

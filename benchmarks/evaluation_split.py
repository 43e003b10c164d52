"""Benchmark 11: what 05's evaluation cost before and after moving paraphrases and plain greedy answers to 06 (issue 44).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/evaluation_split.py [--profile cpu] [--adapter DIR] [--repeat 1]

05's adapter (default: ``notebooks/outputs/05_training/<profile>/adapter``) is evaluated in one process, with no
cache, three ways, one after another:

- "05 before": what 05 measured until the split (``before_split``): for each side (adapter off, on) the answered test
  records, the answer loss per kind and every phrasing of the probes, then the adapter's plain greedy answers;
- "05 now": ``evaluation.evaluate`` (the probes as written only);
- "06 now": ``robustness.robustness`` (every phrasing, adapter off and on, and the plain greedy answers).

Each is timed ``--repeat`` times, in turn, and the median is reported. Writes
benchmarks/results/evaluation_split_<profile>_<date>.json.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import adapter_header, load_stored_adapter, stored_adapter_parser, timed_in_turn, write_result  # noqa: E402


def before_split(model, tokenizer, records, examples, probes, template: str, pad: int, max_new_tokens: int,
                 batch_size: int, generate: int) -> None:
    """05's evaluation as it was before the split, composed of the course's own functions (its results are 05's and
    06's now, so only its time is kept)."""
    from course_utils.evaluation import answered_records, answers_only, per_kind_loss
    from course_utils.inference import PLAIN_GREEDY
    from course_utils.loss import record_losses
    from course_utils.robustness import phrasing_grades

    answered = answered_records(records, generate)

    def side():
        answers_only(model, tokenizer, answered, template, max_new_tokens, batch_size)
        phrasing_grades(model, tokenizer, probes, template, max_new_tokens, batch_size)
        per_kind_loss(records, record_losses(model, examples, pad, batch_size))

    with model.disable_adapter():
        side()
    side()
    answers_only(model, tokenizer, answered, template, max_new_tokens, batch_size, **PLAIN_GREEDY)


def main(argv=None) -> dict:
    args = stored_adapter_parser(__doc__, 1, "timings of each part; the median is reported").parse_args(argv)

    from transformers import set_seed

    from course_utils.data import load_probes
    from course_utils.evaluation import evaluate, heldout_set
    from course_utils.profiles import get_profile
    from course_utils.prompts import pad_id
    from course_utils.robustness import robustness

    set_seed(get_profile(args.profile).train.seed)
    profile, adapter_dir, model, tokenizer, meta = load_stored_adapter(args)
    t, template = profile.train, profile.data.template
    records, examples = heldout_set(profile, tokenizer, "test")
    probes = load_probes()[: t.probe_questions]
    pad = pad_id(tokenizer)
    parts = {"05 before": lambda: before_split(model, tokenizer, records, examples, probes, template, pad,
                                               t.answer_tokens, t.eval_batch_size, t.generate_records),
             "05 now": lambda: evaluate(model, tokenizer, records, examples, probes, template, pad, t.answer_tokens,
                                        t.eval_batch_size, t.generate_records),
             "06 now": lambda: robustness(model, tokenizer, records, probes, template, t.answer_tokens,
                                          t.eval_batch_size, t.generate_records)}
    results, seconds, median = timed_in_turn(parts, args.repeat)
    report, robust = results["05 now"], results["06 now"]
    result = adapter_header(profile, adapter_dir, meta) | {
        "test_records": len(records), "answered_records": t.generate_records, "probes": len(probes),
        "paraphrases": sum(len(p.get("paraphrases", [])) for p in probes), "answer_tokens": t.answer_tokens,
        "eval_batch_size": t.eval_batch_size, "repeat": args.repeat, "seconds": seconds, "median_seconds": median,
        "05_saved_share": 1 - median["05 now"] / median["05 before"],
        "counts": {side: {"probes": str(report[side]["probes"]), "eos": str(report[side]["eos"])}
                   for side in ("base", "adapter")} | {"plain greedy loops": str(robust["adapter, plain greedy"]["degenerate"])}}
    for part, s in median.items():
        print(f"{part}: {s:.1f} s")
    print(f"05의 평가: {median['05 before']:.1f} s -> {median['05 now']:.1f} s ({result['05_saved_share']:.0%} 줄어듦); "
          f"06이 더 재는 데 {median['06 now']:.1f} s")
    write_result(f"evaluation_split_{profile.name}", result, args.out)
    return result


if __name__ == "__main__":
    main()

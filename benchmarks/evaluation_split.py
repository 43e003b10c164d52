"""Benchmark 11: what 05's evaluation costs, and what moved to 06 (paraphrases and plain greedy answers, issue 44).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/evaluation_split.py [--profile cpu] [--adapter DIR] [--repeat 1]

05's adapter (default: ``notebooks/outputs/05_training/<profile>/adapter``) is evaluated twice over in one process,
with no cache: ``evaluation.evaluate`` (what 05 measures: answer loss per kind, the answered test records and the
probes as written, adapter off and on) and ``robustness.robustness`` (what 06 measures since: the probes' paraphrases,
adapter off and on, and the answered records under plain greedy decoding). Before the split, 05 measured both; their
sum is what 05's evaluation cost then, on the same machine and adapter. Each part is timed ``--repeat`` times, the
parts alternating, and the median is reported. Writes benchmarks/results/evaluation_split_<profile>_<date>.json.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.common import machine_info, write_result  # noqa: E402


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--adapter", type=Path)
    parser.add_argument("--repeat", type=int, default=1, help="timings of each part; the median is reported")
    args = parser.parse_args(argv)

    from transformers import set_seed

    from benchmarks.course_runtime import source_commit
    from course_utils.adapter import load_trained
    from course_utils.data import load_probes
    from course_utils.evaluation import adapter_digest, evaluate, heldout_set
    from course_utils.profiles import get_profile
    from course_utils.prompts import pad_id
    from course_utils.robustness import robustness

    profile = get_profile(args.profile)
    adapter_dir = args.adapter or ROOT / "notebooks" / "outputs" / "05_training" / profile.name / "adapter"
    set_seed(profile.train.seed)
    model, tokenizer, meta = load_trained(adapter_dir, profile.model)
    t, template = profile.train, profile.data.template
    records, examples = heldout_set(profile, tokenizer, "test")
    probes = load_probes()[: t.probe_questions]
    seconds: dict[str, list[float]] = {"05: evaluate": [], "06: robustness": []}
    for _ in range(args.repeat):
        start = time.perf_counter()
        report = evaluate(model, tokenizer, records, examples, probes, template, pad_id(tokenizer), t.answer_tokens,
                          t.eval_batch_size, t.generate_records)
        seconds["05: evaluate"].append(time.perf_counter() - start)
        start = time.perf_counter()
        robust = robustness(model, tokenizer, report, records, probes, template, t.answer_tokens, t.eval_batch_size,
                            t.generate_records)
        seconds["06: robustness"].append(time.perf_counter() - start)
    median = {part: statistics.median(s) for part, s in seconds.items()}
    before = sum(median.values())
    result = machine_info() | source_commit() | {
        "profile": profile.name, "model": profile.model, "adapter_sha256": adapter_digest(adapter_dir),
        "adapter_global_step": meta.get("global_step"), "test_records": len(records),
        "answered_records": t.generate_records, "probes": len(probes),
        "paraphrases": sum(len(p.get("paraphrases", [])) for p in probes), "answer_tokens": t.answer_tokens,
        "eval_batch_size": t.eval_batch_size, "repeat": args.repeat, "seconds": seconds, "median_seconds": median,
        "before_split_seconds": before, "moved_share": median["06: robustness"] / before,
        "counts": {side: {"probes": str(report[side]["probes"]), "eos": str(report[side]["eos"])}
                   for side in ("base", "adapter")} | {"plain greedy loops": str(robust["adapter, plain greedy"]["degenerate"])}}
    for part, s in median.items():
        print(f"{part}: {s:.1f} s")
    print(f"나누기 전 05의 평가: {before:.1f} s, 그중 06으로 옮긴 몫 {result['moved_share']:.0%}")
    write_result(f"evaluation_split_{profile.name}", result)
    return result


if __name__ == "__main__":
    main()

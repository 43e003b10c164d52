"""Benchmark 9: how much of 05's gain carries over to real KoAlpaca instructions.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/transfer.py [--profile cpu] [--adapter DIR] [--generate 48]

05's adapter (default: ``notebooks/outputs/05_training/<profile>/adapter``) is scored with its adapter off (the base)
and on, on two sets: the test split of the data it trained on (what 05 reports) and the real-format records of
``course_utils.transfer`` (``../shared``'s 1,200 KoAlpaca v1.0 records here). For each: the answer loss over every
record (nats per answer token, answers cut at the profile's seq_len as training cuts them), and chrF of greedy answers
(the course's decoding defaults) on ``--generate`` records taken evenly across the set. Issue 44 measures its
target against this run: the real-format loss drop of the adapter trained on the new bundled data must be at least
twice the one recorded here. Writes benchmarks/results/transfer_<profile>_<date>.json.
"""
from __future__ import annotations

import argparse
import hashlib
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
    parser.add_argument("--generate", type=int, default=48, help="records answered per set for chrF")
    parser.add_argument("--label", default="", help="added to the result's file name (another adapter, same day)")
    args = parser.parse_args(argv)

    from transformers import set_seed

    from benchmarks.course_runtime import source_commit
    from course_utils.adapter import load_trained
    from course_utils.profiles import get_profile
    from course_utils.splits import split_source
    from course_utils.transfer import measure_transfer, real_format_file, real_format_records

    profile = get_profile(args.profile)
    adapter_dir = args.adapter or ROOT / "notebooks" / "outputs" / "05_training" / profile.name / "adapter"
    source = real_format_file()
    if source is None:
        raise SystemExit("실제 형식 레코드가 없습니다: ../shared/data/koalpaca_v1_0_sample.jsonl 또는 COURSE_TRANSFER_FILE")
    set_seed(profile.train.seed)
    model, tokenizer, meta = load_trained(adapter_dir, profile.model)
    d, t, h = profile.data, profile.train, meta["heldout"]
    # the adapter's own data (its course_adapter.json): what it trained on is never scored as transfer, and its
    # test split is the one 05 reported for it
    train, _, test, _ = split_source(h["source"], h["records"], h["seed"], h["on_invalid"])
    real = real_format_records(train, source)
    result = machine_info() | source_commit() | {
        "profile": profile.name, "label": args.label, "model": profile.model, "data_source": h["source"],
        "adapter": str(adapter_dir.relative_to(ROOT) if adapter_dir.is_relative_to(ROOT) else adapter_dir),
        "adapter_sha256": hashlib.sha256((adapter_dir / "adapter_model.safetensors").read_bytes()).hexdigest(),
        "adapter_global_step": meta.get("global_step"), "train_records": len(train), "seq_len": profile.seq_len,
        "real_format_file": source.name, "sets": {}}
    for name, records in (("own test split", test), ("real format", real)):
        start = time.perf_counter()
        measured = measure_transfer(model, tokenizer, records, profile.seq_len, d.template, t.answer_tokens,
                                    args.generate, t.eval_batch_size)
        loss, chrf = measured["loss"], measured["chrf"]
        result["sets"][name] = measured | {"seconds": time.perf_counter() - start}
        print(f"{name}: 레코드 {loss['records']}개, 답 손실 {loss['base']:.3f} → {loss['adapter']:.3f} "
              f"({loss['change']:+.1%}), chrF {chrf['base']:.1f} → {chrf['adapter']:.1f} (레코드 {chrf['records']}개)")
    bundled, real_drop = (-result["sets"][k]["loss"]["change"] for k in ("own test split", "real format"))
    result["real_over_bundled"] = real_drop / bundled
    print(f"실제 형식의 손실 감소는 학습한 데이터의 시험 세트 감소의 {result['real_over_bundled']:.0%}입니다")
    write_result(f"transfer_{profile.name}{'_' + args.label if args.label else ''}", result)
    return result


if __name__ == "__main__":
    main()

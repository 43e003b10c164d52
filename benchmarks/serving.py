"""Benchmark 5: the merged model under an OpenAI-compatible API, at 1, 4 and 8 concurrent requests.

    .venv/bin/python benchmarks/serving.py [--profile cpu] [--requests 16] [--concurrency 1 4 8]

The merged model of notebook 07 (made from 05's adapter when it is missing) is served by `course_utils.serve`
(transformers serve, fp32, this machine's CPU) on a free local port. For each concurrency level the same
``--requests`` chat requests (the probe questions, greedy, ``--max-tokens`` new tokens at most) are sent by that
many client threads with the official `openai` client. Reported per level: requests/s, completion tokens/s,
p50/p95 latency and failed requests; next to them, in-process `generate` on the same prompts: one at a time and
batched by 8 (`inference.generate_batch`). Writes benchmarks/results/serving_<profile>_<date>.json.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.common import machine_info, write_result  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def in_process(merged_dir, questions: list[str], max_tokens: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from course_utils.inference import answer_with_stats, generate_batch

    model = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(merged_dir)
    start = time.perf_counter()
    single = [answer_with_stats(model, tok, q, max_new_tokens=max_tokens)["new_tokens"] for q in questions]
    one_at_a_time = time.perf_counter() - start
    start = time.perf_counter()
    batched = generate_batch(model, tok, [(q, "") for q in questions], max_new_tokens=max_tokens, batch_size=8)
    batch_seconds = time.perf_counter() - start
    return {"one_at_a_time": {"seconds": one_at_a_time, "tokens_per_s": sum(single) / one_at_a_time,
                              "requests_per_s": len(questions) / one_at_a_time},
            "batched_8": {"seconds": batch_seconds, "tokens_per_s": sum(r["new_tokens"] for r in batched) / batch_seconds,
                          "requests_per_s": len(questions) / batch_seconds}}


def served(server, questions: list[str], concurrency: int, max_tokens: int) -> dict:
    import openai

    client = openai.OpenAI(base_url=server.base_url, api_key="not-needed", max_retries=0, timeout=600)

    def ask(question):
        start = time.perf_counter()
        try:
            r = client.chat.completions.create(model=server.model, max_tokens=max_tokens,
                                               messages=[{"role": "user", "content": question}])
            return time.perf_counter() - start, r.usage.completion_tokens, None
        except Exception as err:  # counted, never hidden
            return time.perf_counter() - start, 0, f"{type(err).__name__}: {err}"[:200]

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(ask, questions))
    seconds = time.perf_counter() - start
    latencies = [r[0] for r in results if r[2] is None]
    return {"concurrency": concurrency, "requests": len(questions), "failed": sum(r[2] is not None for r in results),
            "errors": [r[2] for r in results if r[2]][:3], "seconds": seconds,
            "requests_per_s": len(latencies) / seconds, "tokens_per_s": sum(r[1] for r in results) / seconds,
            "p50_s": statistics.median(latencies) if latencies else None,
            "p95_s": percentile(latencies, 0.95) if latencies else None}


def main(argv=None) -> dict:
    from course_utils.data import load_probes
    from course_utils.ensure import ensure_merged
    from course_utils.notebook import quiet_libraries
    from course_utils.profiles import PROFILES_FILE, get_profile
    from course_utils.serve import Server

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--profiles", default=str(PROFILES_FILE), help="a profiles YAML file (default: the course's)")
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--merged", type=Path, default=None, help="merged model folder (default: notebook 07's)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    quiet_libraries()
    profile = get_profile(args.profile, args.profiles)
    outputs = ROOT / "notebooks" / "outputs"
    merged = args.merged or ensure_merged(profile, outputs / "07_merged" / profile.name, outputs / "05_training" / profile.name)
    probes = load_probes()
    questions = [probes[i % len(probes)]["question"] for i in range(args.requests)]
    baseline = in_process(merged, questions, args.max_tokens)
    levels = []
    with Server(merged, dtype="float32") as server:
        served(server, questions[:2], 1, args.max_tokens)  # warm-up
        for c in args.concurrency:
            levels.append(served(server, questions, c, args.max_tokens))
            r = levels[-1]
            print(f"concurrency {c}: {r['requests_per_s']:.2f} req/s, {r['tokens_per_s']:.1f} tok/s, "
                  f"p50 {r['p50_s']:.2f} s, p95 {r['p95_s']:.2f} s, failed {r['failed']}", flush=True)
    print("\n| side | requests/s | tokens/s | p50 latency (s) | p95 latency (s) | failed |\n|---|---|---|---|---|---|")
    for r in levels:
        print(f"| API, {r['concurrency']} concurrent | {r['requests_per_s']:.2f} | {r['tokens_per_s']:.1f} | "
              f"{r['p50_s']:.2f} | {r['p95_s']:.2f} | {r['failed']}/{r['requests']} |")
    for name, r in baseline.items():
        print(f"| in-process generate, {name.replace('_', ' ')} | {r['requests_per_s']:.2f} | {r['tokens_per_s']:.1f} | | | |")
    result = {"profile": profile.name, "model": profile.model, "merged": str(merged), "requests": args.requests,
              "max_tokens": args.max_tokens, "levels": levels, "in_process": baseline}
    write_result(f"serving_{profile.name}", {**machine_info(), **result}, args.out)
    return result


if __name__ == "__main__":
    main()

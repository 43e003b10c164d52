"""Benchmark 5: which server a classroom should use, measured: the merged model behind an OpenAI-compatible API.

    .venv/bin/python benchmarks/serving.py [--profile cpu] [--requests 32] [--concurrency 1 4 8 16]

The merged model of notebook 07 (made from 05's adapter when it is missing) is served by `course_utils.serve`, one
engine after another, each alone on this machine, on a free local port:
- ``transformers``: ``transformers serve`` as the course served it until now (fp32);
- ``transformers-cb``: ``transformers serve --continuous-batching`` (paged attention, fp32, the CB settings in
  ``course_utils.serve.serve_transformers``);
- ``llama.cpp:q8_0`` / ``llama.cpp:f16``: llama-cpp-python's ``llama_cpp.server`` over 08's GGUF exports.
Every engine gets the course's request checks and the merged folder's decoding (greedy, repetition penalty 1.1).
For each concurrency level the same ``--requests`` chat requests (the probe questions, at most ``--max-tokens`` new
tokens) are sent by that many client threads with the official `openai` client. Reported per level: requests/s,
completion tokens/s, p50/p95 latency, failed requests, and how many answers are the same text as the merged model's
in-process greedy answer (``generate`` one prompt at a time, fp32); where one differs, the first differing token and
the merged model's logit margin there (``deploy.first_difference``, as 08 shows for GGUF). Beside them: in-process
``generate`` one at a time and batched by 8, and 08's Q8_0 check on the same questions (the Q8_0 GGUF read back by
transformers: how many greedy answers stay the same), the bar an engine's agreement must reach.
The decision: the engine with the most requests/s at the highest concurrency among those with no failed request
and agreement at least that bar. Writes benchmarks/results/serving_<profile>_<date>.json.
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

SERVERS = ("transformers", "transformers-cb", "llama.cpp:q8_0", "llama.cpp:f16")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def in_process(model, tok, questions: list[str], max_tokens: int) -> tuple[dict, dict]:
    """In-process greedy answers (one prompt at a time: the reference every server is compared with) and the speed
    of ``generate`` one at a time and batched by 8 on the same questions."""
    from course_utils.inference import answer_with_stats, generate_batch

    start = time.perf_counter()
    single = [answer_with_stats(model, tok, q, max_new_tokens=max_tokens) for q in questions]
    one_at_a_time = time.perf_counter() - start
    start = time.perf_counter()
    batched = generate_batch(model, tok, [(q, "") for q in questions], max_new_tokens=max_tokens, batch_size=8)
    batch_seconds = time.perf_counter() - start
    speed = {"one_at_a_time": {"seconds": one_at_a_time, "requests_per_s": len(questions) / one_at_a_time,
                               "tokens_per_s": sum(r["new_tokens"] for r in single) / one_at_a_time},
             "batched_8": {"seconds": batch_seconds, "requests_per_s": len(questions) / batch_seconds,
                           "tokens_per_s": sum(r["new_tokens"] for r in batched) / batch_seconds}}
    return {q: r["answer"] for q, r in zip(questions, single, strict=True)}, speed


def served(server, questions: list[str], concurrency: int, max_tokens: int) -> dict:
    import openai
    import psutil

    client = openai.OpenAI(base_url=server.base_url, api_key="not-needed", max_retries=0, timeout=600)

    def ask(question):
        start = time.perf_counter()
        try:
            r = client.chat.completions.create(model=server.model, max_tokens=max_tokens,
                                               messages=[{"role": "user", "content": question}])
            return (time.perf_counter() - start, r.usage.completion_tokens, r.usage.prompt_tokens,
                    (r.choices[0].message.content or "").strip(), None)
        except Exception as err:  # counted, never hidden
            return time.perf_counter() - start, 0, 0, None, f"{type(err).__name__}: {err}"[:200]

    process, me = psutil.Process(server.process.pid), psutil.Process()
    steal = getattr(psutil.cpu_times(), "steal", 0.0)  # time the hypervisor gave this VM's cores to others
    cpu, mine, start = sum(process.cpu_times()[:2]), sum(me.cpu_times()[:2]), time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(ask, questions))
    seconds, cpu = time.perf_counter() - start, sum(process.cpu_times()[:2]) - cpu
    mine, steal = sum(me.cpu_times()[:2]) - mine, getattr(psutil.cpu_times(), "steal", 0.0) - steal
    latencies = [r[0] for r in results if r[4] is None]
    return {"concurrency": concurrency, "requests": len(questions), "failed": sum(r[4] is not None for r in results),
            "errors": [r[4] for r in results if r[4]][:3], "seconds": seconds, "server_cpu_s": cpu, "client_cpu_s": mine, "stolen_cpu_s": steal,
            "requests_per_s": len(latencies) / seconds, "tokens_per_s": sum(r[1] for r in results) / seconds,
            "p50_s": statistics.median(latencies) if latencies else None,
            "p95_s": percentile(latencies, 0.95) if latencies else None,
            "prompt_tokens": sorted({r[2] for r in results if r[4] is None}),
            "answers": [r[3] for r in results]}


def agreement(levels: list[dict], questions: list[str], reference: dict) -> dict:
    """How many served answers (over every level) are the same text as the in-process answer, and which differ."""
    pairs = [(q, a) for r in levels for q, a in zip(questions, r["answers"], strict=True) if a is not None]
    differ = sorted({(q, a) for q, a in pairs if a != reference[q]})
    return {"same": sum(a == reference[q] for q, a in pairs), "answers": len(pairs),
            "questions_same": sum(all(a == reference[q] for p, a in pairs if p == q) for q in reference),
            "questions": len(reference), "differing": differ}


def choose(results: dict, bar: float) -> str | None:
    """The engine with the most requests/s at the highest concurrency, among those that failed no request and whose
    answers agree with the in-process ones at least as often as ``bar`` (a share of the questions)."""
    fit = {name: r for name, r in results.items()
           if all(lv["failed"] == 0 for lv in r["levels"]) and r["agreement"]["same"] >= bar * r["agreement"]["answers"]}
    return max(fit, key=lambda n: fit[n]["levels"][-1]["requests_per_s"]) if fit else None


def main(argv=None) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from course_utils.data import load_probes
    from course_utils.deploy import differences, export_gguf
    from course_utils.ensure import ensure_merged
    from course_utils.gguf import read_gguf
    from course_utils.inference import generate_batch
    from course_utils.notebook import quiet_libraries
    from course_utils.profiles import PROFILES_FILE, get_profile
    from course_utils.serve import Server, default_gguf

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--profiles", default=str(PROFILES_FILE), help="a profiles YAML file (default: the course's)")
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--servers", nargs="+", default=list(SERVERS), choices=SERVERS)
    parser.add_argument("--merged", type=Path, default=None, help="merged model folder (default: notebook 07's)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    quiet_libraries()
    profile = get_profile(args.profile, args.profiles)
    outputs = ROOT / "notebooks" / "outputs"
    merged = args.merged or ensure_merged(profile, outputs / "07_merged" / profile.name, outputs / "05_training" / profile.name)
    probes = load_probes()
    distinct = [p["question"] for p in probes][: args.requests]
    questions = [distinct[i % len(distinct)] for i in range(args.requests)]
    model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(merged)
    reference, speed = in_process(model, tok, distinct, args.max_tokens)
    chat_tokens = len(tok.apply_chat_template([{"role": "user", "content": distinct[0]}], add_generation_prompt=True,
                                              tokenize=True)["input_ids"])
    # the Q8_0 export (08's check below) and the one each llama.cpp server reads; no export a run does not use
    needed = ["q8_0"] + [t for name in args.servers if (t := name.partition(":")[2]) and t != "q8_0"]
    ggufs = {t: default_gguf(merged, t) for t in needed}
    for gguf_type, path in ggufs.items():
        if not path.exists():
            export_gguf(merged, path.parent, gguf_type)
    # 08's Q8_0 check on these questions: the Q8_0 export read back by transformers, both sides batched as in 08
    asked = [(q, "") for q in distinct]
    merged_batched = [r["answer"] for r in generate_batch(model, tok, asked, max_new_tokens=args.max_tokens)]
    q8_model, q8_tok = read_gguf(ggufs["q8_0"])
    q8_answers = [r["answer"] for r in generate_batch(q8_model, q8_tok, asked, max_new_tokens=args.max_tokens)]
    del q8_model
    q8_diff = differences(model, tok, distinct, merged_batched, q8_answers)
    q8_check = {"same": len(distinct) - len(q8_diff), "questions": len(distinct), "differences": q8_diff}
    bar = q8_check["same"] / q8_check["questions"]
    print(f"08's Q8_0 check on these {len(distinct)} questions: {q8_check['same']}/{len(distinct)} answers the same",
          flush=True)
    results = {}
    for name in args.servers:
        engine, _, gguf_type = name.partition(":")
        options = ("--gguf-type", gguf_type) if gguf_type else ()
        levels = []
        with Server(merged, engine=engine, dtype="float32", options=options) as server:
            served(server, questions[:2], 1, args.max_tokens)  # warm-up
            for c in args.concurrency:
                levels.append(served(server, questions, c, args.max_tokens))
                r = levels[-1]
                print(f"{name}, concurrency {c}: {r['requests_per_s']:.2f} req/s, {r['tokens_per_s']:.1f} tok/s, "
                      f"p50 {r['p50_s'] or 0:.2f} s, p95 {r['p95_s'] or 0:.2f} s, failed {r['failed']}, server CPU "
                      f"{r['server_cpu_s']:.1f} s, client CPU {r['client_cpu_s']:.1f} s, stolen {r['stolen_cpu_s']:.1f} s", flush=True)
        agree = agreement(levels, questions, reference)
        differing = agree.pop("differing")
        firsts = differences(model, tok, [q for q, _ in differing], [reference[q] for q, _ in differing],
                             [a for _, a in differing])
        agree["differences"] = [{**first, "answer": a, "expected": reference[q]}
                                for (q, a), first in zip(differing, firsts, strict=True)]
        results[name] = {"levels": [{k: v for k, v in lv.items() if k != "answers"} for lv in levels],
                         "agreement": agree}
        print(f"{name}: {agree['same']}/{agree['answers']} answers the same as in-process greedy "
              f"({agree['questions_same']}/{agree['questions']} questions)", flush=True)
    decision = choose(results, bar)
    print("\n| server | concurrency | requests/s | completion tokens/s | p50 (s) | p95 (s) | failed |\n"
          "|---|---|---|---|---|---|---|")
    for name, r in results.items():
        for lv in r["levels"]:
            print(f"| {name} | {lv['concurrency']} | {lv['requests_per_s']:.2f} | {lv['tokens_per_s']:.1f} | "
                  f"{lv['p50_s'] or 0:.2f} | {lv['p95_s'] or 0:.2f} | {lv['failed']}/{lv['requests']} |")
    for name, r in speed.items():
        print(f"| in-process generate, {name.replace('_', ' ')} | | {r['requests_per_s']:.2f} | {r['tokens_per_s']:.1f} | | | |")
    print(f"\ndecision: {decision} (the most requests/s at {args.concurrency[-1]} concurrent among servers with no "
          f"failure and answers the same at least {bar:.0%} of the time, 08's Q8_0 check)")
    result = {"profile": profile.name, "model": profile.model, "merged": str(merged), "requests": args.requests,
              "questions": len(distinct), "max_tokens": args.max_tokens, "concurrency": args.concurrency,
              "chat_prompt_tokens_first_question": chat_tokens, "in_process": speed, "q8_0_check": q8_check,
              "servers": results, "decision": decision}
    write_result(f"serving_{profile.name}", {**machine_info(), **result}, args.out)
    return result


if __name__ == "__main__":
    main()

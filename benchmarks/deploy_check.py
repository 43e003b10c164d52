"""Deploy check: answer with the exported GGUF in llama.cpp itself (llama-cpp-python), measured once.

    make deploy-check          # = .venv/bin/python benchmarks/deploy_check.py [--profile cpu]

llama-cpp-python ships on PyPI as a source distribution only (for this CPU): installing it compiles llama.cpp
(CMake + a C++ compiler), which this script times. It then loads notebook 08's Q8_0 GGUF (exported first when
missing), answers the probe questions with the training prompt format, greedy with repeat_penalty 1.1, and
compares the answers with transformers' greedy answers of the merged model (``DEFAULT_DECODING``). llama.cpp's
repeat penalty looks at the last 64 tokens (transformers': all of them), so some answers may differ; the script
counts them. Writes benchmarks/results/deploy_check_<profile>_<date>.json.
"""
from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.common import machine_info, write_result  # noqa: E402


def main(argv=None) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from course_utils.data import load_probes
    from course_utils.deploy import LLAMA_CPP_PYTHON, export_gguf
    from course_utils.ensure import ensure_merged
    from course_utils.inference import generate_batch
    from course_utils.notebook import quiet_libraries
    from course_utils.profiles import get_profile
    from course_utils.prompts import format_koalpaca

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    quiet_libraries()
    profile = get_profile(args.profile)
    build_seconds = None
    if importlib.util.find_spec("llama_cpp") is None:
        print(f"building llama-cpp-python=={LLAMA_CPP_PYTHON} from source (compiles llama.cpp)...", flush=True)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"llama-cpp-python=={LLAMA_CPP_PYTHON}"], check=True)
        build_seconds = time.perf_counter() - start
        print(f"built in {build_seconds:.0f} s", flush=True)
    from llama_cpp import Llama

    outputs = ROOT / "notebooks" / "outputs"
    merged = ensure_merged(profile, outputs / "07_merged" / profile.name, outputs / "05_training" / profile.name)
    gguf = outputs / "08_gguf" / profile.name / "model-q8_0.gguf"
    if not gguf.exists():
        export_gguf(merged, gguf.parent, "q8_0")
    questions = [p["question"] for p in load_probes()]
    start = time.perf_counter()
    llm = Llama(model_path=str(gguf), n_ctx=512, n_threads=torch.get_num_threads(), seed=0, verbose=False)
    load_seconds = time.perf_counter() - start
    answers, start = [], time.perf_counter()
    for q in questions:
        out = llm(format_koalpaca({"instruction": q, "output": ""})[0], max_tokens=32, temperature=0.0,
                  repeat_penalty=1.1, stop=["### 질문:"])
        answers.append(out["choices"][0]["text"].strip())
    answer_seconds = time.perf_counter() - start
    model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(merged)
    reference = [r["answer"] for r in generate_batch(model, tok, [(q, "") for q in questions], max_new_tokens=32)]
    same = sum(a == b for a, b in zip(answers, reference, strict=True))
    for q, a, b in list(zip(questions, answers, reference, strict=True))[:5]:
        print(f"{q}\n  llama.cpp:    {a}\n  transformers: {b}")
    result = {"profile": profile.name, "gguf": gguf.name, "llama_cpp_python": LLAMA_CPP_PYTHON,
              "build_seconds": build_seconds, "load_seconds": load_seconds, "questions": len(questions),
              "seconds_per_answer": answer_seconds / len(questions), "same_as_transformers": same,
              "answers": dict(zip(questions, answers, strict=True))}
    print(f"\nllama.cpp answered {len(questions)} questions, {answer_seconds / len(questions):.2f} s each; "
          f"same as transformers' greedy answers: {same}/{len(questions)}"
          + (f"; build {build_seconds:.0f} s" if build_seconds else ""))
    write_result(f"deploy_check_{profile.name}", {**machine_info(), **result}, args.out)
    return result


if __name__ == "__main__":
    main()

"""Numbers typed in prose must be the numbers the stored outputs hold (run by check_notebooks, so by `make test`).

Each claim names numbers written in the README or in a lesson's markdown, and the output lines of the lessons that
print them. Both sides are found by regular expressions with the same group names, and each group must read the
same (after ``convert``, where the prose states a difference of printed values). A claim whose sentence or output
line is no longer found is a problem too, so a rewording cannot switch the check off. The README's notebook time
table is checked against benchmarks/results by tests/test_readme_times.py.

    python tools/check_claims.py     # exit 1 and name every mismatch
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COUNT = r"\d+/\d+"  # "93/96"
LESSON_05, LESSON_06 = "notebooks/05_training.ipynb", "notebooks/06_inference.ipynb"
LESSON_10 = "notebooks/10_preference_tuning.ipynb"
SERVING = "benchmarks/results/serving_cpu_2026-12-02.json"
TWO = lambda s: f"{float(s):.2f}"  # noqa: E731
ONE = lambda s: f"{float(s):.1f}"  # noqa: E731
EVALUATION_SPLIT = "benchmarks/results/evaluation_split_cpu_2026-12-07.json"
MEASURING_PASSES = "benchmarks/results/measuring_passes_cpu_2026-12-07.json"


def served(key: str, level: int, field: str, group: str) -> tuple[str, str]:
    """(SERVING, a regex over its JSON text) for ``field`` of ``key``'s server at concurrency ``level``."""
    return SERVING, rf'"{re.escape(key)}": \{{\s+"levels": \[[\s\S]*?"concurrency": {level},[\s\S]*?"{field}": (?P<{group}>[\d.]+)'


def agreed(key: str, group: str) -> tuple[str, str]:
    return SERVING, rf'"{re.escape(key)}": \{{[\s\S]*?"agreement": \{{\s+"same": (?P<{group}>\d+),'


NOTEBOOK_MEMORY = "benchmarks/results/notebook_memory_demo_2026-12-06.json"
LESSONS = tuple(p.stem for p in sorted((ROOT / "notebooks").glob("[01][0-9]_*.ipynb")))  # what benchmark 7 runs
GIB_TWO = lambda s: f"{int(s) / 1024**3:.2f}"  # noqa: E731


def memory_row(notebook: str) -> Claim:
    """Benchmark 7's README row for ``notebook``: peak and after-imports resident memory, their ratio to the model."""
    return Claim(f"README: benchmark 7's row for {notebook}", "README.md",
                 rf"\| `{notebook}` \| (?P<peak>\d+\.\d\d) GiB \| (?P<base>\d+\.\d\d) GiB \| (?P<ratio>\d+\.\d\d) \|",
                 ((NOTEBOOK_MEMORY, rf'"notebook": "{notebook}",\s+"after_imports": (?P<base>\d+),\s+"peak": (?P<peak>\d+),'
                                    rf'[\s\S]*?"ratio": (?P<ratio>[\d.]+)'),),
                 {"peak": GIB_TWO, "base": GIB_TWO, "ratio": TWO})


SERVERS = (("transformers serve", "transformers"), ("transformers serve, continuous batching", "transformers-cb"),
           ("llama.cpp, Q8_0", "llama.cpp:q8_0"), ("**llama.cpp, F16** (the course's server)", "llama.cpp:f16"))


@dataclass(frozen=True)
class Claim:
    name: str
    prose_file: str  # README.md, or a notebook (.ipynb: its markdown cells)
    prose: str  # regex with named groups, searched in the prose
    outputs: tuple[tuple[str, str], ...]  # (notebook or results JSON, regex over its outputs): every group of prose
    convert: dict = field(default_factory=dict)  # group -> function of the printed text, giving the prose's text


LESSON_01 = "notebooks/01_vram_budgeting.ipynb"
MIDM_BUDGET = (LESSON_01, r"gpu8gb의 midm-2\.0-mini QLoRA 추정: (?P<gib>\d+\.\d\d) GiB")
CLAIMS = [
    Claim("README: cpu run's held-out loss, chrF, EOS, loops and probes", "README.md",
          rf"시험 세트 답변 손실 (?P<before>\d\.\d{{3}}) → (?P<after>\d\.\d{{3}})\s+\(−(?P<drop>\d+\.\d) %\), "
          rf"chrF (?P<chrf_base>\d+\.\d) → (?P<chrf_tuned>\d+\.\d), EOS로 끝난 답 (?P<eos_base>{COUNT}) → "
          rf"(?P<eos_tuned>{COUNT}), 반복에 빠진 답 (?P<loop_base>{COUNT}) → (?P<loop_tuned>{COUNT})\s+"
          rf"\(패널티 없는 탐욕 생성이면 (?P<loop_plain>{COUNT})\),\s+확인 질문 정답 (?P<probe_base>{COUNT}) → "
          rf"(?P<probe_tuned>{COUNT})",
          ((LESSON_05, r"시험 세트 답변 손실: (?P<before>\d\.\d{3}) -> (?P<after>\d\.\d{3}) \((?P<drop>\d+\.\d) % 감소"),
           (LESSON_05, rf"기본 모델: 확인 질문 (?P<probe_base>{COUNT}) [^,]*, EOS (?P<eos_base>{COUNT}) [^,]*, "
                       rf"반복 (?P<loop_base>{COUNT}) [^,]*, chrF (?P<chrf_base>\d+\.\d)"),
           (LESSON_05, rf"어댑터: 확인 질문 (?P<probe_tuned>{COUNT}) [^,]*, EOS (?P<eos_tuned>{COUNT}) [^,]*, "
                       rf"반복 (?P<loop_tuned>{COUNT}) [^,]*, chrF (?P<chrf_tuned>\d+\.\d)"),
           (LESSON_06, rf"반복 패널티 없는 탐욕 생성 (?P<loop_plain>{COUNT})"))),
    Claim("README: transfer to real KoAlpaca records, answer loss and chrF (cpu)", "README.md",
          r"실제 형식 레코드 (?P<records>\d+)개의 답변 손실 (?P<before>\d\.\d{3}) → (?P<after>\d\.\d{3}) \((?P<change>[+−-]\d+\.\d) %\), "
          r"chrF (?P<chrf_base>\d+\.\d) → (?P<chrf_tuned>\d+\.\d)",
          ((LESSON_05, r"실제 형식 레코드 (?P<records>\d+)개의 답변 손실: (?P<before>\d\.\d{3}) -> (?P<after>\d\.\d{3}) "
                       r"\((?P<change>[+-]\d+\.\d) %\), chrF (?P<chrf_base>\d+\.\d) -> (?P<chrf_tuned>\d+\.\d)"),),
          {"change": lambda s: s.replace("-", "−")}),
    Claim("README: the kinds of task whose loss fell most and least (cpu)", "README.md",
          r"가장 많이 줄어든 것은 (?P<most>\S+)\(−(?P<most_drop>\d+\.\d) %\), 가장 적게 줄어든 것은 "
          r"(?P<least>\S+)\(−(?P<least_drop>\d+\.\d) %\)",
          ((LESSON_05, r"가장 많이 줄어든 종류: (?P<most>\S+) \((?P<most_drop>\d+\.\d) %\), "
                       r"가장 적게 줄어든 종류: (?P<least>\S+) \((?P<least_drop>\d+\.\d) %\)"),)),
    Claim("README: the stored 05 and 06 runs' times and 05's training time (cpu, the AVX512-BF16 rerun)", "README.md",
          r"이 실행에서 05는 (?P<t05>\d+\.\d) s\(`run_course` 합계 \d+\.\d s; 학습 (?P<train>\d+\.\d) s,[^\n]*?"
          r"\*\*20분\(1200 s\) 안에 듭니다\*\*\. 06은 (?P<t06>\d+\.\d) s\(`run_course` 합계 \d+\.\d s\)입니다",
          ((LESSON_05, r"이 노트북 실행 시간: (?P<t05>\d+\.\d) s"), (LESSON_05, r"학습 64 스텝, (?P<train>\d+\.\d) s"),
           (LESSON_06, r"이 노트북 실행 시간: (?P<t06>\d+\.\d) s"))),
    Claim("README: Benchmark 11's three parts and 05's saving", "README.md",
          r"\| 05's evaluation before the split \| (?P<before>\d+\.\d) \| \| 05's evaluation now \| (?P<now>\d+\.\d) \| "
          r"\| 06's new measures \| (?P<robust>\d+\.\d) \|\s+05's evaluation is (?P<share>\d+) % shorter",
          ((EVALUATION_SPLIT, r'"median_seconds": \{\s+"05 before": (?P<before>[\d.]+),\s+"05 now": (?P<now>[\d.]+),\s+'
                              r'"06 now": (?P<robust>[\d.]+)'),
           (EVALUATION_SPLIT, r'"05_saved_share": (?P<share>[\d.]+)')),
          {"before": ONE, "now": ONE, "robust": ONE, "share": lambda s: f"{100 * float(s):.0f}"}),
    Claim("README: Benchmark 12's passes, both ways, and 05's loss passes before and after", "README.md",
          r"\| 48 test records \| (?P<tu>\d+\.\d) \| (?P<tg>\d+\.\d) \|\s+\| 100 transfer records \| (?P<xu>\d+\.\d) \| "
          r"(?P<xg>\d+\.\d) \|[\s\S]*?05's loss passes took (?P<before>\d+\.\d) s before and take (?P<after>\d+\.\d) s\s+"
          r"now on this machine \((?P<share>\d+) % less\)",
          ((MEASURING_PASSES, r'"median_seconds": \{\s+"test union": (?P<tu>[\d.]+),\s+"test gathered": (?P<tg>[\d.]+),\s+'
                              r'"transfer union": (?P<xu>[\d.]+),\s+"transfer gathered": (?P<xg>[\d.]+)'),
           (MEASURING_PASSES, r'"05_measuring_before_seconds": (?P<before>[\d.]+),\s+"05_measuring_after_seconds": '
                              r'(?P<after>[\d.]+),\s+"saved_share": (?P<share>[\d.]+)')),
          {"tu": ONE, "tg": ONE, "xu": ONE, "xg": ONE, "before": ONE, "after": ONE,
           "share": lambda s: f"{100 * float(s):.0f}"}),
    Claim("README: forgetting on general Korean and English paragraphs (cpu)", "README.md",
          rf"망각 \(보통 글의 손실 변화\): 한국어 일반 문단 (?P<ko>[+-]\d\.\d{{4}}) nats/토큰 \(나빠진 문단 (?P<ko_worse>{COUNT})\),"
          rf"\s+영어 일반 문단 (?P<en>[+-]\d\.\d{{4}}) nats/토큰 \(나빠진 문단 (?P<en_worse>{COUNT})\)",
          ((LESSON_05, rf"망각 \(보통 글의 손실 변화\): 한국어 일반 문단 (?P<ko>[+-]\d\.\d{{4}}) nats/토큰 \(나빠진 문단 "
                       rf"(?P<ko_worse>{COUNT})\), 영어 일반 문단 (?P<en>[+-]\d\.\d{{4}}) nats/토큰 \(나빠진 문단 "
                       rf"(?P<en_worse>{COUNT})\)"),)),
    Claim("README: the lm-eval benchmark, base and adapter, chance level and the probability of guessing (cpu)",
          "README.md",
          rf"lm-eval 벤치마크: 기본 모델 (?P<base>{COUNT} \(\d+ %\)) -> 어댑터 (?P<tuned>{COUNT} \(\d+ %\)) "
          r"\(우연 수준 (?P<chance>\d+) %\)\. 무작위로 골라도 이만큼 이상 맞힐 확률이\s+기본 모델 (?P<p_base>\d\.\d{3}), "
          r"어댑터 (?P<p_tuned>\d\.\d{3})",
          ((LESSON_06, rf"lm-eval 벤치마크: 기본 모델 (?P<base>{COUNT} \(\d+ %\)) -> 어댑터 (?P<tuned>{COUNT} \(\d+ %\))"),
           (LESSON_06, r"전체\s+\d+\s+(?P<chance>\d+) %"),
           (LESSON_06, r"기본 모델: \d+/\d+ \(\d+ %\) — 보기를 무작위로 골라 이만큼 이상 맞힐 확률 (?P<p_base>\d\.\d{3})"),
           (LESSON_06, r"어댑터: \d+/\d+ \(\d+ %\) — 보기를 무작위로 골라 이만큼 이상 맞힐 확률 (?P<p_tuned>\d\.\d{3})"))),
    Claim("README: benchmark 6, packing speed, loss gap and seed noise", "README.md",
          r"Packed / unpacked: (?P<speedup>\d+\.\d\d)× faster, but the held-out loss is (?P<gap>\d\.\d{4}) worse against "
          r"a seed noise of (?P<noise>\d\.\d{4})",
          (("benchmarks/results/packing_cpu_2026-12-01.json", r'"speedup": (?P<speedup>[\d.]+)'),
           ("benchmarks/results/packing_cpu_2026-12-01.json", r'"seed_noise": (?P<noise>[\d.]+)'),
           ("benchmarks/results/packing_cpu_2026-12-01.json", r'"loss_gap_packed_minus_unpacked": (?P<gap>[\d.]+)')),
          {"speedup": lambda s: f"{float(s):.2f}", "gap": lambda s: f"{float(s):.4f}", "noise": lambda s: f"{float(s):.4f}"}),
    Claim("README: notebook 10's SFT / DPO / ORPO comparison (cpu)", "README.md",
          rf"SFT (?P<sft_r>\d+/\d+), DPO (?P<dpo_r>\d+/\d+), ORPO (?P<orpo_r>\d+/\d+)\)[\s\S]*?반복 SFT (?P<sft_l>{COUNT}) "
          rf"→ DPO (?P<dpo_l>{COUNT}), EOS로 끝남 (?P<sft_e>{COUNT}) → (?P<dpo_e>{COUNT}), chrF (?P<sft_c>\d+\.\d) → "
          rf"DPO (?P<dpo_c>\d+\.\d) / ORPO (?P<orpo_c>\d+\.\d), 확인 질문 (?P<sft_p>{COUNT}) → DPO (?P<dpo_p>{COUNT}) / "
          rf"ORPO (?P<orpo_p>{COUNT})",
          tuple((LESSON_10, rf"{name}: 보상 정확도 (?P<{key}_r>\d+/\d+), 반복 (?P<{key}_l>{COUNT}) \(\d+ %\), EOS "
                            rf"(?P<{key}_e>{COUNT}) \(\d+ %\), chrF (?P<{key}_c>\d+\.\d), 확인 질문 (?P<{key}_p>{COUNT})")
                for name, key in ((r"SFT \(05\)", "sft"), ("DPO 뒤", "dpo"), ("ORPO 뒤", "orpo")))),
    Claim("README: benchmark 5, requests/s at 16 concurrent and answers the same, per server, and the Q8_0 bar",
          "README.md",
          r"동시 16 요청에서 `transformers serve` (?P<tf>\d\.\d\d) 요청/s, 연속 배칭\(`--continuous-batching`\) "
          r"(?P<cb>\d\.\d\d), llama\.cpp\s+Q8_0 (?P<q8>\d\.\d\d), llama\.cpp F16 (?P<f16>\d\.\d\d) 요청/s\.\s+"
          r"병합 모델의 노트북 안 탐욕 답과 같은 답은 `transformers serve` (?P<tf_same>\d+)/128, llama\.cpp F16\s+"
          r"(?P<f16_same>\d+)/128, llama\.cpp Q8_0 (?P<q8_same>\d+)/128, 연속 배칭 (?P<cb_same>\d+)/128입니다\.\s+"
          r"기준은 08의 Q8_0 검사\(같은 질문에서 (?P<bar>\d+)/22\)",
          (served("transformers", 16, "requests_per_s", "tf"), served("transformers-cb", 16, "requests_per_s", "cb"),
           served("llama.cpp:q8_0", 16, "requests_per_s", "q8"), served("llama.cpp:f16", 16, "requests_per_s", "f16"),
           agreed("transformers", "tf_same"), agreed("transformers-cb", "cb_same"),
           agreed("llama.cpp:q8_0", "q8_same"), agreed("llama.cpp:f16", "f16_same"),
           (SERVING, r'"q8_0_check": \{\s+"same": (?P<bar>\d+),')),
          {"tf": TWO, "cb": TWO, "q8": TWO, "f16": TWO}),
    *(Claim(f"README: benchmark 5's table row for {row}", "README.md",
            rf"\| {re.escape(row)} \| (?P<one>\d\.\d\d) \| (?P<sixteen>\d\.\d\d) \| (?P<p50>\d+\.\d\d) s / "
            rf"(?P<p95>\d+\.\d\d) s \| 0/128 \| (?P<same>\d+)/128 \|",
            (served(key, 1, "requests_per_s", "one"), served(key, 16, "requests_per_s", "sixteen"),
             served(key, 16, "p50_s", "p50"), served(key, 16, "p95_s", "p95"), agreed(key, "same")),
            {"one": TWO, "sixteen": TWO, "p50": TWO, "p95": TWO}) for row, key in SERVERS),
    *(memory_row(name) for name in LESSONS),
    Claim("01: the cost of nf4's absmax per value, fp32 and double-quantized", "notebooks/01_vram_budgeting.ipynb",
          r"값당 (?P<absmax>\d\.\d+)비트\(fp32 absmax\)에서 이중 양자화 후 약 (?P<dq>\d\.\d+)비트",
          (("notebooks/01_vram_budgeting.ipynb", r"nf4 \(absmax fp32\)\s+값당\s+(?P<absmax>\d\.\d+)비트"),
           ("notebooks/01_vram_budgeting.ipynb", r"nf4 \+ 이중 양자화\s+값당\s+(?P<dq>\d\.\d+)비트")),
          {"absmax": lambda s: f"{float(s) - 4:g}", "dq": lambda s: f"{float(s) - 4:.3f}"}),
    Claim("README: gpu8gb's Mi:dm QLoRA estimate (Colab paragraph)", "README.md",
          r"Mi:dm 2\.0 Mini QLoRA (?P<gib>\d+\.\d\d) GiB, TinyLlama", (MIDM_BUDGET,)),
    Claim("README: gpu8gb's Mi:dm QLoRA estimate (the model's table)", "README.md",
          r"\| (?P<gib>\d+\.\d\d) GiB \(기준 6\.5 GiB 이하\) \|", (MIDM_BUDGET,)),
    Claim("README: gpu8gb's Mi:dm QLoRA estimate (English)", "README.md",
          r"recipe at (?P<gib>\d+\.\d\d) GiB for Mi:dm 2\.0 Mini", (MIDM_BUDGET,)),
]


def _outputs_text(path: Path) -> str:
    """A notebook's stored outputs as text, or a benchmark result file's JSON text."""
    if path.suffix == ".json":
        return path.read_text(encoding="utf-8")
    import nbformat

    texts = []
    for cell in nbformat.read(path, as_version=4).cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                texts.append(output.get("text", ""))
            elif "text/plain" in output.get("data", {}):
                texts.append(output["data"]["text/plain"])
    return "\n".join(texts)


def _prose_text(path: Path) -> str:
    if path.suffix != ".ipynb":
        return path.read_text(encoding="utf-8")
    import nbformat

    return "\n".join(c.source.replace("\n", " ") for c in nbformat.read(path, as_version=4).cells
                     if c.cell_type == "markdown")


def claim_problems(root: Path = ROOT, claims: list[Claim] = CLAIMS) -> list[str]:
    """One line per claim whose prose and outputs disagree, or that is no longer found on either side."""
    problems = []
    for claim in claims:
        prose = re.search(claim.prose, _prose_text(root / claim.prose_file).replace("\n", " "))
        if not prose:
            problems.append(f"{claim.prose_file}: the claim '{claim.name}' is no longer found (pattern {claim.prose!r})")
            continue
        printed = {}
        for notebook, pattern in claim.outputs:
            found = re.search(pattern, _outputs_text(root / notebook))
            if not found:
                problems.append(f"{notebook}: no stored output matches {pattern!r} ('{claim.name}')")
                continue
            printed.update(found.groupdict())
        for name, said in prose.groupdict().items():
            if name not in printed:
                continue  # its output line was reported missing above
            value = claim.convert.get(name, str)(printed[name])
            if said != value:
                problems.append(f"{claim.prose_file}: '{claim.name}': the text says {name} = {said}, the stored "
                                f"outputs say {value}. Take the number from the output")
    return problems


# Numbers a lesson's markdown may state without printing them: definitions and thresholds, not measurements.
# Every other decimal, percentage or count ("1.690", "28.2 %", "6/22") in a lesson's markdown must be in its outputs.
DEFINED = {
    "00_setup_check": {"2.0": "the model's name, Mi:dm 2.0 Mini"},
    "01_vram_budgeting": {"2.0": "the model's name, Mi:dm 2.0 Mini"},
    "02_quantization": {"2.0": "the model's name, Mi:dm 2.0 Mini"},
    "04_koalpaca_formatting": {"256/512": "the two maximum lengths measured, not a count"},
    "05_training": {"0.21": "peft's version", "06/07": "lesson numbers"},
    "06_inference": {"0.05": "the usual significance threshold"},
    "08_deployment": {"95 %": "the share of greedy answers F16 must match (the check's bar)",
                      "1 %": "the loss tolerance of Q8_0 (the check's bar)", "5.23": "transformers' version",
                      "4.0": "the licence CC BY-NC 4.0", "05/06": "lesson numbers (05/06/07)"},
    "10_preference_tuning": {"50 %": "chance for a pair", "0.05": "the usual significance threshold", "1.16": "TRL's version",
                             "4.0": "the licence CC BY-NC 4.0", "0.1": "DPO's beta in the exercise's recipe (a setting)",
                             "20.0": "the exercise's given log-probability", "25.0": "the exercise's given log-probability"},
}
MEASURED = re.compile(r"(?<![0-9A-Za-z.])(\d+(?:\.\d+)? ?%|\d+/\d+|\d+\.\d+)(?![0-9A-Za-z]|\.\d)")  # Korean particles may follow


def markdown_number_problems(root: Path = ROOT) -> list[str]:
    """A decimal, percentage or count typed in a lesson's markdown (code spans and link targets aside) that its
    stored outputs do not print, unless ``DEFINED`` names it as a definition of that lesson."""
    problems = []
    for path in sorted((root / "notebooks").glob("[01][0-9]_*.ipynb")):
        prose = _prose_text(path).replace("\n", " ")
        for claim in CLAIMS:  # a number a claim ties to an output is checked there
            if claim.prose_file == f"notebooks/{path.name}":
                prose = re.sub(claim.prose, " ", prose)
        prose = re.sub(r"\]\([^)]*\)", "]", re.sub(r"`[^`]*`", "", prose))
        printed = _outputs_text(path).replace(" ", "")
        allowed = DEFINED.get(path.stem, {})
        for number in dict.fromkeys(MEASURED.findall(prose)):
            if number not in allowed and number.replace(" ", "") not in printed:
                problems.append(f"notebooks/{path.name}: the markdown says {number}, which no stored output of the "
                                "lesson prints. Print it, state the printed value, or name it in DEFINED with why")
    return problems


PROFILE_FACTS = {  # README wording -> the profile value it states
    r"seq (\d+)": lambda p: p.seq_len, r"batch (\d+)": lambda p: p.batch_size,
    r"grad-accum (\d+)": lambda p: p.grad_accum, r"(\d+) 스텝(?!마다)": lambda p: p.train.max_steps,
    r"(\d+) 스텝마다 평가": lambda p: p.train.eval_steps, r"평가 레코드 (\d+)개": lambda p: p.train.heldout_records,
    r"(\d+) 에폭": lambda p: p.train.epochs, r"warmup (\d+)": lambda p: p.train.warmup_steps,
}


def profile_fact_problems(root: Path = ROOT) -> list[str]:
    """A README line about one profile (a table row, list item or sentence that starts with `` `name` ``) whose steps,
    held-out records, batch, accumulation, sequence length, epochs or warmup differ from ``profiles.yaml``."""
    sys.path.insert(0, str(ROOT))
    from course_utils.profiles import PROFILES_FILE, get_profile, load_profiles

    names = "|".join(load_profiles(PROFILES_FILE))
    problems = []
    for number, line in enumerate((root / "README.md").read_text(encoding="utf-8").splitlines(), 1):
        subject = re.match(rf"^(?:[|-] )?`({names})`", line.strip())
        if not subject:
            continue
        profile = get_profile(subject.group(1))
        for pattern, value_of in PROFILE_FACTS.items():
            for found in re.finditer(r"(?<![\d.,])" + pattern, line):
                value = value_of(profile)
                if value is None or float(found.group(1)) != float(value):
                    problems.append(f"README.md line {number}: `{profile.name}` \"{found.group(0)}\", but profiles.yaml "
                                    f"says {value}")
    return problems


# The same measurement printed by two lessons must read the same (one run, one story).
AGREEMENTS = (
    ("07 and 08: the merged model's held-out loss", ("notebooks/07_merging.ipynb", r"병합 모델 (?P<loss>\d\.\d{4})"),
     ("notebooks/08_deployment.ipynb", r"내보내는 폴더 (?P<loss>\d\.\d{4})")),
    ("07 and 05: the adapter's held-out loss", ("notebooks/07_merging.ipynb", r"05에서 평가한 어댑터 (?P<loss>\d\.\d{4})"),
     ("notebooks/05_training.ipynb", r"시험 세트 답변 손실: \d\.\d{3,4} -> (?P<loss>\d\.\d{3,4})")),
)


def agreement_problems(root: Path = ROOT) -> list[str]:
    problems = []
    for name, *sides in AGREEMENTS:
        if not all((root / notebook).exists() for notebook, _ in sides):
            continue
        found = [re.search(pattern, _outputs_text(root / notebook)) for notebook, pattern in sides]
        if not all(found):
            problems += [f"{notebook}: no stored output matches {pattern!r} ('{name}')"
                         for (notebook, pattern), f in zip(sides, found, strict=True) if not f]
            continue
        values = [f.group("loss") for f in found]
        coarsest = min(len(v.split(".")[1]) for v in values)  # agree within the rounding of the shorter one
        if abs(float(values[0]) - float(values[1])) > 0.5 * 10 ** -coarsest + 1e-12:
            problems.append(f"{name}: {sides[0][0]} prints {values[0]}, {sides[1][0]} prints {values[1]}. "
                            "Both must come from one run of one commit")
    return problems


def all_problems(root: Path = ROOT) -> list[str]:
    """Every check of this file: the claims, the lessons' markdown numbers, the README's profile facts, and the
    measurements two lessons both print."""
    return claim_problems(root) + markdown_number_problems(root) + profile_fact_problems(root) + agreement_problems(root)


def main() -> int:
    problems = all_problems()
    for p in problems:
        print(f"✗ {p}", file=sys.stderr)
    print(f"claims: {len(CLAIMS)} checked, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

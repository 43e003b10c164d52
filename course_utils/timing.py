"""How long each notebook takes, told before it runs: measured where this kind of machine was measured, otherwise
an estimate that says it is one and where it comes from.

- *Measured*: ``benchmarks/results/course_runtime_<profile>_<date>.json`` (``benchmarks/course_runtime.py``) from a
  machine of the same kind (``machine_kind``: the GPU's name, or the CPU's core count and vector instructions: a
  2-core AVX2 laptop runs the same work ~1.4x slower than a 2-core AVX512 one).
- *Estimate from another machine*: the same file from a machine of another kind, labelled with that machine.
- *Estimate from training throughput* (gpu8gb, until a GPU run is measured): the optimizer steps the profile will run
  (``planned_steps``, the Trainer's own arithmetic) times the samples each takes, plus the held-out evaluations,
  divided by samples/s: measured by ``benchmarks/gpu_check.py`` on this GPU when a result exists, else the seed's
  RTX 3070 figure for the model (``SEED_3070``), else that of the seed model of the same architecture divided by the
  ratio of their training compute per token (gpu8gb's Mi:dm 2.0 Mini from TinyLlama), labelled with its assumption.
  It counts training and held-out loss only, not loading or generating answers, and says so.
"""
from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path

# The seed's RTX 3070 (8 GB) throughput for its QLoRA recipe (seq 512, batch 1 x grad-accum 16), samples/s
SEED_3070 = {"gpt2": (10.0, 12.0), "tinyllama-1.1b": (4.0, 5.0), "phi-2": (2.5, 3.0)}
# Assumption of the throughput estimate: one held-out sample (a forward pass) costs a third of a training sample
# (forward + backward; with checkpointing's second forward it is nearer a quarter: a third does not underestimate)
EVAL_SAMPLE_COST = 1 / 3
TRAINING_NOTEBOOKS = ("05", "09")  # the notebooks whose time is mostly training


def cpu_isa() -> str:
    """The widest vector instructions this CPU has, as bitsandbytes and torch choose paths by them."""
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:  # not Linux
        return platform.machine() or "unknown"
    words = set(flags.split(":", 1)[-1].split())
    for name, flag in (("AVX512-BF16", "avx512_bf16"), ("AVX512", "avx512f"), ("AVX2", "avx2")):
        if flag in words:
            return name
    return platform.machine() or "unknown"


def machine_kind() -> str:
    """``GPU <name>`` with CUDA, else ``CPU <n> cores, <isa>``: what a runtime measurement is matched by."""
    import torch

    if torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name(0)}"
    return f"CPU {os.cpu_count()} cores, {cpu_isa()}"


def planned_steps(profile, records: int) -> int:
    """Optimizer steps a run of ``profile`` takes over ``records`` training records (transformers' Trainer:
    ceil(records / batch) micro-batches, ceil(that / grad-accum) steps per epoch, ceil(epochs x that) in all)."""
    if profile.train.max_steps:
        return profile.train.max_steps
    per_epoch = max(math.ceil(math.ceil(records / profile.batch_size) / profile.grad_accum), 1)
    return math.ceil(profile.train.epochs * per_epoch)


def expected_records(profile, tokenizer=None) -> tuple[int, str]:
    """(training records, how they were counted). With a tokenizer: exactly what training will keep
    (``prompts.prepare_data``). Without: the source's usable records before the length check; for a hub source
    that cannot be read here, the profile's ``max_records``."""
    from .data import DataError
    from .splits import split_source

    d, t = profile.data, profile.train
    if tokenizer is not None:
        from .prompts import prepare_data

        train, _, _, _ = prepare_data(profile, tokenizer)
        return len(train), "검증 후 레코드를 패킹한 학습 행" if profile.train.packing else "검증 후 실제 학습 레코드"
    try:
        train, _, _, report = split_source(d.source, t.heldout_records, t.seed, d.on_invalid, d.max_records)
    except DataError:
        train, report = None, None
    if train is None or (report.source != d.source and d.max_records):  # not readable here (offline hub source)
        return d.max_records, f"프로필의 max_records: 데이터를 여기서 읽지 못함 ({d.source})"
    return len(train), "길이 검사 전 레코드"


def training_work(profile, records: int) -> dict:
    """Samples notebook 05 trains and scores: optimizer steps x batch x grad-accum, and the held-out evaluations
    (the test records before and after training, the dev records every ``eval_steps``)."""
    steps = planned_steps(profile, records)
    evals = 2 + steps // profile.train.eval_steps
    return {"steps": steps, "train_samples": steps * profile.batch_size * profile.grad_accum,
            "eval_samples": evals * profile.train.heldout_records}


def tuning_work(profile) -> dict:
    """Samples notebook 09 trains and scores at most (no trial pruned): the trials on ``tuning.heldout_records`` dev
    records every ``tuning.eval_steps`` (a trial is a choice: no test pass, ``run_trial``), then three comparison runs
    of ``tuning.steps`` on the full held-out sets (test before and after, dev once at the end: ``compare``)."""
    tn = profile.tuning
    per_step = profile.batch_size * profile.grad_accum
    return {"steps": (tn.trials + 3) * tn.steps, "train_samples": (tn.trials + 3) * tn.steps * per_step,
            "eval_samples": tn.trials * (tn.steps // tn.eval_steps) * tn.heldout_records
            + 3 * (2 + 1) * profile.train.heldout_records}


def work_seconds(work: dict, samples_per_s: float) -> float:
    return (work["train_samples"] + EVAL_SAMPLE_COST * work["eval_samples"]) / samples_per_s


def measured_throughput(profile, results_dir, kind: str) -> tuple[float, float, str] | None:
    """(low, high samples/s, source) for the profile's model and recipe: a ``gpu_check`` result of this GPU, else
    the seed's RTX 3070 figure (an estimate for another card), else None."""
    for path in sorted(Path(results_dir).glob("gpu_*.json"), reverse=True) if results_dir else []:
        data = json.loads(path.read_text(encoding="utf-8"))
        if f"GPU {data.get('gpu')}" != kind or data.get("dry"):
            continue
        for row in data.get("rows", []):
            if row.get("model") == profile.model and row.get("method") == "qlora" and row.get("fits"):
                rate = row["samples_per_s"]
                return rate, rate, f"이 GPU에서 잰 처리량 {rate:.2f} 샘플/s ({path.name})"
    if profile.model in SEED_3070:
        low, high = SEED_3070[profile.model]
        return low, high, f"처음 설계의 RTX 3070 처리량 {low:g}–{high:g} 샘플/s (QLoRA, seq 512, 배치 1 × 16)"
    reference = same_architecture_seed(profile.model)
    if reference is None:
        return None
    ratio = compute_ratio(profile.model, reference, profile.seq_len)
    if ratio < 1:  # a smaller model's steps are not compute-bound on that card: no figure to scale down
        return None
    low, high = SEED_3070[reference]
    return low / ratio, high / ratio, (
        f"처음 설계의 RTX 3070에서 같은 구조의 {reference}가 낸 처리량 {low:g}–{high:g} 샘플/s를 토큰당 학습 계산량의 비 "
        f"{ratio:.2f}배로 나눈 {low / ratio:.2f}–{high / ratio:.2f} 샘플/s (처리량이 계산량에 반비례하고 샘플당 토큰 수가 "
        f"같다고 가정했습니다: 토크나이저가 한국어를 더 적은 토큰으로 나누면 그만큼 빨라집니다)")


def same_architecture_seed(model: str) -> str | None:
    """The seed model with an RTX 3070 figure whose architecture (transformers' model_type) ``model`` shares, if any:
    gpu8gb's Mi:dm 2.0 Mini (Llama) -> TinyLlama."""
    from .models import get_spec

    kind = get_spec(model).model_type
    return next((key for key in SEED_3070 if get_spec(key).model_type == kind), None)


def training_flops_per_token(model: str, seq_len: int) -> int:
    """Forward FLOPs per token (the backward pass and checkpointing's second forward multiply every model alike):
    2 per weight of every matrix product (the transformer blocks' linear layers and the output layer, tied or not)
    and 4 x seq_len x the attention width per layer (scores and the weighted sum)."""
    from .models import build_config, count_params, meta_model

    config, counts = build_config(model), count_params(meta_model(model))
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    attention = 4 * seq_len * config.num_attention_heads * head_dim * config.num_hidden_layers
    return 2 * (counts.linear + config.vocab_size * config.hidden_size) + attention


def compute_ratio(model: str, reference: str, seq_len: int) -> float:
    """How many times the training compute per token of ``model`` is that of ``reference``."""
    return training_flops_per_token(model, seq_len) / training_flops_per_token(reference, seq_len)


def runtime_files(profile_name: str, results_dir) -> list[dict]:
    """Every ``course_runtime`` result of a profile, newest first, each with its file name."""
    found = []
    for path in sorted(Path(results_dir).glob(f"course_runtime_{profile_name}_*.json"), reverse=True) if results_dir else []:
        data = json.loads(path.read_text(encoding="utf-8"))
        found.append({**data, "file": path.name})
    return found


def expected_times(profile, results_dir=None, kind: str | None = None, records: int | None = None) -> list[dict]:
    """One row per notebook 00-10: seconds (or a low-high range), ``how`` (측정 / 추정 / 없음) and ``source``."""
    kind = kind or machine_kind()
    runs = runtime_files(profile.name, results_dir)
    same = next((r for r in runs if r.get("machine_kind") == kind), None)
    other = None if same else (runs[0] if runs else None)
    run = same or other
    names = [r["notebook"] for r in run["rows"]] if run else []
    rows = []
    for name in names:
        seconds = next(r["seconds"] for r in run["rows"] if r["notebook"] == name)
        where = run.get("machine_kind") or f"CPU {run['cpu_count']} cores (벡터 명령어는 기록되지 않음)"
        rows.append({"notebook": name, "seconds": (seconds, seconds), "how": "측정" if same else "추정",
                     "source": f"{where}에서 {run['date']}에 잰 값 ({run['file']})"
                     + ("" if same else ": 이 컴퓨터와 다른 종류라 추정입니다")})
    if run:
        return rows
    rate = measured_throughput(profile, results_dir, kind)
    if records is None:
        records, counted = expected_records(profile)
    else:
        counted = "주어진 레코드 수"
    for number, work in (("05", training_work(profile, records)), ("09", tuning_work(profile))):
        if rate is None:
            continue
        low, high, source = rate
        what = (f"{profile.name}의 {work['steps']:,} 스텝 × 배치 {profile.batch_size} × 누적 {profile.grad_accum} = "
                f"{work['train_samples']:,} 학습 샘플 + 평가 {work['eval_samples']:,}개(학습 샘플의 "
                f"{EVAL_SAMPLE_COST:.2g}로 가정)")
        if number == "05":
            what += f"; 레코드 {records:,} ({counted})"
        rows.append({"notebook": number, "seconds": (work_seconds(work, high), work_seconds(work, low)), "how": "추정",
                     "source": f"{source} 기준. {what}. 학습과 평가 손실만, 모델 읽기와 답 생성은 빠짐"})
    return rows


def describe(row: dict | None) -> str:
    """``약 15.2분 (측정: …)`` / ``약 1.7–2.1시간 (추정: …)`` / what is missing."""
    if row is None:
        return "예상 시간 없음: 이 컴퓨터 종류와 프로필로 잰 값도, 추정의 근거(처리량)도 없습니다"
    low, high = row["seconds"]
    return f"약 {_duration(low, high)} ({row['how']}: {row['source']})"


def notebook_time(profile, notebook: str, results_dir=None, kind: str | None = None, records: int | None = None) -> str:
    """The expected time of one notebook (``"05"``) as one line for the learner."""
    rows = expected_times(profile, results_dir, kind, records)
    return describe(next((r for r in rows if r["notebook"].startswith(notebook)), None))


def times_table(profile, results_dir=None, kind: str | None = None, notebooks: list[str] | None = None):
    """Notebook 00's table: every lesson with its expected time on this profile and machine, and the source, every
    text whole (a DataFrame's display cuts cells at 50 characters; ``.data`` is the DataFrame)."""
    import pandas as pd

    rows = {r["notebook"][:2]: r for r in expected_times(profile, results_dir, kind)}
    names = notebooks or sorted(rows)
    table = pd.DataFrame([{"노트북": name, "예상 시간": _duration(*rows[name[:2]]["seconds"]) if name[:2] in rows else "없음",
                          "근거": f"{rows[name[:2]]['how']}: {rows[name[:2]]['source']}" if name[:2] in rows else
                          "이 프로필을 이런 컴퓨터에서 잰 적이 없고, 추정의 근거로 쓸 공개 수치도 없습니다"}
                         for name in names]).set_index("노트북")
    return table.style.set_properties(**{"text-align": "left", "white-space": "pre-wrap"})


def _duration(low: float, high: float) -> str:
    def one(seconds: float, unit: str) -> str:
        value = {"초": seconds, "분": seconds / 60, "시간": seconds / 3600}[unit]
        return f"{value:.0f}" if unit == "초" else f"{value:.1f}"

    unit = "초" if high < 90 else "분" if high < 5400 else "시간"
    text = one(low, unit) if abs(high - low) < 1e-9 else f"{one(low, unit)}–{one(high, unit)}"
    return f"{text}{unit}"

# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown] slideshow={"slide_type": "slide"}
# # 05. 학습 — LoRA 어댑터 학습하기
#
# 프로필의 레시피로 LoRA 어댑터를 학습하고, 학습 전후를 같은 평가 데이터로 비교합니다.
# 이 노트북을 마치면 transformers `Trainer` + peft로 학습을 돌리고, 중단된 학습을 이어서 하고, 결과를 숫자로 판단할 수 있습니다.
#
# ## 학습 목표
# - 프로필 레시피(학습률, 배치, 그래디언트 누적, 체크포인트)로 학습을 실행한다.
# - 학습 중 손실 곡선을 보고, 중단 후 마지막 체크포인트에서 이어서 학습한다.
# - 학습에 쓰지 않은 레코드의 답변 손실과 퍼플렉서티(perplexity)를 학습 전후로 잰다.
# - 속도(토큰/s), 최대 메모리, 어댑터 크기를 기본 모델과 비교한다.
#
# ## 예상 소요 시간
# README의 표를 보세요. 마지막 셀이 실제 실행 시간을 출력합니다.

# %%
import time

from course_utils.notebook import setup
from course_utils.units import GIB, MIB

t_start = time.perf_counter()
profile = setup()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. 레시피
#
# 학습은 `course_utils.train.train`이 합니다. 같은 함수를 터미널에서 `python -m course_utils.train --profile cpu`로,
# 여러 GPU에서는 `accelerate launch`로 실행할 수 있습니다. 손실은 답변 토큰에만 걸리고, 출력층(lm_head)도 답변 위치에서만
# 계산합니다 — Gemma의 262k 어휘에서는 이것만으로 계산량이 크게 줄어듭니다.

# %%
t = profile.train
print(f"model {profile.model} · {profile.dtype} · quantization {profile.quantization}")
print(f"LoRA r={profile.lora.r} alpha={profile.lora.alpha} dropout={profile.lora.dropout} targets={profile.lora.targets}")
print(f"batch {profile.batch_size} x grad-accum {profile.grad_accum}, seq {profile.seq_len}, lr {t.learning_rate}, "
      f"warmup {t.warmup_steps}, {t.lr_scheduler}, {t.max_steps} steps, checkpoint every {t.save_steps}, {profile.optimizer}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. 학습 전: 탐침 질문
#
# 정답이 분명한 짧은 질문(탐침, probe)을 학습 전 모델에 물어봅니다. 답에 정답 단어가 들어 있으면 맞힌 것으로 셉니다.
# 이 질문들은 학습 데이터에 없습니다.

# %%
import gc

import pandas as pd

from course_utils.data import load_probes
from course_utils.inference import probe_accuracy, run_probes
from course_utils.loading import load_profile_model, load_tokenizer

probes = load_probes()[: t.probe_questions]
tokenizer = load_tokenizer(profile.model)
base = load_profile_model(profile)
before = run_probes(base, tokenizer, probes, profile.data.template)
del base
gc.collect()
print(f"학습 전 탐침 정답률: {100 * probe_accuracy(before):.0f} % ({sum(r.correct for r in before)}/{len(before)})")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. 학습하다가 멈추기
#
# 실제로는 전원이 꺼지거나 노트북을 닫아 학습이 끊깁니다. 여기서는 첫 체크포인트 직후에 일부러 멈춥니다.

# %%
from pathlib import Path

from course_utils.monitoring import live_loss_plot
from course_utils.train import train

out = Path("outputs") / "05_training" / profile.name  # one folder per profile
first = train(profile, out, stop_after=t.save_steps, callbacks=[live_loss_plot()])
print(f"멈춘 스텝: {first.global_step} / {t.max_steps}")
print("체크포인트:", sorted(p.name for p in (out / "checkpoints").iterdir()))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. 마지막 체크포인트에서 이어서 학습
#
# `resume=True`는 가장 최근의 **완전한** 체크포인트(어댑터, 옵티마이저, 스케줄러, 상태가 모두 있는 것)를 찾아 이어 갑니다.
# 학습률 스케줄과 데이터 순서도 그 지점부터 계속됩니다.

# %%
result = train(profile, out, resume=True, callbacks=[live_loss_plot()])
print(f"이어서 시작한 체크포인트: {Path(result.resumed_from).name}, 마친 스텝: {result.global_step}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5. 결과: 학습에 쓰지 않은 데이터의 손실
#
# 평가 레코드의 답변 토큰 평균 교차 엔트로피(nats/토큰)와 퍼플렉서티(= e^손실)를 학습 전후로 비교합니다.

# %%
import math

pd.DataFrame([
    {"": "학습 전", "held-out answer loss": round(result.heldout_loss_before, 4),
     "perplexity": round(math.exp(result.heldout_loss_before), 2)},
    {"": "학습 후", "held-out answer loss": round(result.heldout_loss_after, 4),
     "perplexity": round(math.exp(result.heldout_loss_after), 2)},
]).set_index("")

# %%
print(f"손실 감소: {100 * result.loss_drop:.1f} %")
print(f"학습 시간 {first.train_seconds + result.train_seconds:.1f} s, 속도 {result.tokens_per_second:.0f} 토큰/s (패딩 제외)")
print(f"최대 메모리: {result.peak_memory_bytes / GIB:.2f} GiB "
      f"({'torch.cuda.max_memory_allocated' if profile.device == 'cuda' else '프로세스 최대 RSS'})")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6. 저장된 어댑터
#
# 표준 PEFT 형식(`adapter_config.json` + `adapter_model.safetensors`)과, 06/07이 쓰는 메타데이터 파일
# `course_adapter.json`(기본 모델과 가중치 해시, 템플릿, 최대 길이, 프로필, 라이브러리 버전)이 저장됩니다.

# %%
import json

from course_utils.loading import model_source

adapter_bytes = (result.adapter_dir / "adapter_model.safetensors").stat().st_size
base_files = Path(model_source(profile.model)).glob("*.safetensors") if profile.device == "cpu" else []
base_bytes = sum(f.stat().st_size for f in base_files)
print(sorted(p.name for p in result.adapter_dir.iterdir()))
print(f"adapter {adapter_bytes / MIB:.2f} MiB" + (f" vs base model {base_bytes / MIB:.1f} MiB "
      f"({100 * adapter_bytes / base_bytes:.2f} %)" if base_bytes else ""))
meta = json.loads((result.adapter_dir / "course_adapter.json").read_text())
{k: meta[k] for k in ["base_model", "base_weights", "template", "max_length", "profile", "global_step"]}

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 7. 학습 후: 탐침 질문

# %%
after = run_probes(result.model, result.tokenizer, probes, profile.data.template)
pd.DataFrame([{"question": b.question, "expected": b.expected, "before": b.answer[:40], "after": a.answer[:40],
               "ok before": b.correct, "ok after": a.correct} for b, a in zip(before, after, strict=True)])

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 정리

# %%
print(f"held-out 답변 손실: {result.heldout_loss_before:.3f} -> {result.heldout_loss_after:.3f} ({100 * result.loss_drop:.1f} % 감소)")
print(f"탐침 정답률: {100 * probe_accuracy(before):.0f} % -> {100 * probe_accuracy(after):.0f} %")
print(f"학습 {result.global_step} 스텝, {first.train_seconds + result.train_seconds:.1f} s, {result.tokens_per_second:.0f} 토큰/s, "
      f"어댑터 {adapter_bytes / MIB:.2f} MiB")

print(f"이 노트북 실행 시간: {time.perf_counter() - t_start:.1f} s (프로필 {profile.name})")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 연습 문제
#
# `answer`를 채우고 셀을 실행하면 확인 함수가 정답인지, 아니라면 왜인지 알려 줍니다 (답은 알려 주지 않습니다).
# 기초 → 응용 → 도전 순서입니다. 풀이는 `notebooks/solutions/05_solutions.ipynb`에 있습니다.

# %% [markdown]
# ### 기초
# 이 프로필에서 학습 데이터를 한 번 다 보는(1 에폭) 옵티마이저 스텝은 몇 번일까요? (`meta`는 어댑터 메타데이터: 학습 레코드 수가 들어 있습니다)

# %%
from course_utils.adapter import read_adapter_metadata
from course_utils.exercises.training import check_05_basic

meta = read_adapter_metadata(result.adapter_dir)
answer = None  # optimizer steps
check_05_basic(answer, profile, meta)

# %% [markdown]
# ### 응용
# 학습 후 held-out 답변 손실의 퍼플렉서티(perplexity)는?

# %%
from course_utils.exercises.training import check_05_applied

answer = None  # perplexity
check_05_applied(answer, meta)

# %% [markdown]
# ### 도전
# 이번 실행의 tokens/s로, 학습 데이터 3 에폭에 몇 초가 걸릴지 예측하세요 (`prepare_data`로 토큰을 세어 보세요).

# %%
from course_utils.exercises.training import check_05_challenge

answer = None  # seconds
check_05_challenge(answer, profile, meta, tokenizer)

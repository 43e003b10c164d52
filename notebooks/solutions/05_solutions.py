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

from course_utils.adapter import ensure_adapter, read_adapter_metadata
from course_utils.loading import load_tokenizer

adapter_dir = ensure_adapter(profile, Path('..') / 'outputs' / '05_training' / profile.name)
meta = read_adapter_metadata(adapter_dir)
tokenizer = load_tokenizer(profile.model)

# %% [markdown]
# ### 기초
# 이 프로필에서 학습 데이터를 한 번 다 보는(1 에폭) 옵티마이저 스텝은 몇 번일까요? (`meta`는 어댑터 메타데이터: 학습 레코드 수가 들어 있습니다)

# %%
import math

from course_utils.exercises.training import check_05_basic

answer = math.ceil(meta['train_records'] / (profile.batch_size * profile.grad_accum))
assert check_05_basic(answer, profile, meta)

# %% [markdown]
# ### 응용
# 학습 후 held-out 답변 손실의 퍼플렉서티(perplexity)는?

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
from course_utils.train import prepare_data

train_set, _, _ = prepare_data(profile, tokenizer)
answer = 3 * sum(len(e['input_ids']) for e in train_set) / meta['tokens_per_second']
assert check_05_challenge(answer, profile, meta, tokenizer)

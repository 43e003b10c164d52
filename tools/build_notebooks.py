"""Source of the course notebooks: edit here, run ``make notebooks`` (builds, then executes in `cpu`).

Cells marked check=True are compared by nbval (``# NBVAL_CHECK_OUTPUT``): only cells whose output is
the same for every profile and that call nothing which logs or warns.
"""
from __future__ import annotations

import sys
from pathlib import Path

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


BOOKS = {"01_vram_budgeting.ipynb": nb01, "02_quantization.ipynb": nb02, "03_lora_config.ipynb": nb03}

if __name__ == "__main__":
    names = sys.argv[1:] or list(BOOKS)
    for name in names:
        write(NB / name, BOOKS[name]())
        print("wrote", NB / name)

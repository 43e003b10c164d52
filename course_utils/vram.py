"""VRAM budgeting: estimate what fills GPU memory during fine-tuning, term by term, in bytes.

Methods
- ``full``:  every weight trains; mixed precision as the transformers Trainer does it with
  ``fp16=True``: fp32 weights (4 B) + fp32 gradients (4 B) + AdamW states (8 B) = 16 B per value.
- ``lora``:  frozen base in the compute dtype (fp16: 2 B) + fp32 LoRA adapters.
- ``qlora``: frozen base with linear layers in nf4 (0.5 B + block constants), the rest (embedding, output head,
  norms) in fp32 as peft's ``prepare_model_for_kbit_training`` casts it (tests/test_vram.py), + fp32 LoRA adapters.

Activations are what autograd keeps for the backward pass. The per-layer accounting below lists the tensors
PyTorch saves for each operation of a decoder layer (checked against ``saved_tensors_hooks`` in ``vram_measure``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

from .lora import adapter_shapes, discover_targets, find_linear_layers
from .models import MODELS, ModelSpec, count_params, get_spec, meta_model
from .units import GIB

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
WEIGHT_BYTES = {"float32": 4.0, "float16": 2.0, "bfloat16": 2.0, "int8": 1.0, "nf4": 0.5}
NF4_BLOCK = 64  # values per absmax block (bitsandbytes default)
NESTED_BLOCK = 256  # absmax values per second-level block with double quantization
ADAM8_MIN_SIZE = 4096  # bitsandbytes keeps 32-bit states for tensors smaller than this (min_8bit_size)
ADAM8_BLOCK = 256  # 8-bit optimizer block size: one fp32 absmax per block and state
PAGED_MIN_SIZE = 100_000  # bitsandbytes pages only state tensors with at least this many values
CUDA_CONTEXT_BYTES = int(0.4 * GIB)  # assumed when not measured: CUDA context + kernels, outside PyTorch's allocator
BUDGET_8GB = 8 * GIB

TERMS = {
    "weights_linear": "base weights: linear layers (quantizable)",
    "weights_other": "base weights: embedding, output head, norms (fp32 under QLoRA)",
    "quant_constants": "quantization constants (absmax, double quant)",
    "lora_weights": "LoRA adapter weights",
    "gradients": "gradients",
    "optimizer": "optimizer states",
    "activations": "activations saved for backward",
    "logits": "logits + log-probabilities",
    "cuda_context": "CUDA context (measured when given, else assumed 0.4 GiB)",
}


@dataclass
class VramEstimate:
    """A memory estimate. ``terms`` maps each entry of ``TERMS`` to bytes."""

    model: str
    method: str
    seq_len: int
    batch_size: int
    r: int
    gradient_checkpointing: bool
    terms: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.terms.values())

    def fits(self, budget: int = BUDGET_8GB) -> bool:
        return self.total <= budget

    def table(self) -> list[tuple[str, float]]:
        """(label, GiB) rows, largest first would hide the structure, so the order of ``TERMS``."""
        return [(TERMS[k], v / GIB) for k, v in self.terms.items()]


def weight_bytes(n_values: int, fmt: str, blocksize: int = NF4_BLOCK, double_quant: bool = True) -> tuple[int, int]:
    """(data bytes, constant bytes) to store ``n_values`` weights in ``fmt``.

    nf4: 4 bits per value + one absmax per ``blocksize`` values: fp32 (4 B) without double
    quantization, or 8-bit (1 B) plus one fp32 per 256 absmax values with it (QLoRA paper,
    Dettmers et al. 2023: 0.5 -> 0.127 bits per parameter). int8 counts its weights only; per-row
    scales are added by ``int8_row_constants``.
    """
    if fmt not in WEIGHT_BYTES:
        raise ValueError(f"Unknown weight format {fmt!r}; choose one of {', '.join(WEIGHT_BYTES)}")
    data = math.ceil(n_values * WEIGHT_BYTES[fmt])
    if fmt != "nf4":
        return data, 0
    blocks = math.ceil(n_values / blocksize)
    if not double_quant:
        return data, 4 * blocks
    return data, blocks + 4 * math.ceil(blocks / NESTED_BLOCK)


def optimizer_state_bytes(tensor_sizes: list[int], optimizer: str) -> int:
    """Bytes of optimizer state for parameters with the given value counts.

    ``adamw_torch``: two fp32 states (8 B per value). ``adamw_8bit`` / ``paged_adamw_8bit``: two uint8
    states + one fp32 absmax per 256 values and state, except tensors under 4096 values, which keep
    fp32 states (bitsandbytes ``min_8bit_size``). Paging moves nothing for tensors under 100k values.
    """
    if optimizer == "adamw_torch":
        return sum(8 * n for n in tensor_sizes)
    if optimizer in ("adamw_8bit", "paged_adamw_8bit"):
        total = 0
        for n in tensor_sizes:
            total += 8 * n if n < ADAM8_MIN_SIZE else 2 * n + 2 * 4 * math.ceil(n / ADAM8_BLOCK)
        return total
    raise ValueError(f"Unknown optimizer {optimizer!r}; choose adamw_torch, adamw_8bit or paged_adamw_8bit")


def _arch(spec: ModelSpec) -> dict:
    c = spec.config
    d = spec.hidden_size
    h = c.get("num_attention_heads", c.get("n_head"))
    hd = c.get("head_dim", d // h)
    return dict(d=d, h=h, hd=hd, kv=c.get("num_key_value_heads", h),
                ff=c.get("intermediate_size", 4 * d), L=spec.num_layers, V=spec.vocab_size)


def layer_saved_values(spec: ModelSpec, method: str, r: int, lora_dropout: float, targets: str,
                       device: str) -> dict[str, int]:
    """Values (not bytes) one decoder layer saves for backward, per token, by group.

    Groups: ``norms`` (inputs of RMSNorm/LayerNorm, kept in fp32), ``lora`` (adapter inputs after
    dropout, A outputs), ``lora_masks`` (dropout masks), ``linear_inputs`` (inputs of trainable base layers: full fine-tuning only),
    ``attention`` (q, k, v, output, log-sum-exp), ``mlp`` (activation-function inputs and outputs),
    ``residual_dropout`` and ``attention_scores`` (GPT-2 on CPU: its attention dropout forces the
    math kernel, which keeps h x seq scores per token).
    """
    a = _arch(spec)
    d, h, hd, kv, ff = a["d"], a["h"], a["hd"], a["kv"], a["ff"]
    q_out, kv_out = h * hd, kv * hd
    fam = spec.model_type
    n_norm = {"llama": 2, "qwen2": 2, "gemma3_text": 4, "gpt2": 2, "phi": 1}[fam]
    norm_extra = 2 if fam in ("gpt2", "phi") else 1  # LayerNorm keeps mean+rstd, RMSNorm rsqrt
    full = method == "full"
    out = {"norms": n_norm * (d + norm_extra) + (n_norm * d if full and fam not in ("gpt2", "phi") else 0)}
    # LoRA adapters (attention targets; all-linear adds the MLP layers)
    if not full:
        mods = _adapted_inputs(fam, targets, d, q_out, ff)
        if lora_dropout > 0:  # each adapter draws its own mask and dropped copy of its input
            out["lora_masks"] = sum(mods)
            out["lora"] = sum(mods) + r * len(mods)
        else:  # q, k, v share one input tensor
            out["lora"] = sum(set(mods)) + r * len(mods) if fam != "gpt2" else sum(mods) + r * len(mods)
    else:
        out["linear_inputs"] = d + q_out + d + ff  # qkv input, o input, mlp input, down/fc2 input
    attn = 2 * q_out + 2 * kv_out + h  # q, k, v, output, log-sum-exp
    if fam == "gemma3_text":
        attn += q_out + kv_out + h + kv  # q_norm / k_norm inputs and their rsqrt
    out["attention"] = attn
    if fam in ("llama", "qwen2", "gemma3_text"):
        out["mlp"] = 3 * ff  # gate out, up out, activation out
    else:
        out["mlp"] = 4 * ff  # gelu_new keeps its input, tanh, sum and product
    if fam == "gpt2":
        out["residual_dropout"] = 2 * d
        if device == "cpu":
            out["attention"] = 3 * d  # the math kernel keeps q, k, v ...
            out["attention_scores"] = 3 * h  # ... and softmax, mask, dropped scores: x seq
    return out


def _adapted_inputs(fam: str, targets: str, d: int, q_out: int, ff: int) -> list[int]:
    if fam == "gpt2":
        attn = [d, d]  # c_attn (q,k,v fused), attn.c_proj
        mlp = [d, ff]
    elif fam == "phi":
        attn = [d, d, d, q_out]
        mlp = [d, ff]
    else:
        attn = [d, d, d, q_out]
        mlp = [d, d, ff]
    return attn + (mlp if targets == "all-linear" else [])


def activation_bytes(spec: ModelSpec | str, seq_len: int, batch_size: int = 1, method: str = "lora",
                     r: int = 8, lora_dropout: float = 0.05, targets: str = "attention",
                     gradient_checkpointing: bool = False, compute_dtype: str = "float16",
                     device: str = "cuda") -> dict[str, int]:
    """Activation bytes saved for backward: ``layers``, ``outside`` (final norm, rotary tables) and
    ``logits`` (logits in the compute dtype + fp32 log-probabilities; + an fp32 upcast copy when the
    compute dtype is 16-bit).

    With gradient checkpointing each layer keeps only its input (d values per token) and one layer's
    saved tensors exist at a time, during its recomputation in the backward pass.
    """
    spec = get_spec(spec)
    a = _arch(spec)
    tokens = seq_len * batch_size
    b = DTYPE_BYTES[compute_dtype]
    mask_b = 1 if device == "cuda" else b  # CUDA dropout keeps a bool mask; CPU a float mask
    groups = layer_saved_values(spec, method, r, lora_dropout, targets, device)
    per_token = 0
    for name, values in groups.items():
        if name == "norms":
            per_token += 4 * values
        elif name == "attention_scores":
            per_token += b * values * seq_len
        elif name == "lora_masks":
            per_token += mask_b * values
        else:
            per_token += b * values
    one_layer = int(per_token * tokens)
    if gradient_checkpointing:
        layers = a["L"] * a["d"] * b * tokens + one_layer
    else:
        layers = a["L"] * one_layer
    rope = 2 * a["hd"] * 4 if spec.model_type != "gpt2" else 0
    outside = (a["d"] + 1) * 4 * tokens + rope * tokens
    logits = tokens * a["V"] * (b + 4 + (4 if b != 4 else 0))
    return {"layers": layers, "outside": outside, "logits": logits, "one_layer": one_layer}


def estimate_vram(model: ModelSpec | str, method: str = "qlora", seq_len: int = 512, batch_size: int = 1,
                  r: int = 8, targets: str = "attention", gradient_checkpointing: bool = True,
                  optimizer: str = "paged_adamw_8bit", compute_dtype: str = "float16",
                  lora_dropout: float = 0.05, device: str = "cuda", cuda_context: int | None = None) -> VramEstimate:
    """Estimate training memory in bytes, per term (see ``TERMS``).

    ``compute_dtype``: of the unquantized frozen weights (fp32 under QLoRA) and activations (fp32 on a CPU).
    ``device="cpu"`` drops the CUDA context term; ``cuda_context``: a measured one (``memory.cuda_outside_pytorch``).
    """
    spec = get_spec(model)
    if method not in ("full", "lora", "qlora"):
        raise ValueError(f"method={method!r}: choose 'full', 'lora' or 'qlora'")
    counts, linear_sizes, all_sizes = _shapes(spec.key) if MODELS.get(spec.key) == spec else _shapes_uncached(spec)
    cb = DTYPE_BYTES[compute_dtype]
    est = VramEstimate(model=spec.key, method=method, seq_len=seq_len, batch_size=batch_size, r=r,
                       gradient_checkpointing=gradient_checkpointing)
    t = est.terms
    if method == "full":
        t["weights_linear"] = 4 * counts.linear
        t["weights_other"] = 4 * (counts.total - counts.linear)
        t["quant_constants"] = 0
        t["lora_weights"] = 0
        sizes = all_sizes
        t["gradients"] = 4 * counts.total
        t["optimizer"] = optimizer_state_bytes(sizes, optimizer)
    else:
        fmt = "nf4" if method == "qlora" else compute_dtype
        t["weights_linear"], t["quant_constants"] = weight_bytes(counts.linear, fmt)
        if method == "qlora":  # absmax is computed per weight matrix
            t["quant_constants"] = sum(weight_bytes(n, "nf4")[1] for n in linear_sizes)
        t["weights_other"] = (4 if method == "qlora" else cb) * (counts.total - counts.linear)
        sizes = lora_tensor_sizes(spec.key, targets, r) if MODELS.get(spec.key) == spec else \
            _lora_sizes_uncached(spec, targets, r)
        t["lora_weights"] = 4 * sum(sizes)
        t["gradients"] = 4 * sum(sizes)
        t["optimizer"] = optimizer_state_bytes(sizes, optimizer)
        if optimizer == "paged_adamw_8bit" and max(sizes) < PAGED_MIN_SIZE:
            est.notes.append(f"paged: nothing is paged, the largest LoRA tensor has {max(sizes):,} values "
                             f"(< {PAGED_MIN_SIZE:,})")
    act = activation_bytes(spec, seq_len, batch_size, method, r, lora_dropout, targets,
                           gradient_checkpointing, compute_dtype, device)
    t["activations"] = act["layers"] + act["outside"]
    t["logits"] = act["logits"]
    t["cuda_context"] = (CUDA_CONTEXT_BYTES if cuda_context is None else cuda_context) if device == "cuda" else 0
    return est


def _shapes_uncached(spec: ModelSpec):
    """(ParamCounts, value counts of each quantizable linear weight, of every parameter)."""
    meta = meta_model(spec)
    seen, sizes = set(), []
    for p in meta.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            sizes.append(p.numel())
    linear = [layer.in_features * layer.out_features for layer in find_linear_layers(meta)]
    return count_params(meta), linear, sizes


def _lora_sizes_uncached(spec: ModelSpec, targets: str, r: int) -> list[int]:
    meta = meta_model(spec)
    return [a * b for _, (a, b) in adapter_shapes(meta, discover_targets(meta, targets), r)]


_shapes = lru_cache(maxsize=None)(lambda key: _shapes_uncached(get_spec(key)))
@lru_cache(maxsize=None)
def lora_tensor_sizes(key: str, targets: str = "attention", r: int = 8) -> list[int]:
    """Value counts of every LoRA matrix (A and B of each adapted layer) of a registry model."""
    return _lora_sizes_uncached(get_spec(key), targets, r)


def budget_table(models=None, methods=("full", "lora", "qlora"), seq_len: int = 512, batch_size: int = 1,
                 r: int = 8, gradient_checkpointing: bool = True, budget: int = BUDGET_8GB) -> list[dict]:
    """One row per (model, method) with each term in GiB, the total and whether it fits ``budget``.

    Optimizer: paged 8-bit AdamW for every method (the seed recipe's choice).
    """
    from .models import SEED_MODELS

    rows = []
    for key in models or SEED_MODELS:
        for method in methods:
            est = estimate_vram(key, method, seq_len, batch_size, r, gradient_checkpointing=gradient_checkpointing,
                                optimizer="paged_adamw_8bit" if method != "full" else "adamw_torch")
            row = {"model": key, "method": method}
            row.update({k: v / GIB for k, v in est.terms.items()})
            row["total_gib"] = est.total / GIB
            row["fits_8gb"] = est.fits(budget)
            rows.append(row)
    return rows

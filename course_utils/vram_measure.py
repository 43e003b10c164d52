"""Measure training memory on this machine, to check the estimator in ``vram``.

On a CPU there is no allocator peak to read, so each term is measured directly:
- parameters, gradients, optimizer states: bytes of their distinct storages (exact);
- activations, by one fixed rule: the bytes of each distinct storage that autograd saves for backward
  during one training-mode forward (``torch.autograd.graph.saved_tensors_hooks``) on unpadded input,
  excluding parameters and buffers. Logits and log-probabilities (last dimension = vocabulary) are
  reported as their own term. With activation checkpointing, the hooks see what is saved outside the
  checkpointed layers; each layer's kept input is added, plus one layer's recomputed saves (measured
  in the same call without checkpointing), since backward recomputes one layer at a time.
On CUDA, ``measure_cuda_peak`` reads ``torch.cuda.max_memory_allocated`` around one training step.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import torch

from .quantization import quant_state_bytes


@dataclass
class MemoryMeasurement:
    """Measured bytes of one training step (see module docstring for the rule)."""

    seq_len: int
    batch_size: int
    gradient_checkpointing: bool
    parameters: int
    gradients: int
    optimizer: int
    activations: int  # without logits
    logits: int
    one_layer: int  # one decoder layer's saved bytes (no checkpointing)


def _storage_key(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def _distinct_bytes(tensors) -> int:
    seen = {}
    for t in tensors:
        if t is not None and t.device.type != "meta":
            seen[_storage_key(t)] = t.untyped_storage().nbytes()
    return sum(seen.values())


def parameter_bytes(model) -> int:
    """Bytes of all parameter storages, 4-bit packed weights and their quantization constants included."""
    total = _distinct_bytes(model.parameters())
    for p in model.parameters():
        qs = getattr(p, "quant_state", None)
        if qs is not None:
            total += quant_state_bytes(qs)
    return total


def footprint_by_role(model) -> dict[str, int]:
    """Bytes of a model's weights as stored, by role: token embedding (and a separate output layer), the linear
    layers inside the blocks (4-bit packed data + constants when quantized), everything else (norms, biases,
    buffers). Tied weights count once. The parts sum to ``model_footprint``."""
    from .models import _is_linear

    seen, out = set(), {"embedding + output layer": 0, "linear layers": 0, "other": 0}
    heads = {id(model.get_input_embeddings()), id(model.get_output_embeddings())}
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            size = p.untyped_storage().nbytes() if p.device.type != "meta" else 0
            qs = getattr(p, "quant_state", None)
            size += quant_state_bytes(qs) if qs is not None else 0
            role = ("embedding + output layer" if id(module) in heads or isinstance(module, torch.nn.Embedding)
                    else "linear layers" if name == "weight" and _is_linear(module) else "other")
            out[role] += size
    out["other"] += sum(b.numel() * b.element_size() for b in model.buffers())
    return out


def model_footprint(model) -> int:
    """Bytes of a model's weights as stored (4-bit packed data and constants included) plus its buffers."""
    return parameter_bytes(model) + sum(b.numel() * b.element_size() for b in model.buffers())


def decoder_layers(model) -> torch.nn.ModuleList:
    """The ModuleList of transformer blocks (works for plain and peft-wrapped models)."""
    n = model.config.num_hidden_layers
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n:
            return module
    raise ValueError(f"No list of {n} decoder layers found in {type(model).__name__}")


def _saved_bytes(model, input_ids, vocab: int):
    """Forward once with hooks.

    Returns (saved bytes per layer index or 'outside', logits bytes, bytes of layer inputs that were
    not saved by autograd, model output).
    """
    skip = {_storage_key(t) for t in list(model.parameters()) + list(model.buffers())}
    seen: dict[int, tuple[str, int]] = {}
    where = ["outside"]
    logits_keys: set[int] = set()

    def pack(t):
        key = _storage_key(t)
        if key not in skip and key not in seen:
            seen[key] = (where[0], t.untyped_storage().nbytes())
            if t.dim() > 0 and t.shape[-1] == vocab:
                logits_keys.add(key)
        return t

    layers = decoder_layers(model)
    inputs: dict[int, int] = {}
    handles = []
    for i, layer in enumerate(layers):
        def pre(mod, args, kwargs, i=i):
            where[0] = i
            hidden = args[0] if args else kwargs.get("hidden_states")
            inputs[_storage_key(hidden)] = hidden.untyped_storage().nbytes()
        handles.append(layer.register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(layer.register_forward_hook(lambda mod, a, o: where.__setitem__(0, "outside")))
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model(input_ids=input_ids, labels=input_ids)
    finally:
        for h in handles:
            h.remove()
    per = defaultdict(int)
    logits = 0
    for key, (w, nbytes) in seen.items():
        if key in logits_keys:
            logits += nbytes
        else:
            per[w] += nbytes
    # layer inputs that autograd did not already save (kept alive by checkpointing instead)
    inputs = {k: v for k, v in inputs.items() if k not in seen}
    lkey = _storage_key(out.logits)
    if lkey not in logits_keys:
        logits += out.logits.untyped_storage().nbytes()
    return per, logits, inputs, out


def measure_training_memory(model, seq_len: int, batch_size: int = 1, gradient_checkpointing: bool = False,
                            optimizer: str = "adamw_torch", seed: int = 0) -> MemoryMeasurement:
    """Measure one training step of ``model`` on CPU (see the module docstring for the rule).

    The optimizer runs with learning rate 0, so the weights do not change.
    """
    gen = torch.Generator().manual_seed(seed)
    vocab = model.config.vocab_size
    device = next(model.parameters()).device
    ids = torch.randint(10, min(vocab, 30000), (batch_size, seq_len), generator=gen).to(device)
    model.train()
    model.config.use_cache = False  # no KV cache while training (and no warning about it)
    if not getattr(model, "_course_input_grads", False):
        model.enable_input_require_grads()  # as peft does for checkpointing: every layer sees grad input
        model._course_input_grads = True
    per, logits, _, _ = _saved_bytes(model, ids, vocab)
    layer_bytes = [v for k, v in per.items() if k != "outside"]
    one_layer = max(layer_bytes)
    if gradient_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        try:
            per_ck, logits, inputs, out = _saved_bytes(model, ids, vocab)
            activations = per_ck["outside"] + sum(v for k, v in per_ck.items() if k != "outside") \
                + sum(inputs.values()) + one_layer
            out.loss.backward()
        finally:
            model.activation_checkpointing_disable()
    else:
        activations = sum(per.values())
        _, _, _, out = _saved_bytes(model, ids, vocab)
        out.loss.backward()
    trainable = [p for p in model.parameters() if p.requires_grad]
    grads = _distinct_bytes(p.grad for p in trainable)
    opt = make_optimizer(trainable, optimizer, lr=0.0)
    opt.step()
    states = [v for s in opt.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
    optimizer_bytes = _distinct_bytes(t for t in states if t.dim() > 0)
    opt.zero_grad(set_to_none=True)
    return MemoryMeasurement(seq_len=seq_len, batch_size=batch_size, gradient_checkpointing=gradient_checkpointing,
                             parameters=parameter_bytes(model), gradients=grads, optimizer=optimizer_bytes,
                             activations=activations, logits=logits, one_layer=one_layer)


def make_optimizer(params, name: str, lr: float):
    """AdamW by the profile's optimizer name (torch or bitsandbytes 8-bit / paged 8-bit)."""
    if name == "adamw_torch":
        return torch.optim.AdamW(params, lr=lr)
    import bitsandbytes as bnb

    if name == "adamw_8bit":
        return bnb.optim.AdamW8bit(params, lr=lr)
    if name == "paged_adamw_8bit":
        return bnb.optim.PagedAdamW8bit(params, lr=lr)
    raise ValueError(f"Unknown optimizer {name!r}; choose adamw_torch, adamw_8bit or paged_adamw_8bit")


def measure_cuda_peak(model, seq_len: int, batch_size: int = 1, optimizer: str = "paged_adamw_8bit",
                      seed: int = 0, dtype: torch.dtype = torch.float16) -> dict[str, int]:
    """Peak CUDA memory (bytes) of one full training step: forward, backward, optimizer step, under autocast to
    ``dtype`` (the profile's: fp16 or bf16; fp32 runs without autocast), the inputs on the model's device."""
    if not torch.cuda.is_available():
        raise RuntimeError("measure_cuda_peak needs a CUDA GPU; on a CPU use measure_training_memory")
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(10, min(model.config.vocab_size, 30000), (batch_size, seq_len), generator=gen)
    ids = ids.to(next(model.parameters()).device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(trainable, optimizer, lr=0.0)
    model.train()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    with torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    return {"before_step": before, "peak_allocated": torch.cuda.max_memory_allocated(),
            "peak_reserved": torch.cuda.max_memory_reserved()}


def estimate_vs_measured(model, profile, seq_len: int, gradient_checkpointing: bool,
                         batch_size: int = 1) -> list[dict]:
    """Rows (term, estimated bytes, measured bytes, error %) for the profile's model on this CPU.

    Unpadded random tokens; LoRA from the profile; estimator in the profile's dtype.
    """
    from .units import pct_error
    from .vram import estimate_vram

    meas = measure_training_memory(model, seq_len, batch_size, gradient_checkpointing, optimizer=profile.optimizer)
    est = estimate_vram(profile.model, "qlora" if profile.quantization == "nf4" else "lora", seq_len, batch_size,
                        profile.lora.r, profile.lora.targets, gradient_checkpointing, profile.optimizer,
                        profile.dtype, profile.lora.dropout, device="cpu").terms
    pairs = [
        ("parameters", est["weights_linear"] + est["weights_other"] + est["quant_constants"] + est["lora_weights"],
         meas.parameters),
        ("gradients", est["gradients"], meas.gradients),
        ("optimizer", est["optimizer"], meas.optimizer),
        ("activations", est["activations"], meas.activations),
        ("logits", est["logits"], meas.logits),
    ]
    return [{"seq_len": seq_len, "batch_size": batch_size, "checkpointing": gradient_checkpointing, "term": name,
             "estimated": e,
             "measured": m, "error_pct": pct_error(e, m)} for name, e, m in pairs]


# Korean names of every term ``check_estimate`` returns (CPU: each term; CUDA: the step's peak), as 01 shows them
# the estimator's terms (vram.TERMS) as a learner reads them (notebooks/용어.md)
ESTIMATE_LABELS = {
    "weights_linear": "기본 가중치: 선형 층", "weights_other": "기본 가중치: 임베딩, 출력층, 정규화 층",
    "quant_constants": "양자화 상수", "lora_weights": "LoRA 가중치", "gradients": "그래디언트",
    "optimizer": "옵티마이저 상태", "activations": "활성화", "logits": "로짓",
    "cuda_context": "CUDA 컨텍스트 (재지 않으면 0.4 GiB로 가정)",
}
TERM_LABELS = {"parameters": "파라미터", "gradients": "그래디언트", "optimizer": "옵티마이저", "activations": "활성화",
               "logits": "로짓", "peak total": "한 스텝의 최대 할당 합계"}


def check_estimate(model, profile) -> list[dict]:
    """Estimate vs measurement on this machine for the profile's sequence lengths; every row's ``term`` is a key of
    ``TERM_LABELS``.

    CPU: every term, with and without checkpointing (``estimate_vs_measured``). CUDA: one row per length, term
    ``peak total``: ``torch.cuda.max_memory_allocated`` over one step against the estimate without the CUDA context
    (the context lives outside PyTorch's allocator; ``memory.cuda_outside_pytorch`` measures it).
    """
    from .units import pct_error
    from .vram import estimate_vram

    rows = []
    for seq_len in profile.measure_seq_lens:
        if torch.cuda.is_available() and profile.device == "cuda":
            if profile.gradient_checkpointing:
                model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            peak = measure_cuda_peak(model, seq_len, 1, profile.optimizer, dtype=profile.torch_dtype)["peak_allocated"]
            est = estimate_vram(profile.model, "qlora" if profile.quantization == "nf4" else "lora", seq_len, 1,
                                profile.lora.r, profile.lora.targets, profile.gradient_checkpointing,
                                profile.optimizer, profile.dtype, profile.lora.dropout, device="cuda")
            total = est.total - est.terms["cuda_context"]
            rows.append({"seq_len": seq_len, "batch_size": 1, "checkpointing": profile.gradient_checkpointing,
                         "term": "peak total", "estimated": total, "measured": peak,
                         "error_pct": pct_error(total, peak)})
        else:
            for ckpt in (False, True):
                rows.extend(estimate_vs_measured(model, profile, seq_len, ckpt))
    return rows

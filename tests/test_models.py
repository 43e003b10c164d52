import pytest
import torch

from course_utils.gguf import ModelNotAvailableError
from course_utils.loading import load_tokenizer
from course_utils.models import count_params, get_spec, meta_model


@pytest.mark.parametrize("key,total", [
    ("gpt2", 124_439_808), ("tinyllama-1.1b", 1_100_048_384), ("phi-2", 2_779_683_840),
    ("smollm2-135m-instruct", 134_515_008), ("gemma-3-270m", 268_098_176),
    ("midm-2.0-mini", 2_305_517_312),  # "A lightweight 2.3B parameter dense model" (its model card)
])
def test_parameter_counts_from_architecture_numbers(key, total):
    assert count_params(meta_model(key)).total == total


def test_gemma_is_mostly_embedding():
    c = count_params(meta_model("gemma-3-270m"))
    assert c.embedding == 262144 * 640
    assert c.embedding_share == pytest.approx(0.626, abs=0.001)


def test_unknown_model_lists_valid():
    with pytest.raises(KeyError, match="Unknown model 'llama'. Valid models: gpt2, tinyllama-1.1b"):
        get_spec("llama")


def test_hub_model_offline_names_the_offline_default(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelNotAvailableError, match="HF_HUB_OFFLINE is set.*offline default 'gemma-3-270m'"):
        load_tokenizer("phi-2")


def test_gpu8gbs_korean_default_fits_the_8gb_card_with_room_by_the_estimator():
    """Issue 44's bar for gpu8gb's default: the estimator's QLoRA peak at seq 512, batch 1, with checkpointing and the
    assumed CUDA context, at most 6.5 GiB. Mi:dm's embedding (131,392 x 1,792) is tied, and 4-bit training keeps it
    in fp32, as peft's prepare_model_for_kbit_training casts it."""
    from course_utils.profiles import get_profile
    from course_utils.units import GIB
    from course_utils.vram import estimate_vram

    g = get_profile("gpu8gb")
    assert g.model == "midm-2.0-mini" and get_spec(g.model).license == "MIT"
    est = estimate_vram(g.model, "qlora", 512, 1, g.lora.r, g.lora.targets, True, g.optimizer, g.dtype)
    assert est.terms["cuda_context"] > 0 and est.total <= 6.5 * GIB
    assert est.terms["weights_other"] == 4 * 131392 * 1792 + 4 * (2 * 48 + 1) * 1792  # tied embedding + norms, fp32


def test_a_midm_shaped_model_trains_lora_on_attention_wider_than_the_model():
    """Mi:dm sets head_dim (128) apart from hidden_size / heads (1792 / 32 = 56): its q_proj is 1792 -> 4096. The tiny
    stand-in keeps that (64 -> 128) and tied embeddings; LoRA finds the four attention projections and one step of
    training changes only the adapter."""
    from conftest import tiny_model

    from course_utils.lora import attach_lora
    from course_utils.profiles import LoraSettings

    base = tiny_model("midm-2.0-mini")
    q = base.model.layers[0].self_attn.q_proj
    assert (q.in_features, q.out_features) == (64, 128) and base.lm_head.weight is base.model.embed_tokens.weight
    model = attach_lora(base, LoraSettings(8, 16, 0.0, "attention"))
    names = {n.split(".lora_A")[0].split(".")[-1] for n, p in model.named_parameters() if p.requires_grad and "lora_A" in n}
    assert names == {"q_proj", "k_proj", "v_proj", "o_proj"}
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    ids = torch.randint(0, 1000, (2, 12))
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1).step()
    assert torch.isfinite(loss)
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if not p.requires_grad)
    assert model(input_ids=ids, labels=ids).loss < loss


HUB_LOAD = """
import json, sys
from course_utils.overrides import with_model
from course_utils.profiles import get_profile
from course_utils.loading import load_profile_model
out = {}
for key in sys.argv[1:]:
    model = load_profile_model(with_model(get_profile("smoke"), key))
    out[key] = [type(model).__name__, model.config.hidden_size, model.is_loaded_in_4bit]
print(json.dumps(out))
"""


def test_the_default_and_the_original_designs_models_load_by_model_from_the_hub_cache(tmp_path):
    """``--model`` with a hub model reads ``from_pretrained(hub_id)``: from a Hugging Face cache laid out as a download
    leaves it, offline, each of gpt2, TinyLlama, Phi-2 and gpu8gb's Mi:dm loads as smoke's nf4 recipe loads it. The
    weights are tiny random stand-ins with each architecture's config (no download here)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from conftest import tiny_model

    from course_utils.models import SEED_MODELS

    keys = [*SEED_MODELS, "midm-2.0-mini"]
    assert set(SEED_MODELS) == {"gpt2", "tinyllama-1.1b", "phi-2"}
    hub = tmp_path / "hf" / "hub"
    for key in keys:
        repo = hub / ("models--" + get_spec(key).hub_id.replace("/", "--"))
        tiny_model(key).save_pretrained(repo / "snapshots" / ("0" * 40))
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text("0" * 40)
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", HUB_LOAD, *keys], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == {"gpt2": ["GPT2LMHeadModel", 64, True], "tinyllama-1.1b": ["LlamaForCausalLM", 64, True],
                      "phi-2": ["PhiForCausalLM", 64, True], "midm-2.0-mini": ["LlamaForCausalLM", 64, True]}

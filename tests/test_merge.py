import pytest
import torch
from conftest import batch_logits, max_logit_diff, randomize_lora_b, tiny_model
from transformers import AutoModelForCausalLM

from course_utils.lora import attach_lora
from course_utils.merge import GEMMA_NOTICE, folder_bytes, save_merged
from course_utils.profiles import LoraSettings, get_profile


def test_merge_matches_adapter_and_reloads_plain(tmp_path, monkeypatch, gemma_spm):
    model = randomize_lora_b(attach_lora(tiny_model("tinyllama-1.1b"), LoraSettings(8, 16, 0.0, "attention")), 1, 0.05)
    examples = [{"input_ids": list(range(5, 20)), "labels": [-100] * 15},
                {"input_ids": list(range(30, 40)), "labels": [-100] * 10}]
    ref, mask = batch_logits(model, examples, pad=0)
    with model.disable_adapter():
        base, _ = batch_logits(model, examples, pad=0)
    assert max_logit_diff(ref, base, mask) > 1e-3  # the adapter does something
    merged = model.merge_and_unload()
    assert type(merged.model.layers[0].self_attn.q_proj) is torch.nn.Linear
    assert max_logit_diff(batch_logits(merged, examples, 0)[0], ref, mask) < 1e-4
    from course_utils import gguf
    from course_utils.loading import load_tokenizer

    tok = load_tokenizer("gemma-3-270m")
    rebuild = gguf.sentencepiece_model_from_gguf  # Gemma's is the session's (its header takes 22-28 s to parse)
    monkeypatch.setattr(gguf, "sentencepiece_model_from_gguf", lambda path: gemma_spm
                        if path == gguf.gguf_path("gemma-3-270m") else rebuild(path))
    out = save_merged(merged, tok, tmp_path / "merged", base_model="gemma-3-270m")
    assert (out / "NOTICE").read_text() == GEMMA_NOTICE
    assert (out / "tokenizer.model").read_bytes() == gemma_spm  # rebuilt from the Gemma GGUF for llama.cpp
    reloaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    assert max_logit_diff(batch_logits(reloaded, examples, 0)[0], ref, mask) < 1e-4
    assert folder_bytes(out) > (out / "model.safetensors").stat().st_size
    save_merged(merged, load_tokenizer("smollm2-135m-instruct"), tmp_path / "merged",
                base_model="smollm2-135m-instruct")  # re-run replaces cleanly
    assert not (out / "NOTICE").exists() and not (out / "tokenizer.model").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged"]
    # gpu8gb's Mi:dm is MIT: the merged folder says whose copyright and permission notice travel with it
    save_merged(merged, load_tokenizer("smollm2-135m-instruct"), tmp_path / "merged", base_model="midm-2.0-mini")
    notice = (out / "NOTICE").read_text()
    assert "K-intelligence/Midm-2.0-Mini-Instruct is released under the MIT License" in notice
    assert "huggingface.co/K-intelligence/Midm-2.0-Mini-Instruct" in notice


def test_max_logit_diff_ignores_padding():
    a = torch.zeros(1, 3, 4)
    b = a.clone()
    b[0, 2] = 100.0
    assert max_logit_diff(a, b, torch.tensor([[1, 1, 0]])) == 0.0


def test_merge_of_the_embedded_model_is_equivalent_and_generates(tmp_path):
    from course_utils.inference import generate_answer
    from course_utils.loading import load_model, load_tokenizer

    TOLERANCE = 1e-3
    model = randomize_lora_b(attach_lora(load_model("smollm2-135m-instruct"), LoraSettings(8, 16, 0.0, "attention")),
                             2, 0.02)
    tok = load_tokenizer("smollm2-135m-instruct")
    examples = [{"input_ids": tok("한국의 수도는 어디인가요?").input_ids, "labels": []},
                {"input_ids": tok("The capital of Korea is").input_ids, "labels": []}]
    ref, mask = batch_logits(model, examples, tok.eos_token_id)
    merged = model.merge_and_unload()
    assert max_logit_diff(batch_logits(merged, examples, tok.eos_token_id)[0], ref, mask) < TOLERANCE
    out = save_merged(merged, tok, tmp_path / "merged", base_model="smollm2-135m-instruct")
    reloaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    assert max_logit_diff(batch_logits(reloaded, examples, tok.eos_token_id)[0], ref, mask) < TOLERANCE
    answer = generate_answer(reloaded, tok, "한국의 수도는 어디인가요?", max_new_tokens=8)
    assert isinstance(answer, str) and len(answer) > 0


# ---- merging a QLoRA adapter: equivalences measured against the floors of the same comparison ---------------------

def _eval(model, ids):
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_dequantize_layers_is_transformers_dequantize_one_layer_at_a_time(tmp_path, monkeypatch):
    """``dequantize_layers`` gives the model transformers' ``dequantize()`` gives (same weights, same logits), in the
    dtype the model was loaded in, and lets each packed 4-bit weight go as soon as its layer is replaced: at the k-th
    de-quantization, k - 1 packed weights are already freed (no gc needed). At d545876 the course de-quantized with
    transformers, which keeps every layer until the end, then cast the whole model to fp32 on the model's device."""
    import weakref

    import bitsandbytes.functional as F
    from bitsandbytes.nn import Linear4bit
    from conftest import tiny_nf4_models

    from course_utils.quantization import dequantize_layers

    nf4, reference = tiny_nf4_models(tmp_path)
    ids = torch.randint(0, 1000, (2, 16))
    packed = [weakref.ref(m.weight) for m in nf4.modules() if isinstance(m, Linear4bit)]
    alive, dequantize = [], F.dequantize_4bit
    monkeypatch.setattr(F, "dequantize_4bit", lambda *a, **k: alive.append(sum(r() is not None for r in packed))
                        or dequantize(*a, **k))
    ours = dequantize_layers(nf4)
    assert alive == list(range(len(packed), 0, -1)) and len(packed) == 14
    assert not any(isinstance(m, Linear4bit) for m in ours.modules()) and not ours.is_loaded_in_4bit
    theirs = dict(reference.named_parameters())
    for name, p in ours.named_parameters():
        assert p.dtype == torch.float32 and torch.equal(p, theirs[name]), name
    assert torch.equal(_eval(ours, ids), _eval(reference, ids))
    assert ours.to(torch.float16).dtype == torch.float16  # a plain model again: .to() is no longer refused


def test_dequantize_layers_keeps_the_dtype_the_model_trained_in(tmp_path):
    """A gpu8gb model is loaded in fp16: de-quantized, it stays fp16 (exactly the weights training computed with),
    never an fp32 copy."""
    from transformers import BitsAndBytesConfig

    from course_utils.quantization import dequantize_layers

    tiny_model("tinyllama-1.1b").save_pretrained(tmp_path)
    nf4 = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float16, quantization_config=BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float16))
    linear = {n for n, m in nf4.named_modules() if type(m).__name__ == "Linear4bit"}
    plain = dequantize_layers(nf4)
    assert linear and {plain.get_submodule(n).weight.dtype for n in linear} == {torch.float16}


def test_a_16bit_merge_moves_logits_far_beyond_the_fp32_tolerance(smollm2):
    """Why 07 checks its merge in fp32 on the CPU: merged in bf16, the same adapter moves SmolLM2's logits by more than
    0.1 against the unmerged model (the sum W + B·A is rounded to 8 significant bits), while fp32 stays under 1e-3.
    (fp16 on a CPU measured 0.23 for this model, bf16 1.43; Gemma-3 in fp16 gives NaN.)"""
    import copy

    from course_utils.loading import load_tokenizer

    tok = load_tokenizer("smollm2-135m-instruct")
    examples = [{"input_ids": tok("한국의 수도는 어디인가요? 서울입니다.").input_ids, "labels": []}]
    deltas = {}
    for dtype in (torch.float32, torch.bfloat16):
        model = randomize_lora_b(attach_lora(copy.deepcopy(smollm2).to(dtype), LoraSettings(8, 16, 0.0, "attention")),
                                 3, 0.02)
        before, mask = batch_logits(model, examples, tok.eos_token_id)
        deltas[dtype] = max_logit_diff(batch_logits(model.merge_and_unload(), examples, tok.eos_token_id)[0], before, mask)
        del model
    assert deltas[torch.float32] < 1e-3 < 0.1 < deltas[torch.bfloat16], deltas


def test_zero_adapter_merged_into_4bit_changes_weights_by_at_most_one_rerounding_step(tmp_path):
    from conftest import tiny_nf4_models

    from course_utils.profiles import LoraSettings
    from course_utils.qlora import zero_merge_change

    nf4, _ = tiny_nf4_models(tmp_path)
    _eval(nf4, torch.randint(0, 1000, (2, 16)))  # 07 computes logits before it merges
    change, step = zero_merge_change(nf4, LoraSettings(8, 16, 0.0, "all-linear"))
    assert 0 < step < 0.01  # weights of std 0.02: a re-rounding moves some of them by a fraction of a level
    assert change <= step


def test_merge_into_the_dequantized_base_reproduces_nf4_plus_adapter(tmp_path):
    """(3) vs nf4 + adapter: max |Δlogit| <= 1.5 x the floor. The floor is the larger of the 4-bit kernel's (nf4 model
    vs its de-quantized fp32 copy) and the fp32 rounding of the merge itself (same weights, merged vs not)."""
    import copy

    from conftest import tiny_nf4_models
    from peft import PeftModel

    from course_utils.lora import attach_lora
    from course_utils.profiles import LoraSettings

    nf4, dequantized = tiny_nf4_models(tmp_path / "base")
    ids = torch.randint(0, 1000, (2, 16))
    kernel_floor = (_eval(nf4, ids) - _eval(dequantized, ids)).abs().max().item()
    torch.manual_seed(0)
    adapter = randomize_lora_b(attach_lora(copy.deepcopy(nf4), LoraSettings(8, 16, 0.0, "attention")), 0, 0.05)
    adapter.save_pretrained(tmp_path / "adapter")
    reference = _eval(adapter, ids)
    unmerged = PeftModel.from_pretrained(copy.deepcopy(dequantized), str(tmp_path / "adapter"))
    unmerged_logits = _eval(unmerged, ids)
    merged = _eval(unmerged.merge_and_unload(), ids)
    merge_floor = (merged - unmerged_logits).abs().max().item()
    delta = (merged - reference).abs().max().item()
    assert (reference - _eval(nf4, ids)).abs().max() > 1e-2  # the adapter does change the output
    assert delta <= 1.5 * max(kernel_floor, merge_floor), (delta, kernel_floor, merge_floor)


# ---- what is deployed is what was evaluated: the course's merge of a QLoRA adapter ----------------------------------

@pytest.fixture(scope="module")
def qlora_adapter_dir(tmp_path_factory):
    """An adapter on smoke's nf4 base (random B, so it matters), saved as training saves one: with its metadata and
    its held-out loss measured on the nf4 model, as training measures it."""
    from course_utils.adapter import adapter_metadata, heldout_of, save_adapter
    from course_utils.loading import load_profile_model, load_tokenizer
    from course_utils.loss import heldout_loss
    from course_utils.prompts import pad_id

    smoke = get_profile("smoke")
    tok = load_tokenizer(smoke.model)
    torch.manual_seed(0)
    model = randomize_lora_b(attach_lora(load_profile_model(smoke), smoke.lora), 3, 0.02)
    meta = adapter_metadata(smoke, tok, data_source=smoke.data.source)
    _, examples = heldout_of(meta, tok)
    meta["heldout_loss_after"] = heldout_loss(model, examples, pad_id(tok))
    return save_adapter(model, tmp_path_factory.mktemp("qlora") / "adapter", metadata=meta)


@pytest.fixture(scope="module")
def default_merge(qlora_adapter_dir, tmp_path_factory):
    """``merge_adapter``'s default on the QLoRA adapter, made once for the two tests that read it: (folder, record,
    what it said)."""
    from course_utils.merge import merge_adapter

    said, folder = [], tmp_path_factory.mktemp("default-merge") / "merged"
    return folder, merge_adapter(qlora_adapter_dir, folder, progress=said.append), said


def test_the_default_merge_of_a_qlora_adapter_is_the_model_training_scored(qlora_adapter_dir, default_merge):
    """Within the floors 07 measures: nf4 vs its de-quantized copy (the kernel), and a merge's own fp32 rounding."""
    import copy

    from peft import PeftModel

    from course_utils.adapter import heldout_of, read_adapter_metadata
    from course_utils.loading import load_profile_model, load_tokenizer
    from course_utils.merge import read_merged_metadata
    from course_utils.prompts import pad_id

    smoke = get_profile("smoke")
    tok, meta = load_tokenizer(smoke.model), read_adapter_metadata(qlora_adapter_dir)
    examples, pad = heldout_of(meta, tok)[1], pad_id(tok)
    nf4 = load_profile_model(smoke)
    dequantized = copy.deepcopy(nf4).dequantize()
    kernel_floor = max_logit_diff(batch_logits(dequantized, examples, pad)[0], *batch_logits(nf4, examples, pad))
    unmerged = PeftModel.from_pretrained(dequantized, str(qlora_adapter_dir))
    reference_deq, mask = batch_logits(unmerged, examples, pad)
    merge_floor = max_logit_diff(batch_logits(unmerged.merge_and_unload(), examples, pad)[0], reference_deq, mask)
    reference, _ = batch_logits(PeftModel.from_pretrained(nf4, str(qlora_adapter_dir)), examples, pad)  # trained+scored

    folder, record, said = default_merge
    merged = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    floor = max(kernel_floor, merge_floor)
    assert 0 < floor < 1e-2
    assert max_logit_diff(batch_logits(merged, examples, pad)[0], reference, mask) <= floor * (1 + 1e-6)
    assert record == read_merged_metadata(folder) and record["merged_into"] == "dequantized"
    assert record["merged_heldout_loss"] == pytest.approx(meta["heldout_loss_after"], abs=1e-4)
    assert "nf4를 푼(de-quantized) 가중치" in said[0] and f"{meta['heldout_loss_after']:.4f}" in said[0]


def test_merging_a_qlora_adapter_into_the_original_weights_is_explicit_labelled_and_measured(qlora_adapter_dir, tmp_path):
    from course_utils.merge import merge_adapter, merge_into, read_merged_metadata

    said = []
    record = merge_adapter(qlora_adapter_dir, tmp_path / "original", into="original", progress=said.append)
    assert read_merged_metadata(tmp_path / "original")["merged_into"] == "original"
    assert record["merged_into_text"] == "원래의 전체 정밀도 가중치" and record["adapter_quantization"] == "nf4"
    assert abs(record["merged_heldout_loss"] - record["adapter_heldout_loss"]) > 1e-3  # another model, measured
    assert "다른 모델" in said[0] and f"{record['merged_heldout_loss']:.4f}" in said[0]
    with pytest.raises(ValueError, match="trained on a 'none' base, not an nf4 one"):
        merge_into({"quantization": "none"}, "dequantized")
    assert merge_into({"quantization": "none"}) == "original" and merge_into({"quantization": "nf4"}) == "dequantized"


def test_07_never_trains_again_when_05s_adapter_is_already_a_qlora_adapter(qlora_adapter_dir, tmp_path, monkeypatch):
    import re
    from pathlib import Path

    import course_utils.train
    from course_utils.qlora import qlora_adapter

    def no_training(*args, **kwargs):
        raise AssertionError("07 started a training run for an adapter that is already a QLoRA adapter")

    monkeypatch.setattr(course_utils.train, "train", no_training)
    assert qlora_adapter(get_profile("smoke"), qlora_adapter_dir, tmp_path / "07_qlora") == (qlora_adapter_dir, False)
    assert not (tmp_path / "07_qlora").exists()
    with pytest.raises(AssertionError, match="07 started a training run"):  # a full-precision adapter is trained for
        qlora_adapter(get_profile("cpu"), _fp32_adapter(tmp_path), tmp_path / "07_qlora")
    lesson = (Path(__file__).parent.parent / "notebooks" / "07_merging.py").read_text(encoding="utf-8")
    assert "qlora_adapter(" in lesson and not re.search(r"(?<![\w.])train\(", lesson)  # 07 trains only through it


def _fp32_adapter(folder):
    import json

    (folder / "fp32").mkdir()
    (folder / "fp32" / "course_adapter.json").write_text(json.dumps({"quantization": "none"}), encoding="utf-8")
    return folder / "fp32"


def test_the_merge_saves_in_the_dtype_the_adapter_trained_in_and_says_the_size(qlora_adapter_dir, default_merge,
                                                                                 tmp_path):
    """A gpu8gb adapter trained in fp16: its merged folder is fp16 (half the fp32 bytes, 2.2 GB instead of 4.4 GB for
    TinyLlama), and the merge says where and how big. At d545876 every merged model was saved in fp32."""
    import json
    import shutil

    from safetensors import safe_open

    from course_utils.merge import folder_bytes, merge_adapter

    fp16_adapter = tmp_path / "fp16-adapter"
    shutil.copytree(qlora_adapter_dir, fp16_adapter)
    meta = json.loads((fp16_adapter / "course_adapter.json").read_text(encoding="utf-8"))
    (fp16_adapter / "course_adapter.json").write_text(json.dumps({**meta, "dtype": "float16"}), encoding="utf-8")
    said = []
    merge_adapter(fp16_adapter, tmp_path / "fp16", progress=said.append)
    assert json.loads((tmp_path / "fp16" / "config.json").read_text())["dtype"] == "float16"
    with safe_open(tmp_path / "fp16" / "model.safetensors", "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}
    weights = {d: (f / "model.safetensors").stat().st_size for d, f in (("fp16", tmp_path / "fp16"),
                                                                         ("fp32", default_merge[0]))}
    assert weights["fp16"] == pytest.approx(weights["fp32"] / 2, rel=0.01)
    size = folder_bytes(tmp_path / "fp16") / 1024**3
    assert said[1] == f"저장한 병합 모델: {tmp_path / 'fp16'} ({size:.2f} GiB, 가중치 float16)"


def test_merging_on_a_gpu_computes_in_the_training_dtype(fake_cuda):
    """With CUDA the merge and its de-quantized base stay in the adapter's training dtype (never an fp32 copy on the
    card); without it, fp32 on the CPU."""
    from course_utils.merge import merge_dtype, training_dtype

    meta = {"dtype": "float16"}
    assert merge_dtype(meta) == training_dtype(meta) == torch.float16


def test_merging_without_a_gpu_computes_in_fp32():
    from course_utils.merge import merge_dtype

    assert merge_dtype({"dtype": "float16"}) == torch.float32

"""The CUDA branches a learner with an 8 GB card runs, tested on this CPU (issue 41).

No test here has a GPU. Each reproduces one kind of bug a CPU run cannot show by itself:
- the data a CUDA branch returns, run through the lesson cells that read it (``fake_cuda``: torch reports a card);
- a tensor left on the CPU while the model is elsewhere: the model on the ``meta`` device, where a forward pass with
  inputs left on the CPU raises as it would on ``cuda:0``;
- dtypes a card needs (bf16 where fp16 overflows), and what TRL casts.
Each test names the commit whose code it failed on (d545876, the main branch before issue 41).
"""
import time

import pytest
import torch
from conftest import lesson_cells

from course_utils.profiles import get_profile
from course_utils.units import GIB, MIB


class CheckpointingStub:
    """Stands in for the model in 01's CUDA measurement (``measure_cuda_peak`` is replaced, so only this is called)."""

    def activation_checkpointing_enable(self, **kwargs):
        self.checkpointing = kwargs


def test_01_reads_the_rows_the_cuda_measurement_returns(fake_cuda, monkeypatch, capsys):
    """At d545876 the CUDA branch of ``check_estimate`` returned only ``peak total`` rows: 01 looked the term up in its
    own table of CPU terms (KeyError) and took ``min()`` over activation rows there were none of (ValueError)."""
    from course_utils import vram_measure
    from course_utils.vram import estimate_vram

    peaks = {256: 1.9 * GIB, 512: 2.3 * GIB}
    monkeypatch.setattr(vram_measure, "measure_cuda_peak", lambda model, seq_len, *a, **k: {
        "before_step": GIB, "peak_allocated": int(peaks[seq_len]), "peak_reserved": int(peaks[seq_len] + GIB)})
    namespace = {"profile": get_profile("gpu8gb"), "model": CheckpointingStub(), "MIB": MIB, "GIB": GIB,
                 "time": time, "t_start": time.perf_counter(), "estimate_vram": estimate_vram}
    for cell in lesson_cells("01_vram_budgeting.py", "midm = estimate_vram(gpu.model", "rows = check_estimate(model, profile)",
                             "worst = max(rows", "cuda_outside_pytorch()", "focus = ["):
        exec(compile(cell, "01_vram_budgeting", "exec"), namespace)  # noqa: S102 (our own lesson)
    rows = namespace["rows"]
    assert [(r["seq_len"], r["term"]) for r in rows] == [(256, "peak total"), (512, "peak total")]
    assert [r["measured"] for r in rows] == [int(peaks[256]), int(peaks[512])]
    out = capsys.readouterr().out
    assert "가장 큰 오차: 한 스텝의 최대 할당 합계" in out
    assert "한 스텝의 최대 할당 합계: 추정 대 측정 오차" in out
    # the context measured on the card (8 - 6 GiB in use, 1.25 GiB of it PyTorch's) replaces the assumed 0.4 GiB
    assert "측정한 PyTorch 밖 메모리(CUDA 컨텍스트 등): 0.75 GiB" in out



@pytest.fixture
def meta_tinyllama():
    """A tiny Llama on the ``meta`` device whose forward pass checks where its inputs are (``device_checked``)."""
    from conftest import device_checked, tiny_model

    return device_checked(tiny_model("tinyllama-1.1b"))


def test_03_moves_the_tokenizer_output_to_the_model(monkeypatch, meta_tinyllama):
    """At d545876 03 tokenized onto the CPU and called ``base(**inputs)``: on a GPU, where bitsandbytes puts the 4-bit
    model on cuda:0, "Expected all tensors to be on the same device". Here the model is on ``meta`` instead."""
    from conftest import ForwardReached

    from course_utils import loading

    monkeypatch.setattr(loading, "load_profile_model", lambda profile: meta_tinyllama)
    namespace = {"profile": get_profile("smoke"), "torch": torch}
    (cell,) = lesson_cells("03_lora_config.py", 'inputs = tokenizer("')
    with pytest.raises(ForwardReached, match="meta"):
        exec(compile(cell, "03_lora_config", "exec"), namespace)  # noqa: S102 (our own lesson)


def _tokenizer():
    from course_utils.loading import load_tokenizer

    return load_tokenizer("smollm2-135m-instruct")


def _call(name, model, tokenizer):
    from course_utils import deploy, forgetting, inference, loss, memorization, preference_eval, quantization
    from course_utils.data import load_probes
    from course_utils.prompts import encode, pad_id

    record = {"instruction": "한국의 수도는?", "input": "", "output": "서울입니다."}
    calls = {
        "loss.heldout_loss": lambda: loss.heldout_loss(model, [encode(record, tokenizer, 64, "koalpaca")],
                                                       pad_id(tokenizer)),
        "loss.answer_logits": lambda: loss.answer_logits(model, [encode(record, tokenizer, 64, "koalpaca")],
                                                         pad_id(tokenizer)),
        "inference.generate_batch": lambda: inference.generate_batch(model, tokenizer, [("한국의 수도는?", "")],
                                                                     max_new_tokens=2),
        "inference.generate_answer": lambda: inference.generate_answer(model, tokenizer, "한국의 수도는?",
                                                                       max_new_tokens=2),
        "forgetting.text_losses": lambda: forgetting.text_losses(model, tokenizer, ["서울은 한국의 수도입니다."]),
        "quantization.sentence_losses": lambda: quantization.sentence_losses(model, tokenizer, ["서울은 수도입니다."]),
        "preference_eval.answer_logps": lambda: preference_eval.answer_logps(
            model, tokenizer, [{"instruction": "한국의 수도는?", "input": "", "chosen": "서울", "rejected": "부산"}],
            "koalpaca", 64),
        "memorization.answer_losses": lambda: memorization.answer_losses(model, tokenizer, load_probes()[0]),
        "deploy.first_difference": lambda: deploy.first_difference(model, tokenizer, "한국의 수도는?", "서울입니다",
                                                                    "부산입니다"),
    }
    return calls[name]()


@pytest.mark.parametrize("name", ["loss.heldout_loss", "loss.answer_logits", "inference.generate_batch",
                                  "inference.generate_answer", "forgetting.text_losses",
                                  "quantization.sentence_losses", "preference_eval.answer_logps",
                                  "memorization.answer_losses", "deploy.first_difference"])
def test_course_functions_put_their_inputs_on_the_models_device(name, meta_tinyllama):
    """Every course function that builds tensors for a model builds them on the model's device. At d545876
    ``deploy.first_difference`` appended the answer's tokens from the CPU to a prompt on the model's device."""
    from conftest import ForwardReached

    with pytest.raises(ForwardReached, match="meta"):
        _call(name, meta_tinyllama, _tokenizer())


def test_dpo_keeps_the_trainable_lora_weights_of_a_4bit_model_in_fp32(tmp_path):
    """TRL 1.16's DPOTrainer casts every trainable weight of a 4-bit model to bf16 when it is built
    (trl/trainer/dpo_trainer.py 720-729): at d545876 the course trained gpu8gb's DPO with bf16 LoRA weights, where an
    update below 1/256 of a weight rounds away. The cast is measured here on a real 4-bit model, then undone."""
    from conftest import tiny_nf4_models
    from peft import LoraConfig, get_peft_model
    from trl import DPOConfig, DPOTrainer

    from course_utils.loading import load_tokenizer
    from course_utils.preference import preference_trainer
    from course_utils.preference_data import load_pairs, trl_dataset

    tok = load_tokenizer("smollm2-135m-instruct")
    pairs = load_pairs()[:2]

    def lora_4bit():
        nf4, _ = tiny_nf4_models(tmp_path / "base")
        nf4.resize_token_embeddings(len(tok))
        return get_peft_model(nf4, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))

    model = lora_4bit()
    assert model.is_loaded_in_4bit
    trl_own = DPOTrainer(model=model, ref_model=None, train_dataset=trl_dataset(pairs, tok, "koalpaca"),
                         processing_class=tok, args=DPOConfig(output_dir=str(tmp_path / "trl"), report_to=[],
                                                              use_cpu=True))
    assert {p.dtype for p in trl_own.model.parameters() if p.requires_grad} == {torch.bfloat16}  # what TRL does
    profile = get_profile("smoke")
    trainer = preference_trainer(profile, "dpo", lora_4bit(), tok, pairs, tmp_path / "course")
    trainable = [p for p in trainer.model.parameters() if p.requires_grad]
    assert trainable and {p.dtype for p in trainable} == {torch.float32}


@pytest.mark.parametrize("model", ["gemma-3-270m", "phi-2"])
def test_a_model_that_overflows_fp16_trains_in_bf16_on_a_card_with_bf16(model, fake_cuda, monkeypatch, tmp_path):
    """At d545876 ``--model gemma-3-270m`` (or phi-2) with gpu8gb trained in fp16: Gemma-3's activations pass fp16's
    65504 (transformers#36822), Phi-2's card warns of its fp16 attention. Now bf16 on an Ampere card, checked where
    the run loads its model (the load is stopped there)."""
    from course_utils import loading
    from course_utils.overrides import with_model
    from course_utils.train import prepare_run
    from course_utils.trainer import recipe_arguments

    class Loaded(Exception):
        pass

    def load(profile):
        raise Loaded(profile.dtype)

    tok = loading.load_tokenizer("smollm2-135m-instruct")  # phi-2's own comes from the hub
    monkeypatch.setattr(loading, "load_profile_model", load)
    monkeypatch.setattr(loading, "load_tokenizer", lambda key: tok)
    monkeypatch.setattr("course_utils.train.prepare_data", lambda profile, tokenizer: ([], [], [], None))
    profile = with_model(get_profile("gpu8gb"), model)
    with pytest.raises(Loaded, match="bfloat16"):
        prepare_run(profile, tmp_path / "run")
    from course_utils.hardware import for_this_card

    args = recipe_arguments(for_this_card(profile))
    assert (args["bf16"], args["fp16"]) == (True, False)
    # the original design's fp16 run of a model that runs in fp16 keeps fp16; gpu8gb's own bf16 stays bf16
    from course_utils.overrides import with_overrides

    assert for_this_card(with_overrides(with_model(get_profile("gpu8gb"), "tinyllama-1.1b"),
                                        [("dtype", "float16")])).dtype == "float16"
    assert for_this_card(get_profile("gpu8gb")).dtype == "bfloat16"


def test_gpu8gb_computes_in_fp16_with_a_line_that_says_so_on_a_card_without_bf16(fake_cuda, capsys):
    """gpu8gb is bf16 (Mi:dm 2.0 Mini is published in bf16 and an RTX 3070 computes it); a T4 (7.5) has no native
    bf16, so the recipe runs in fp16 there, for a model not known to overflow it, and one printed line says so and what
    to do if the loss becomes nan. The take-home scripts make the same choice (tests/test_scripts.py)."""
    from course_utils.hardware import for_this_card
    from course_utils.trainer import recipe_arguments

    fake_cuda.bf16 = False
    profile = for_this_card(get_profile("gpu8gb"))
    assert profile.dtype == "float16" and profile.model == "midm-2.0-mini"
    said = capsys.readouterr().out
    assert "bf16을 직접 계산하지 못해" in said and "fp16으로 계산" in said and "--set dtype=float32" in said
    args = recipe_arguments(profile)
    assert (args["bf16"], args["fp16"]) == (False, True)
    fake_cuda.bf16 = True
    assert for_this_card(get_profile("gpu8gb")).dtype == "bfloat16" and capsys.readouterr().out == ""


def test_a_model_that_overflows_fp16_is_refused_before_loading_on_a_card_without_bf16(fake_cuda, tmp_path):
    """A T4 (compute capability 7.5) has no native bf16: gemma-3-270m on gpu8gb stops before anything is read or written,
    and the message says what to do."""
    from course_utils.overrides import with_model
    from course_utils.profiles import ProfileError
    from course_utils.train import prepare_run

    fake_cuda.bf16 = False
    with pytest.raises(ProfileError, match=r"(?s)fp16.*bf16.*--model tinyllama-1.1b.*--set dtype=float32"):
        prepare_run(with_model(get_profile("gpu8gb"), "gemma-3-270m"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_cpu_profiles_4bit_model_stays_on_the_cpu_on_a_machine_with_a_gpu(fake_cuda, monkeypatch):
    """bitsandbytes puts a 4-bit model on cuda:0 whenever CUDA is available (transformers' quantizer_bnb_4bit
    ``update_device_map``), while a ``cpu`` profile's Trainer runs on the CPU (``use_cpu``): at d545876 smoke on a
    GPU machine mixed the two devices. A gpu8gb model is still left where transformers puts it; a plain (LoRA, not
    QLoRA) model of a cuda profile goes to the GPU (at d545876 it computed the loss before training on the CPU)."""
    from transformers import AutoModelForCausalLM

    from course_utils.loading import load_profile_model

    asked = []

    def from_pretrained(source, **kwargs):
        asked.append(kwargs.get("device_map"))
        raise RuntimeError("loaded")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", from_pretrained)
    monkeypatch.setattr("course_utils.loading._from_hub_or_explain", lambda spec, loader: loader("source"))
    import dataclasses

    lora_on_gpu = dataclasses.replace(get_profile("gpu8gb"), quantization="none")  # plain LoRA on the card
    for profile in (get_profile("smoke"), get_profile("gpu8gb"), lora_on_gpu, get_profile("cpu")):
        with pytest.raises(RuntimeError, match="loaded"):
            load_profile_model(profile)
    assert asked == [{"": "cpu"}, None, {"": "cuda"}, None]


def test_to_device_moves_a_batch_to_the_models_device(meta_tinyllama):
    from course_utils.loading import load_tokenizer
    from course_utils.memory import model_device, to_device

    encoded = load_tokenizer("smollm2-135m-instruct")("서울", return_tensors="pt")
    assert model_device(meta_tinyllama).type == "meta"
    assert to_device(encoded, meta_tinyllama)["input_ids"].device.type == "meta"
    moved = to_device({"input_ids": encoded["input_ids"], "note": "kept"}, meta_tinyllama)
    assert moved["input_ids"].device.type == "meta" and moved["note"] == "kept"
    assert to_device(encoded["input_ids"], meta_tinyllama).device.type == "meta"


def test_a_model_trained_under_mixed_precision_gets_its_own_forward_back_and_is_freed_by_del():
    """accelerate wraps ``forward`` in autocast for fp16/bf16 training and stores the wrapper on the model: every later
    evaluation ran under autocast, and the model lived on in a reference cycle after ``del`` (what 09's trials left
    on the card at d545876). bf16 autocast on this CPU stands in for the GPU's fp16."""
    import gc
    import weakref

    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from conftest import tiny_model

    from course_utils.memory import drop_autocast_wrapper

    AcceleratorState._reset_state(reset_partial_state=True)  # a Trainer of an earlier test set it up for fp32

    model, ids = tiny_model("tinyllama-1.1b"), torch.randint(0, 1000, (1, 8))
    with torch.no_grad():
        before = model(input_ids=ids).logits
        accelerator = Accelerator(mixed_precision="bf16", cpu=True)
        model = accelerator.prepare_model(model)
        accelerator._models.clear()  # the Trainer's accelerator goes with the Trainer
        assert not torch.equal(model(input_ids=ids).logits, before)  # computed under bf16 autocast
    gc.disable()
    try:
        assert drop_autocast_wrapper(model)
        with torch.no_grad():
            assert torch.equal(model(input_ids=ids).logits, before)  # as before training
        alive = weakref.ref(model)
        del model
        assert alive() is None
    finally:
        gc.enable()
        AcceleratorState._reset_state(reset_partial_state=True)  # later Trainers set up their own


def test_a_model_trained_with_an_8bit_optimizer_is_freed_whole_by_free(tmp_path):
    """transformers' Trainer registers each embedding layer with bitsandbytes' process-wide GlobalOptimManager when the
    optimizer is 8-bit (gpu8gb's paged_adamw_8bit, smoke's adamw_8bit), and nothing ever removes it: at c0357b3 every
    training run left its embedding weight alive after ``del``/``free()`` (found by the residency records of 10 on
    smoke: the checkpoint file stayed mapped). ``free()`` now drops the entries of freed models, and only those."""
    import weakref

    import bitsandbytes as bnb
    from conftest import tiny_model
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    from course_utils.memory import free

    def trained():
        model = tiny_model("tinyllama-1.1b")
        ids = torch.randint(0, 1000, (4, 8)).tolist()
        data = Dataset.from_dict({"input_ids": ids, "labels": ids})
        args = TrainingArguments(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=2,
                                 optim="adamw_bnb_8bit", use_cpu=True, report_to=[], save_strategy="no",
                                 disable_tqdm=True, learning_rate=1e-3)
        Trainer(model=model, args=args, train_dataset=data).train()
        return model

    manager = bnb.optim.GlobalOptimManager.get_instance()
    kept = trained()
    gone = trained()
    embedding, kept_embedding = weakref.ref(gone.get_input_embeddings()), kept.get_input_embeddings()
    assert {id(t[0]) for t in manager.module_weight_config_triple} >= {id(embedding()), id(kept_embedding)}
    del gone
    free()
    assert embedding() is None  # at c0357b3: alive, held by the manager
    assert any(t[0] is kept_embedding for t in manager.module_weight_config_triple)  # a live model keeps its override
    del kept, kept_embedding
    free()
    assert not manager.module_weight_config_triple


def test_a_stage_reports_its_own_peak_beside_the_card_with_a_verdict(fake_cuda):
    """05, 07 and 10 print each stage's peak: the statistics reset on entry (at d545876 05 printed one
    max_memory_allocated for the whole process, without the allocator's reserve or the CUDA context)."""
    from course_utils.memory import Stage

    with Stage("학습") as stage:
        pass
    assert fake_cuda.resets == 1
    m = stage.memory
    assert (m.peak_reserved, m.outside, m.card, m.budget) == (3.5 * GIB, 0.75 * GIB, 8 * GIB, 8 * GIB)
    assert stage.memory.verdict() == ("학습: 최대 예약(max_memory_reserved) 3.50 GiB (할당 3.00 GiB) + PyTorch 밖(CUDA "
                                      "컨텍스트 등) 0.75 GiB = 4.25 GiB, 기준 8.00 GiB (카드 8.00 GiB)에 들어갑니다 "
                                      "(남는 메모리 3.75 GiB)")
    fake_cuda.max_reserved, fake_cuda.total, fake_cuda.free = int(7.6 * GIB), 80 * GIB, int(78.15 * GIB)
    with Stage("DPO") as stage:  # an 80 GiB card is judged against the learner's 8 GiB
        pass
    assert stage.memory.verdict().endswith("= 8.20 GiB, 기준 8.00 GiB (카드 80.00 GiB)에 들어가지 않습니다: 0.20 GiB가 넘칩니다")


def test_a_stage_on_a_cpu_says_what_it_would_print_on_a_gpu():
    from course_utils.memory import Stage

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with Stage("학습") as stage:
        pass
    assert stage.memory.verdict().startswith("학습: GPU가 없어 GPU 메모리를 재지 않았습니다. GPU에서는 여기에")


def test_a_notebook_on_a_card_without_bf16_says_fp16_once_and_not_that_the_model_overflows(fake_cuda, monkeypatch,
                                                                                            capsys):
    """gpu8gb on a T4: ``notebook.setup`` runs in fp16 and the learner reads ``for_this_card``'s one line. The line
    written for Gemma and Phi-2 (fp16 -> bf16, "overflows") stays for that case only: at 0240b09 it also claimed that
    Mi:dm overflows fp16."""
    from course_utils.notebook import setup

    fake_cuda.bf16 = False
    monkeypatch.setenv("COURSE_PROFILE", "gpu8gb")
    monkeypatch.delenv("COURSE_RESIDENCY_LOG", raising=False)
    profile = setup()
    out = capsys.readouterr().out
    assert profile.dtype == "float16" and out.count("fp16으로 계산") == 1 and "넘치므로" not in out


def test_05s_recipe_cell_on_a_card_without_bf16_names_no_change_it_already_has(fake_cuda, monkeypatch, tmp_path):
    """On a T4 05's cell computes fp16 itself (``profile.torch_dtype`` after ``for_this_card``): ``with_profile`` has
    nothing to change and says so, instead of printing "fp16: True -> True" and "bf16: False -> False". (The
    arguments stand in as dicts: TrainingArguments would select the CUDA device this CPU build does not have.)"""
    from course_utils import trainer
    from course_utils.hardware import for_this_card
    from course_utils.trainer import recipe_arguments, with_profile

    class Args:
        def __init__(self, values):
            self.values, self.output_dir = values, str(tmp_path)

        def to_dict(self):
            return dict(self.values)

    monkeypatch.setattr(trainer, "training_arguments", lambda p, out: Args(recipe_arguments(p)))
    fake_cuda.bf16 = False
    profile = for_this_card(get_profile("gpu8gb"))
    cell = Args(recipe_arguments(profile))
    assert (cell.values["fp16"], cell.values["bf16"]) == (True, False)
    assert recipe_arguments(get_profile("gpu8gb"))["bf16"] is True  # the recipe as written: bf16
    said = []
    assert with_profile(cell, profile, said.append) is cell
    assert said == ["프로필 gpu8gb: 이 레시피를 그대로 씁니다."]

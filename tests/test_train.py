import json
import math
import re

import pytest
import torch
from conftest import fast_smoke, smoke_profiles

from course_utils.profiles import get_profile
from course_utils.runs import last_complete_checkpoint
from course_utils.train import train


@pytest.fixture(scope="module")
def smoke():
    return fast_smoke()  # files, schedules and logs; the recipe (nf4, accumulation, ...) is tested further down


@pytest.fixture(scope="module")
def uninterrupted(smoke, tmp_path_factory):
    return train(smoke, tmp_path_factory.mktemp("full"), progress=lambda m: None)


def test_training_lowers_heldout_loss_and_saves_peft_adapter(uninterrupted, smoke):
    r = uninterrupted
    assert r.global_step == smoke.train.max_steps
    assert math.isfinite(r.heldout_loss_after) and r.heldout_loss_after < r.heldout_loss_before
    files = sorted(p.name for p in r.adapter_dir.iterdir())
    assert {"adapter_config.json", "adapter_model.safetensors", "course_adapter.json"} <= set(files)
    meta = json.loads((r.adapter_dir / "course_adapter.json").read_text())
    assert meta["base_model"] == smoke.model and meta["base_weights"].startswith("sha256:")
    assert meta["template"] == "koalpaca" and meta["max_length"] == smoke.seq_len and meta["profile"] == "smoke"
    assert r.tokens_per_second > 0 and r.peak_memory_bytes > 0


def test_stopped_then_resumed_run_matches_uninterrupted(uninterrupted, smoke, tmp_path, monkeypatch):
    import course_utils.loss
    import course_utils.train as course_train
    from course_utils.prompts import prepare_data

    first = train(smoke, tmp_path, stop_after=smoke.train.save_steps, progress=lambda m: None)
    assert first.global_step == smoke.train.save_steps
    assert not (tmp_path / "adapter").exists()  # not finished: no adapter yet
    assert first.heldout_loss_after is None and first.test_losses is None  # and no test loss: nothing to report
    assert last_complete_checkpoint(tmp_path / "checkpoints").name == f"checkpoint-{smoke.train.save_steps}"
    test = prepare_data(smoke, uninterrupted.tokenizer)[2]
    passes = []  # passes over the test records while resuming: the loss before training is read from the run folder
    for module in (course_utils.loss, course_train):
        measure = module.record_losses
        monkeypatch.setattr(module, "record_losses", lambda m, examples, *a, measure=measure, **k: (
            passes.append(examples == test), measure(m, examples, *a, **k))[1])
    resumed = train(smoke, tmp_path, resume=True, progress=lambda m: None)
    assert passes.count(True) == 1  # after training only
    assert resumed.heldout_loss_before == first.heldout_loss_before == uninterrupted.heldout_loss_before
    assert len(resumed.test_losses["base"]) == len(resumed.test_losses["adapter"]) == len(test)
    assert course_utils.loss.total_loss(resumed.test_losses["adapter"]) == resumed.heldout_loss_after
    assert resumed.resumed_from.endswith(f"checkpoint-{smoke.train.save_steps}")
    assert resumed.global_step == uninterrupted.global_step
    steps = [e["step"] for e in resumed.log_history if "loss" in e]
    assert steps == list(range(1, smoke.train.max_steps + 1))  # every optimizer step happened exactly once
    assert math.isfinite(resumed.heldout_loss_after)
    assert resumed.heldout_loss_after == pytest.approx(uninterrupted.heldout_loss_after, abs=0.02)


def test_saved_adapter_reloads_with_the_same_logits(uninterrupted, smoke):
    from peft import PeftModel

    from course_utils.loading import load_model

    reloaded = PeftModel.from_pretrained(load_model(smoke.model), uninterrupted.adapter_dir)
    ids = torch.tensor([[1, 2, 3, 400, 500, 600]])
    uninterrupted.model.eval()
    reloaded.eval()
    with torch.no_grad():
        a, b = uninterrupted.model(input_ids=ids).logits, reloaded(input_ids=ids).logits
    assert (a - b).abs().max().item() < 1e-5


def test_heldout_is_evaluated_during_training_and_the_best_checkpoint_becomes_the_adapter(uninterrupted, smoke):
    evals = {e["step"]: e["eval_loss"] for e in uninterrupted.log_history if "eval_loss" in e}
    assert sorted(evals) == list(range(smoke.train.eval_steps, smoke.train.max_steps + 1, smoke.train.eval_steps))
    best = min(evals, key=evals.get)
    assert uninterrupted.best_step == best
    from course_utils.loss import heldout_loss
    from course_utils.prompts import pad_id, prepare_data

    _, dev, test, _ = prepare_data(smoke, uninterrupted.tokenizer)
    pad = pad_id(uninterrupted.tokenizer)
    assert heldout_loss(uninterrupted.model, dev, pad) == pytest.approx(evals[best], abs=1e-5)  # that checkpoint
    assert uninterrupted.heldout_loss_after == pytest.approx(heldout_loss(uninterrupted.model, test, pad), abs=1e-6)
    assert uninterrupted.heldout_loss_after != pytest.approx(evals[best], abs=1e-6)  # reported on test, not on dev
    # 05's report adds up these per-record test losses per kind: they must be the records report_for reads, in order
    from course_utils.evaluation import heldout_set, per_kind_loss
    from course_utils.loss import record_losses

    records, examples = heldout_set(smoke, uninterrupted.tokenizer, "test")
    assert examples == test
    with uninterrupted.model.disable_adapter():
        base = record_losses(uninterrupted.model, examples, pad)
    for side, measured in (("base", base), ("adapter", record_losses(uninterrupted.model, examples, pad))):
        kept = per_kind_loss(records, uninterrupted.test_losses[side])
        assert kept.keys() == per_kind_loss(records, measured).keys()
        for kind, (n, tokens, loss) in per_kind_loss(records, measured).items():
            assert kept[kind][:2] == (n, tokens) and kept[kind][2] == pytest.approx(loss, rel=1e-6)
    meta = json.loads((uninterrupted.adapter_dir / "course_adapter.json").read_text())
    assert meta["best_step"] == best and meta["global_step"] == smoke.train.max_steps


def test_tensorboard_event_file_holds_the_training_scalars(uninterrupted):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folder = uninterrupted.adapter_dir.parent / "tensorboard"
    events = EventAccumulator(str(folder))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "eval/loss", "train/learning_rate", "train/grad_norm"} <= tags, tags
    # TensorBoard stores float32: the same values to float32's precision (rounding both to 6 decimals can differ)
    assert [s.value for s in events.Scalars("eval/loss")] == pytest.approx(
        [e["eval_loss"] for e in uninterrupted.log_history if "eval_loss" in e], rel=1e-6)


def _files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_second_run_into_the_same_folder_refuses_and_changes_nothing(tmp_path, capsys):
    from course_utils.train import main as cli

    out, fast = tmp_path / "run", ["--profiles", str(smoke_profiles(tmp_path)), "--profile", "smoke"]
    cli([*fast, "--output", str(out)])
    before = _files(out)
    assert any(k.startswith("checkpoints/") for k in before) and "adapter/adapter_model.safetensors" in before
    with pytest.raises(SystemExit) as refused:
        cli([*fast, "--output", str(out)])
    message = str(refused.value.code)
    assert message.startswith(f"error: {out}에 이전 학습이 있습니다: 스텝 4까지의 체크포인트(")
    assert "스텝 4에서 끝난 어댑터" in message and "아무것도 바꾸지 않았습니다" in message
    assert "--resume" in message and "다른 --output" in message and "--overwrite" in message
    assert len(message.splitlines()) == 1
    assert _files(out) == before  # byte-identical
    capsys.readouterr()
    cli([*fast, "--output", str(out), "--overwrite"])
    said = capsys.readouterr().out
    moved = [p for p in tmp_path.iterdir() if p.name.startswith("run.previous-")]
    assert len(moved) == 1 and f"을 {moved[0]}로 옮겼습니다" in said
    assert _files(moved[0]) == before  # the old run, whole, under the reported name
    assert (out / "adapter" / "adapter_model.safetensors").exists()


def test_a_nan_loss_stops_the_run_at_that_step_with_the_fix(tmp_path):
    from transformers import TrainerCallback

    from course_utils.monitoring import TrainingDiverged

    class PoisonAfterStep1(TrainerCallback):  # what an fp16 overflow does to the weights
        def on_step_end(self, args, state, control, model=None, **kw):
            if state.global_step == 1:
                with torch.no_grad():
                    next(p for n, p in model.named_parameters() if "lora_A" in n).fill_(float("nan"))

    with pytest.raises(TrainingDiverged, match=r"학습 손실\(training loss\)이 스텝 2에서 nan입니다: .* "
                                               r"train\.learning_rate\(지금 0\.001\)를 낮춘"):
        train(fast_smoke(), tmp_path, callbacks=[PoisonAfterStep1()], progress=lambda m: None)
    assert not (tmp_path / "adapter").exists()


def test_a_koalpaca_file_source_is_scored_on_records_split_off_from_that_file(tmp_path):
    """data.source = a KoAlpaca v1.0 file: the held-out loss is measured on a seeded split of that file, not on the
    bundled held-out set."""
    import dataclasses

    from course_utils.data import load_source
    from course_utils.loss import heldout_loss
    from course_utils.prompts import encode, pad_id
    from course_utils.splits import load_heldout, split_source

    records = [{k: r[k] for k in ("instruction", "input", "output")} for r in load_source("bundled")[100:130]]
    path = tmp_path / "ko_alpaca_data.json"
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    smoke = fast_smoke()
    p = dataclasses.replace(smoke, data=dataclasses.replace(smoke.data, source=str(path), max_records=None),
                            train=dataclasses.replace(smoke.train, heldout_records=6))
    result = train(p, tmp_path / "run", progress=lambda m: None)
    assert result.data_report.source == str(path) and result.data_report.kept == 18
    _, _, held, _ = split_source(str(path), 6, p.train.seed)  # test: what is reported
    assert {r["instruction"] for r in held} <= {r["instruction"] for r in records}
    assert not {r["instruction"] for r in held} & {r["instruction"] for r in load_heldout("dev") + load_heldout("test")}
    tok = result.tokenizer
    examples = [encode(r, tok, p.seq_len) for r in held]
    with result.model.disable_adapter():  # the base model
        assert heldout_loss(result.model, examples, pad_id(tok)) == pytest.approx(result.heldout_loss_before, rel=1e-6)
    assert heldout_loss(result.model, examples, pad_id(tok)) == pytest.approx(result.heldout_loss_after, rel=1e-6)


# ---- gpu8gb's recipe on its CPU stand-in (smoke): nf4 base, batch 1 x grad-accum, checkpointing, 8-bit AdamW,
# epochs, a KoAlpaca-format file with its own held-out split. Smaller than smoke's own run (4 records, 2 steps).

@pytest.fixture(scope="module")
def recipe():
    import dataclasses

    s = get_profile("smoke")
    return dataclasses.replace(s, data=dataclasses.replace(s.data, max_records=4), train=dataclasses.replace(
        s.train, heldout_records=2, eval_steps=1, save_steps=1))


@pytest.fixture(scope="module")
def recipe_run(recipe, tmp_path_factory):
    return train(recipe, tmp_path_factory.mktemp("recipe"), progress=lambda m: None)


def test_the_gpu8gb_recipe_runs_on_its_cpu_stand_in(recipe, recipe_run):
    from bitsandbytes.nn import Linear4bit

    from course_utils.timing import planned_steps

    r = recipe_run
    base = r.model.get_base_model()
    q_proj = base.model.layers[0].self_attn.q_proj
    assert isinstance(q_proj.base_layer, Linear4bit) and q_proj.base_layer.weight.quant_state.quant_type == "nf4"
    assert base.is_activation_checkpointing  # switched on by the Trainer (TrainingArguments.activation_checkpointing)
    assert r.data_report.source == recipe.data.source == "bundled:koalpaca_v1_1_format.jsonl"
    assert r.data_report.kept == 4 and r.global_step == planned_steps(recipe, 4) == 2  # 4 records / (1 x 2), 1 epoch
    state = torch.load(next((r.adapter_dir.parent / "checkpoints").glob("checkpoint-*")) / "optimizer.pt",
                       weights_only=False)["state"]
    # bitsandbytes' 8-bit AdamW: uint8 moments with their quantization maps; tensors under 4,096 values (a k_proj's
    # lora_B here) keep 32-bit moments, as the library decides
    quantized = [q for s in state.values() if "qmap1" in (q := s.get("__bnb_optimizer_quant_state__", {}))]
    assert len(quantized) >= len(state) // 2
    assert all(q["state1"].dtype == q["state2"].dtype == torch.uint8 for q in quantized)
    meta = json.loads((r.adapter_dir / "course_adapter.json").read_text(encoding="utf-8"))
    assert (meta["quantization"], meta["dtype"]) == ("nf4", "float32")
    assert meta["heldout"] == {"source": recipe.data.source, "records": 2, "seed": recipe.train.seed, "on_invalid": "skip",
                               "split": "test"}
    assert math.isfinite(r.heldout_loss_after)


def test_the_recipe_stopped_and_resumed_ends_where_the_uninterrupted_run_ends(recipe, recipe_run, tmp_path):
    """Ctrl-C / a crash and --resume on the learners' recipe: the nf4 model, the 8-bit optimizer's state and the
    data order come back from the checkpoint."""
    first = train(recipe, tmp_path, stop_after=1, progress=lambda m: None)
    assert first.global_step == 1 and not (tmp_path / "adapter").exists()
    resumed = train(recipe, tmp_path, resume=True, progress=lambda m: None)
    assert resumed.resumed_from.endswith("checkpoint-1") and resumed.global_step == recipe_run.global_step
    assert resumed.heldout_loss_after == pytest.approx(recipe_run.heldout_loss_after, abs=1e-4)


def wandb_offline_summary(run_dir) -> dict:
    """The summary of an offline W&B run, read from its .wandb log: LevelDB-style 32 KiB blocks of records (4-byte
    checksum, 2-byte length, 1-byte type: full / first / middle / last) after a 7-byte ':W&B' header, each record a
    wandb ``Record`` protobuf. wandb 0.31 has no Python reader for it (``wandb sync`` reads it in its Go core)."""
    import json
    from pathlib import Path

    from wandb.proto import wandb_internal_pb2 as pb

    data = next(Path(run_dir).glob("*.wandb")).read_bytes()
    assert data[:4] == b":W&B"
    pos, chunks, summary = 7, b"", {}
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a record header is padding
            pos += 32768 - pos % 32768
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        payload, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        chunks = payload if kind in (1, 2) else chunks + payload
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(chunks)
            if record.WhichOneof("record_type") == "summary":
                summary.update({"/".join(u.nested_key) or u.key: json.loads(u.value_json) for u in record.summary.update})
    return summary


def test_wandb_offline_logs_the_training_curves(tmp_path, monkeypatch):
    """train.report_to: [tensorboard, wandb] with WANDB_MODE=offline: the offline run in <output>/wandb holds the
    loss, held-out loss, learning rate and gradient norm (the same values TensorBoard gets)."""
    pytest.importorskip("wandb")
    from course_utils.overrides import with_overrides

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    profile = with_overrides(fast_smoke(), [("train.report_to", ["tensorboard", "wandb"])])
    result = train(profile, tmp_path / "run", progress=lambda m: None)
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    summary = wandb_offline_summary(runs[0])
    for key in ("train/loss", "eval/loss", "train/learning_rate", "train/grad_norm"):
        assert key in summary, sorted(summary)
    last = [e for e in result.log_history if "eval_loss" in e][-1]
    assert summary["eval/loss"] == pytest.approx(last["eval_loss"], rel=1e-9)
    assert summary["train/global_step"] == result.global_step
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))


def test_the_recipe_trains_on_packed_rows(recipe, tmp_path):
    """train.packing: the gpu8gb stand-in's records go into rows of up to seq_len, the Trainer steps over rows, and the
    answer-token loss (positions restart per record, no 2D mask) trains like the unpacked one."""
    import dataclasses

    from course_utils.timing import planned_steps

    packed = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, packing=True))
    said = []
    r = train(packed, tmp_path / "packed", progress=said.append)
    rows = int(re.search(r"\((\d+)행으로 패킹\)", next(line for line in said if "행으로 패킹" in line)).group(1))
    assert 1 <= rows < r.data_report.kept == 4  # 4 short records fit in fewer rows
    assert r.global_step == planned_steps(packed, rows)
    assert math.isfinite(r.heldout_loss_after) and r.heldout_loss_after < r.heldout_loss_before
    assert (r.adapter_dir / "adapter_model.safetensors").exists()


def test_a_run_resumed_in_its_second_epoch_trains_on_the_uninterrupted_order(tmp_path):
    """A run stopped in its second epoch and resumed ends with the uninterrupted run's weights and losses, step by step.
    With ``train_sampling_strategy="group_by_length"`` (the course's order until 2026-12-06) it did not: transformers
    5.23 draws the length-grouped order from torch's global random state, re-seeded when a resumed run starts, so the
    resumed epoch ran in another order (measured here: step 5's loss 16.03 instead of 16.83, weights 7e-4 apart)."""
    import dataclasses

    from safetensors.torch import load_file

    p = fast_smoke(max_steps=7, save_steps=4, eval_steps=4, logging_steps=1, heldout_records=2)
    p = dataclasses.replace(p, data=dataclasses.replace(p.data, max_records=6))  # 3 steps an epoch: step 5 is epoch 2
    whole = train(p, tmp_path / "whole", progress=lambda m: None)
    train(p, tmp_path / "stopped", stop_after=4, progress=lambda m: None)
    resumed = train(p, tmp_path / "stopped", resume=True, progress=lambda m: None)
    assert resumed.resumed_from.endswith("checkpoint-4")
    losses = [[(e["step"], e["loss"]) for e in r.log_history if "loss" in e] for r in (whole, resumed)]
    assert losses[0] == losses[1] and len(losses[0]) == 7
    a, b = (load_file(r.adapter_dir.parent / "checkpoints" / "checkpoint-7" / "adapter_model.safetensors")
            for r in (whole, resumed))
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6


def test_ensure_adapter_trains_in_a_new_folder_and_moves_an_unfinished_run_aside(tmp_path):
    """06 and 07 call ensure_adapter when 05 has not run (a learner's fresh copy of 06 has no outputs/): it must train,
    not ask for a checkpoint to resume, and keep what an interrupted run left."""
    from course_utils.ensure import ensure_adapter

    fresh = ensure_adapter(fast_smoke(), tmp_path / "fresh", progress=lambda m: None)
    assert json.loads((fresh / "course_adapter.json").read_text())["global_step"] == fast_smoke().train.max_steps

    unfinished = tmp_path / "unfinished"
    (unfinished / "checkpoints" / "checkpoint-1").mkdir(parents=True)  # no weights: not a complete checkpoint
    messages = []
    adapter = ensure_adapter(fast_smoke(), unfinished, progress=messages.append)
    assert (adapter / "course_adapter.json").exists()
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("unfinished.previous-")]
    assert len(kept) == 1 and (kept[0] / "checkpoints" / "checkpoint-1").is_dir()
    assert any("옮겼습니다" in m for m in messages)


def test_ensure_adapter_continues_an_interrupted_run_from_its_checkpoint(smoke, tmp_path):
    from course_utils.ensure import ensure_adapter

    train(smoke, tmp_path, stop_after=smoke.train.save_steps, progress=lambda m: None)
    messages = []
    adapter = ensure_adapter(smoke, tmp_path, progress=messages.append)
    assert json.loads((adapter / "course_adapter.json").read_text())["global_step"] == smoke.train.max_steps
    assert any(f"checkpoint-{smoke.train.save_steps}에서 이어 갑니다" in m for m in messages)

"""Choose on dev, report on test (issue 43): the bundled held-out file says which split each record is in, the two
splits are disjoint and hold every kind, and a choice made on dev does not move when the test split changes.

The last point is the test that fails if choosing code reads the test split: the test records' answers are replaced
by gibberish, and the checkpoint kept by training (``load_best_model_at_end`` on ``eval_dataset``) and the trials of
09's search (``tuning.search``: Optuna's pruner and objective) must come out the same, to the digit, while the
reported test loss changes (so the poison did reach what is reported)."""
from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import pytest
from conftest import fast_smoke

from course_utils import data, splits
from course_utils import train as course_train
from course_utils.data import BUNDLED_HELDOUT, PROBES, load_source
from course_utils.splits import load_heldout, split_source

ROOT = Path(__file__).resolve().parent.parent


def test_every_bundled_heldout_record_and_probe_names_its_split():
    held = [json.loads(line) for line in BUNDLED_HELDOUT.read_text("utf-8").splitlines() if line.strip()]
    assert {r["split"] for r in held} == {"dev", "test"}
    dev, test = load_heldout("dev"), load_heldout("test")
    assert len(dev) + len(test) == len(held) and abs(len(dev) - len(test)) <= 1
    assert {r["kind"] for r in dev} == {r["kind"] for r in test} == {r["kind"] for r in held}
    keys = lambda rs: {(r["instruction"], r["input"]) for r in rs}  # noqa: E731
    assert not keys(dev) & keys(test) and not (keys(dev) | keys(test)) & keys(load_source("bundled"))
    assert {json.loads(line)["split"] for line in PROBES.read_text("utf-8").splitlines() if line.strip()} == {"test"}
    with pytest.raises(ValueError, match="dev"):
        load_heldout("train")


def test_a_split_value_that_is_not_one_of_the_three_names_the_record(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps({"instruction": "q", "output": "a", "split": "valid"}) + "\n", encoding="utf-8")
    with pytest.raises(data.DataError, match=r"line 1, field 'split': 'valid'.*train, dev, test"):
        data.read_records(path)


def test_a_seeded_source_is_split_three_ways_without_overlap():
    train, dev, test, _ = split_source("bundled:koalpaca_v1_1_format.jsonl", 5, 7)
    keys = [{r["instruction"] for r in part} for part in (train, dev, test)]
    assert len(keys[1]) == len(keys[2]) == 5 and not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    assert split_source("bundled:koalpaca_v1_1_format.jsonl", 5, 7)[2] == test  # the same seed, the same split
    with pytest.raises(data.DataError, match="검증 세트와 시험 세트"):
        split_source("bundled:koalpaca_v1_1_format.jsonl", 40, 7)


def _poison_test_split(monkeypatch):
    """The bundled test records with every answer replaced; dev and train untouched."""
    real = splits.load_heldout

    def poisoned(split):
        records = real(split)
        return [{**r, "output": "zq " * 20} for r in records] if split == "test" else records

    monkeypatch.setattr(splits, "load_heldout", poisoned)


def _bundled_smoke(**train):
    p = fast_smoke(**train)
    return dataclasses.replace(p, data=dataclasses.replace(p.data, source="bundled", max_records=8))


def test_the_checkpoint_training_keeps_does_not_depend_on_the_test_split(tmp_path, monkeypatch):
    from course_utils.train import train

    p = _bundled_smoke(max_steps=4, eval_steps=1, save_steps=1)
    quiet = lambda m: None  # noqa: E731
    clean = train(p, tmp_path / "clean", progress=quiet)
    _poison_test_split(monkeypatch)
    poisoned = train(p, tmp_path / "poisoned", progress=quiet)
    devs = [[e["eval_loss"] for e in r.log_history if "eval_loss" in e] for r in (clean, poisoned)]
    assert devs[0] == devs[1] and len(devs[0]) == 4
    assert clean.best_step == poisoned.best_step
    assert clean.heldout_loss_after != poisoned.heldout_loss_after  # the report is on test, and did change


def _split_file(path, poison: bool):
    """A small file like bundled v2 (every record names its split): 12 train, 4 dev and 4 test records of v2,
    the test answers replaced by gibberish when ``poison``."""
    v2 = load_source("bundled:ko_instructions_v2.jsonl")
    picked = [r for s, n in (("train", 12), ("dev", 4), ("test", 4)) for r in [r for r in v2 if r["split"] == s][:n]]
    path.write_text("".join(json.dumps({**r, "output": "zq " * 20} if poison and r["split"] == "test" else r,
                                       ensure_ascii=False) + "\n" for r in picked), encoding="utf-8")
    return str(path)


def test_packed_training_on_a_split_file_keeps_a_checkpoint_that_does_not_depend_on_the_test_split(tmp_path):
    # cpu's path: a file whose records name their split (bundled v2), packed rows
    from course_utils.adapter import read_adapter_metadata
    from course_utils.train import train

    quiet = lambda m: None  # noqa: E731
    runs = []
    for poison in (False, True):
        p = fast_smoke(max_steps=4, eval_steps=1, save_steps=1, packing=True)
        p = dataclasses.replace(p, data=dataclasses.replace(p.data, source=_split_file(tmp_path / f"{poison}.jsonl",
                                                                                            poison), max_records=None))
        runs.append(train(p, tmp_path / f"run_{poison}", progress=quiet))
    clean, poisoned = runs
    devs = [[e["eval_loss"] for e in r.log_history if "eval_loss" in e] for r in runs]
    assert devs[0] == devs[1] and len(devs[0]) == 4
    assert clean.best_step == poisoned.best_step
    assert clean.heldout_loss_after != poisoned.heldout_loss_after  # the report is on test, and did change
    meta = read_adapter_metadata(clean.adapter_dir)
    assert meta["train_records"] == 12 and 1 <= meta["train_rows"] < 12  # packed: fewer rows than records


def test_the_search_of_notebook_09_does_not_depend_on_the_test_split(tmp_path, monkeypatch):
    from course_utils.tuning import search

    # one general paragraph per language: what a trial forgot is recorded beside it, not compared here (smoke's
    # 4 would add to every trial)
    p = _bundled_smoke(general_texts=1)
    quiet = lambda m: None  # noqa: E731
    clean = search(p, tmp_path / "clean", progress=quiet)
    _poison_test_split(monkeypatch)
    # and a trial measures no test loss at all (it would be thrown away: a trial returns its dev loss)
    for measure in ("losses_before_training", "record_losses"):  # the test losses before and after
        monkeypatch.setattr(course_train, measure, lambda *a, **k: pytest.fail("a search trial measured test loss"))
    poisoned = search(p, tmp_path / "poisoned", progress=quiet)
    trials = [[(t.params, t.value, t.intermediate_values) for t in s.trials] for s in (clean, poisoned)]
    assert trials[0] == trials[1] and len(trials[0]) == p.tuning.trials


def _split_argument_of_heldout_set_calls(source: str) -> list[str]:
    calls = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call)
             and getattr(n.func, "id", getattr(n.func, "attr", None)) == "heldout_set"]
    return [ast.literal_eval(c.args[2]) if len(c.args) > 2 else None for c in calls]


def test_each_lesson_reads_the_split_its_purpose_needs():
    """06 reports Korean purity on test and chooses its decoding defaults on dev (its last call); 09 reports its
    comparison on test; 10 answers test records."""
    lesson = lambda n: next((ROOT / "notebooks").glob(f"{n}_*.py")).read_text("utf-8")  # noqa: E731
    assert _split_argument_of_heldout_set_calls(lesson("06")) == ["test", "dev"]
    assert 'heldout_set(profile, tokenizer, "dev")  # a choice' in lesson("06")
    assert _split_argument_of_heldout_set_calls(lesson("09")) == ["test"]
    assert "records, _, heldout_records, _ = split_source(" in lesson("10")


def test_the_preference_recipe_search_does_not_depend_on_the_test_pairs(tmp_path, monkeypatch):
    """benchmarks/preference_recipe.py chooses 10's learning rate on the dev pairs and dev records: with every test
    pair's chosen and rejected answers swapped and the test records poisoned, every number it records is the same.

    On the first 6 pairs of each split: scoring a pair is what the search spends its time on (27 dev pairs scored
    four times per search took 43 of its 65 s), and which split is read does not depend on how many pairs it holds."""
    import benchmarks.preference_recipe as recipe
    from course_utils import preference_data
    from course_utils.adapter import adapter_metadata, save_adapter
    from course_utils.loading import load_profile_model, load_tokenizer
    from course_utils.lora import attach_lora

    p = _bundled_smoke()
    p = dataclasses.replace(p, preference=dataclasses.replace(p.preference, steps=1, own_records=2))
    adapter = save_adapter(attach_lora(load_profile_model(p), p.lora), tmp_path / "sft",
                           metadata=adapter_metadata(p, load_tokenizer(p.model), global_step=0))
    every = preference_data.load_pairs

    def first_six_of_each_split(*args):
        pairs = every(*args)
        return [q for split in ("train", "dev", "test") for q in [q for q in pairs if q["split"] == split][:6]]

    monkeypatch.setattr(preference_data, "load_pairs", first_six_of_each_split)
    quiet = lambda m: None  # noqa: E731
    clean = recipe.search(p, adapter, learning_rates=(1e-3,), seeds=(1,), progress=quiet)
    real = preference_data.load_pairs
    monkeypatch.setattr(preference_data, "load_pairs", lambda *a: [
        {**q, "chosen": q["rejected"], "rejected": q["chosen"]} if q["split"] == "test" else q for q in real(*a)])
    swapped = preference_data.split_pairs(preference_data.load_pairs())[2]  # the poison reaches what 10 reports
    real_test = preference_data.split_pairs(real())[2]
    assert real_test and all(s["chosen"] == t["rejected"] for s, t in zip(swapped, real_test, strict=True))
    _poison_test_split(monkeypatch)
    poisoned = recipe.search(p, adapter, learning_rates=(1e-3,), seeds=(1,), progress=quiet)
    for row in clean["candidates"] + poisoned["candidates"]:
        for run in row["runs"]:
            run.pop("seconds")
    assert clean == poisoned and clean["dev_pairs"] == len(preference_data.split_pairs(real())[1]) == 6
    assert clean["pairs"] == 6 + 2  # the training pairs: the 6 bundled ones and the adapter's own 2
    assert [r["method"] for r in clean["candidates"][0]["runs"]] == ["dpo", "orpo"]


def test_choose_takes_the_best_dev_reward_whose_dev_loss_stays_near_sft():
    from benchmarks.preference_recipe import choose

    def row(lr, rewards, losses):
        return {"learning_rate": lr, "runs": [{"method": m, "reward_correct": r, "dev_loss": loss}
                                              for m, r, loss in zip(("dpo", "dpo", "orpo", "orpo"), rewards, losses, strict=True)]}

    sft = {"dev_loss": 2.00}
    low, high = row(5e-5, [20, 20, 20, 21], [2.00, 2.01, 1.99, 2.00]), row(5e-4, [24, 25, 24, 24], [2.30, 2.31, 2.2, 2.2])
    assert choose([low, high], sft) is low  # more pairs right, but the answers' loss rose more than 2 %
    # the 2026-12-06 run: seeds that disagree widely do not widen the guard, and a 0.3 % rise is allowed
    gentle, wild = row(5e-5, [25] * 4, [1.7303, 1.7268, 1.7167, 1.7193]), row(5e-4, [23, 23, 24, 25], [3.09, 2.48, 1.78, 1.78])
    assert choose([gentle, wild], {"dev_loss": 1.7176}) is gentle
    assert choose([low, row(5e-4, [24, 25, 24, 24], [2.0, 2.0, 2.0, 2.0])], sft)["learning_rate"] == 5e-4
    assert choose([row(1e-4, [20] * 4, [2.0] * 4), row(5e-5, [20] * 4, [2.0] * 4)], sft)["learning_rate"] == 5e-5
    assert choose([high], sft) == {}

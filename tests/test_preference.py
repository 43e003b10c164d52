"""Preference tuning (course_utils.preference, notebook 10): the bundled pairs, pairs from an adapter's mistakes, TRL's
tokenization against the course's, the reward measure, DPO moving it on smoke, and the command's run-folder rules."""
import ast
import json
import math
from pathlib import Path

import pytest
from conftest import fast_raw

from course_utils.preference import preference_config
from course_utils.preference_data import (
    PAIRS_FILE,
    PairError,
    kind_counts,
    load_pairs,
    own_pairs,
    split_pairs,
    trl_dataset,
)
from course_utils.preference_eval import chance_probability, reward_stats
from course_utils.profiles import PROFILES_FILE, get_profile, load_profiles, parse_profile

ROOT = Path(__file__).resolve().parents[1]


def test_bundled_pairs_have_four_kinds_dev_and_test_parts_and_no_probe():
    from course_utils.data import load_probes

    pairs = load_pairs()
    train, dev, test = split_pairs(pairs)
    assert len(pairs) >= 150 and min(len(dev), len(test)) >= 25 and len(train) + len(dev) + len(test) == len(pairs)
    assert set(kind_counts(pairs)) == {"fact", "loop", "runon", "guess"}
    assert set(kind_counts(dev)) == set(kind_counts(test)) == set(kind_counts(train))  # every kind in every split
    questions = [{p["instruction"] for p in part} for part in (train, dev, test)]
    assert not (questions[0] & questions[1] or questions[0] & questions[2] or questions[1] & questions[2])
    probes = {p["question"] for p in load_probes()}
    assert not probes & {p["instruction"] for p in pairs}  # the probes stay a test
    assert len({p["id"] for p in pairs}) == len(pairs)
    assert "preference_ko.jsonl" in (ROOT / "course_utils" / "data" / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("line,message", [
    ("{not json", "2번째 줄: 올바른 JSON이 아닙니다"),
    (json.dumps({"instruction": "q", "chosen": "a"}), "2번째 줄: 필드 'rejected'는 비어 있지 않은 문자열"),
    (json.dumps({"instruction": "q", "chosen": "a", "rejected": " a "}), "2번째 줄: 'chosen'과 'rejected'가 같은 글"),
    (json.dumps({"instruction": "q", "chosen": "a", "rejected": "b", "split": "heldout"}),
     "2번째 줄: split='heldout'; train, dev, test 중 하나"),
])
def test_a_bad_pair_names_its_line_and_field(tmp_path, line, message):
    good = json.dumps({"instruction": "q", "chosen": "a", "rejected": "b"})
    path = tmp_path / "pairs.jsonl"
    path.write_text(good + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(PairError, match=message):
        load_pairs(path)


def test_own_pairs_sort_the_adapters_mistakes(monkeypatch):
    import course_utils.inference as inference

    records = [{"instruction": f"q{i}", "input": "", "output": out} for i, out in enumerate(
        ["독일의 수도는 베를린입니다.", "사과는 빨간 과일입니다.", "물은 100도에서 끓습니다.", "고양이는 동물입니다."])]
    rows = [("과일 과일 과일 과일 과일 과일 과일 과일", False),  # a loop
            ("사과는 파란 채소입니다.\n\n### 질문: 배는", True),  # ran on to the token limit
            ("전혀 다른 이야기를 합니다", False),  # far from the reference
            ("고양이는 동물입니다.", False)]  # right: no pair
    monkeypatch.setattr(inference, "generate_batch", lambda *a, **k: [
        {"answer": a, "stopped_at_eos": not limit, "hit_limit": limit, "new_tokens": 9} for a, limit in rows])
    pairs = own_pairs(None, None, records, "koalpaca", 16)
    assert [p["kind"] for p in pairs] == ["own-loop", "own-runon", "own-wrong"]
    assert pairs[0]["chosen"] == records[0]["output"] and pairs[0]["rejected"].startswith("과일")
    # the chosen answer is the person-written reference, never the adapter's own text cut short ("사과는 파란 채소입니다.")
    assert [p["chosen"] for p in pairs] == [r["output"] for r in records[:3]] and "### 질문" in pairs[1]["rejected"]
    assert all(p["split"] == "train" for p in pairs)


def test_trl_tokenizes_a_pair_as_the_course_encodes_a_record(tmp_path):
    """TRL 1.16 tokenizes prompt + answer together and appends EOS as text: the same ids as prompts.encode for both
    tokenizers the course trains (Gemma adds BOS, SmolLM2 does not)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig
    from trl import DPOConfig, DPOTrainer

    from course_utils.loading import load_tokenizer
    from course_utils.prompts import encode

    pairs = load_pairs()[:3] + [p for p in load_pairs() if p["kind"] == "runon"][:1]
    for key in ("smollm2-135m-instruct", "gemma-3-270m"):
        tok = load_tokenizer(key)
        model = get_peft_model(AutoModelForCausalLM.from_config(LlamaConfig(
            vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)),
            LoraConfig(r=2, target_modules=["q_proj"]))
        trainer = DPOTrainer(model=model, args=DPOConfig(output_dir=str(tmp_path / key), report_to=[], use_cpu=True),
                             train_dataset=trl_dataset(pairs, tok, "koalpaca"), processing_class=tok)
        for pair, row in zip(pairs, trainer.train_dataset, strict=True):
            for side in ("chosen", "rejected"):
                want = encode({**pair, "output": pair[side]}, tok, None, "koalpaca")["input_ids"]
                assert row["prompt_ids"] + row[f"{side}_ids"] == want, (key, side, pair["id"])


def test_trl_takes_a_frozen_copy_of_the_sft_adapter_as_dpos_reference(tmp_path):
    """What TRL 1.16 does with a PEFT model that already holds a trained adapter and ``ref_model=None``
    (trl/trainer/dpo_trainer.py, ``model.add_adapter("ref", ...)`` and ``use_adapter(..., "ref")``): the reference is a
    frozen copy of that adapter, the SFT model, not the base with the adapter switched off. So the first step's loss is
    exactly ln 2 (policy = reference), although against the base this adapter's reward margin is far from 0.
    A TRL upgrade that changes the reference fails here."""
    import torch
    from conftest import randomize_lora_b
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig
    from trl import DPOConfig, DPOTrainer

    from course_utils.loading import load_tokenizer

    tok = load_tokenizer("smollm2-135m-instruct")
    torch.manual_seed(0)
    model = randomize_lora_b(get_peft_model(AutoModelForCausalLM.from_config(LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)), 1, 0.5)
    pairs = load_pairs()[:4]
    beta = 1.0
    against_base = reward_stats(model, tok, pairs, "koalpaca", beta, 256)
    assert abs(against_base.margin) > 0.1  # with the base as reference, the first loss would not be ln 2
    sft = {n: p.detach().clone() for n, p in model.named_parameters() if ".default." in n}
    trainer = DPOTrainer(model=model, ref_model=None, train_dataset=trl_dataset(pairs, tok, "koalpaca"),
                         processing_class=tok, args=DPOConfig(
                             output_dir=str(tmp_path), beta=beta, per_device_train_batch_size=4, max_steps=1,
                             learning_rate=1e-3, logging_steps=1, report_to=[], use_cpu=True, save_strategy="no"))
    assert set(trainer.model.peft_config) == {"default", "ref"}
    ref = {n.replace(".ref.", ".default."): p for n, p in trainer.model.named_parameters() if ".ref." in n}
    assert ref.keys() == sft.keys() and all(torch.equal(ref[n], sft[n]) for n in sft)  # a copy of the SFT adapter
    assert not any(p.requires_grad for n, p in trainer.model.named_parameters() if ".ref." in n)  # frozen
    trainer.train()
    first = next(e for e in trainer.state.log_history if "loss" in e)
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-4)
    assert all(torch.equal(p, sft[n.replace(".ref.", ".default.")])  # the reference did not move
               for n, p in trainer.model.named_parameters() if ".ref." in n)


def test_a_fresh_adapter_has_zero_rewards_and_chance_is_binomial():
    from conftest import tiny_model

    from course_utils.lora import attach_lora
    from course_utils.profiles import LoraSettings

    class Tok:  # ids below the tiny model's vocabulary
        eos_token_id, pad_token_id = 2, 0

        def __call__(self, text, add_special_tokens=True):
            return type("T", (), {"input_ids": [3 + (ord(c) % 90) for c in text]})()

    model = attach_lora(tiny_model("tinyllama-1.1b"), LoraSettings(8, 16, 0.0, "attention"))
    stats = reward_stats(model, Tok(), load_pairs()[:6], "koalpaca", 0.1, 64)
    assert (stats.correct, stats.pairs, stats.margin, stats.chosen) == (0, 6, 0.0, 0.0)  # B = 0: policy == reference
    assert chance_probability(0, 10) == 1.0 and chance_probability(10, 10) == 2 ** -10
    assert chance_probability(8, 10) == pytest.approx((45 + 10 + 1) / 1024)


def test_answer_logps_is_the_summed_log_probability_of_each_answer():
    """answer_logps batches records, keeps the logits of answer positions only and takes the log-softmax one row
    at a time (a batch's would be a second vocabulary-sized copy, 10's peak on demo, issue 41). The result must be
    what one record's full forward pass gives: the log-probabilities of its answer tokens, summed."""
    import torch
    from conftest import tiny_model

    from course_utils.preference_eval import answer_logps
    from course_utils.prompts import encode

    class Tok:  # ids below the tiny model's vocabulary
        eos_token_id, pad_token_id = 2, 0

        def __call__(self, text, add_special_tokens=True):
            return type("T", (), {"input_ids": [3 + (ord(c) % 90) for c in text]})()

    torch.manual_seed(0)
    model = tiny_model("tinyllama-1.1b").eval()
    pairs = load_pairs()[:5]
    chosen, rejected = answer_logps(model, Tok(), pairs, "koalpaca", 64, batch_size=3)
    for side, got in (("chosen", chosen), ("rejected", rejected)):
        for pair, value in zip(pairs, got, strict=True):
            record = encode({**pair, "output": pair[side]}, Tok(), 64, "koalpaca")
            ids, labels = torch.tensor([record["input_ids"]]), torch.tensor(record["labels"][1:])
            with torch.no_grad():
                logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
            want = logp[labels != -100].gather(-1, labels[labels != -100][:, None]).sum()
            assert value.item() == pytest.approx(want.item(), abs=1e-4), (pair["id"], side)
    assert (chosen != rejected).all()


def _keywords(function) -> set[str]:
    """The keywords ``function`` passes to ``Config(...)``, those of ``**recipe_arguments(profile)`` included."""
    import inspect
    import textwrap

    from course_utils.preference import preference_batches
    from course_utils.trainer import recipe_arguments

    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "Config":
            for k in node.keywords:
                if k.arg is not None:
                    found.add(k.arg)
                else:  # **mapping: only the recipe's shared arguments (with preference's batches) are spread
                    assert ast.unparse(k.value) == "recipe_arguments(profile) | preference_batches(profile)", \
                        ast.unparse(k.value)
                    found |= set(recipe_arguments(get_profile("smoke"))) | set(preference_batches(get_profile("smoke")))
    return found


def test_every_keyword_the_course_passes_exists_in_dpo_and_orpo_config():
    """API drift: each keyword preference_config passes is a field of TRL 1.16's DPOConfig and ORPOConfig, and each
    profile's preference settings arrive unchanged."""
    import dataclasses

    from trl import DPOConfig
    from trl.experimental.orpo import ORPOConfig

    import course_utils.preference as preference

    passed = _keywords(preference.preference_config)
    assert {"beta", "learning_rate", "max_length", "max_steps", "optim"} <= passed
    for config in (DPOConfig, ORPOConfig):
        assert passed <= {f.name for f in dataclasses.fields(config)}, passed - {f.name for f in dataclasses.fields(config)}
    for name, profile in load_profiles(PROFILES_FILE).items():
        for method in ("dpo", "orpo"):
            args = preference_config(profile, method, Path("run"))
            p = profile.preference
            assert (args.beta, args.learning_rate, args.max_length, args.max_steps) == (
                p.beta, p.learning_rate, p.max_length, p.steps), name
            assert args.per_device_train_batch_size == 1 and args.optim == profile.optimizer
            assert args.gradient_accumulation_steps == profile.batch_size * profile.grad_accum  # the profile's pairs


def _smoke_profile(tmp_path, recipe: bool = True, **preference):
    """Smoke made fast; ``recipe`` puts gpu8gb's path back (nf4, 8-bit AdamW, gradient checkpointing)."""
    raw = fast_raw()["smoke"]
    if recipe:
        raw["quantization"], raw["optimizer"], raw["gradient_checkpointing"] = "nf4", "adamw_8bit", True
    raw["preference"].update(preference)
    return parse_profile("smoke", raw, "test")


def _sft_adapter(profile, folder):
    """A fresh adapter saved as training saves one (B = 0: the SFT starting point, for the tests' speed)."""
    from course_utils.adapter import adapter_metadata, save_adapter
    from course_utils.loading import load_profile_model, load_tokenizer
    from course_utils.lora import attach_lora

    model = attach_lora(load_profile_model(profile), profile.lora)
    return save_adapter(model, folder, metadata=adapter_metadata(profile, load_tokenizer(profile.model), global_step=0))


def test_dpo_moves_reward_accuracy_on_its_training_pairs_above_chance_on_smoke(tmp_path):
    """Wiring, not quality: a few DPO steps on the smoke model (its SFT adapter has B = 0, so TRL's reference copy of
    it is the adapter off) rank the chosen answers of
    the pairs it trained on above the rejected ones, beyond what coin flips would do (p < 0.05). fp32, for time:
    notebook 10 runs the same trainer on gpu8gb's nf4 path under nbval."""
    from course_utils.preference import load_policy, preference_trainer
    from course_utils.preference_eval import answer_logps

    # two passes over 8 training pairs (8 steps x batch 1 x accumulation 2). One pass (4 steps) ranked 6/8 once the
    # Washington pair was rewritten (p = 0.14): too few steps to separate from chance, not a broken trainer
    profile = _smoke_profile(tmp_path, recipe=False, steps=8, learning_rate=2e-3)
    model, tok, _ = load_policy(profile, _sft_adapter(profile, tmp_path / "sft"))
    pairs = [p for p in split_pairs(load_pairs())[0] if p["kind"] == "fact"][:8]
    with model.disable_adapter():  # the reference's log-probabilities, measured once for before and after
        reference = answer_logps(model, tok, pairs, "koalpaca", 256, 8)
    before = reward_stats(model, tok, pairs, "koalpaca", profile.preference.beta, 256, reference=reference)
    trainer = preference_trainer(profile, "dpo", model, tok, pairs, tmp_path / "dpo")
    assert trainer.ref_model is None  # the reference is the adapter switched off: no second copy
    trainer.train()
    after = reward_stats(trainer.model, tok, pairs, "koalpaca", profile.preference.beta, 256, reference=reference)
    assert before.correct == 0 and abs(before.margin) < 1e-6  # B = 0: the policy is the reference
    assert after.correct > before.correct
    assert chance_probability(after.correct, after.pairs) < 0.05, after  # 7 of 8 or better
    assert math.isfinite(after.margin) and after.margin > 0


def test_the_command_refuses_an_earlier_run_and_overwrite_moves_it_aside(tmp_path, capsys):
    import yaml

    from course_utils.preference import main

    profile = _smoke_profile(tmp_path, steps=1, own_records=2)
    sft = _sft_adapter(profile, tmp_path / "sft")
    raw = fast_raw()["smoke"]
    raw.update({"quantization": "nf4", "optimizer": "adamw_8bit", "gradient_checkpointing": True})
    raw["preference"].update(steps=1, own_records=2)
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text(yaml.safe_dump({"smoke": raw}, allow_unicode=True), encoding="utf-8")
    out = tmp_path / "dpo"
    (out / "adapter").mkdir(parents=True)
    (out / "adapter" / "course_adapter.json").write_text('{"global_step": 7}', encoding="utf-8")
    command = ["--method", "dpo", "--adapter", str(sft), "--output", str(out), "--profile", "smoke",
               "--profiles", str(profiles)]
    with pytest.raises(SystemExit, match="이전 학습이 있습니다: .*스텝 7에서 끝난 어댑터.*--overwrite"):
        main(command)
    assert json.loads((out / "adapter" / "course_adapter.json").read_text()) == {"global_step": 7}  # untouched
    main(command + ["--overwrite"])
    moved = [p for p in tmp_path.iterdir() if p.name.startswith("dpo.previous-")]
    assert len(moved) == 1 and json.loads((moved[0] / "adapter" / "course_adapter.json").read_text())["global_step"] == 7
    meta = json.loads((out / "adapter" / "course_adapter.json").read_text())
    assert meta["preference"]["method"] == "dpo" and meta["global_step"] == 1 and meta["base_model"] == profile.model
    assert any((out / "tensorboard").iterdir())  # the run's TensorBoard events
    assert (out / "adapter" / "adapter_model.safetensors").exists()


def test_profiles_carry_a_preference_recipe():
    gpu = get_profile("gpu8gb").preference
    assert gpu.max_length == get_profile("gpu8gb").seq_len and 0 < gpu.beta < 1
    assert PAIRS_FILE.exists()
    old = fast_raw()["smoke"]
    old["preference"]["heldout_pairs"] = old["preference"].pop("test_pairs")  # an earlier 09's best_profile.yaml
    with pytest.raises(ValueError, match="'heldout_pairs' is now 'test_pairs'"):
        parse_profile("smoke", old, "test")
    with pytest.raises(ValueError, match="preference.beta must be a number > 0"):
        raw = fast_raw()["smoke"]
        raw["preference"]["beta"] = 0
        parse_profile("smoke", raw, "test")


def test_the_reference_copy_is_measured_on_the_policy_in_memory(tmp_path):
    """10 shows what a separately loaded reference model would hold without loading one (at d545876 it loaded a second
    copy of the base next to the policy): the same bytes as a fresh load of the base, LoRA weights left out."""
    from course_utils.loading import load_profile_model
    from course_utils.preference import load_policy, reference_copy_bytes
    from course_utils.vram_measure import model_footprint

    profile = _smoke_profile(tmp_path)
    policy, _, _ = load_policy(profile, _sft_adapter(profile, tmp_path / "sft"))
    assert reference_copy_bytes(policy) == model_footprint(load_profile_model(profile))


def _answer_keys(chosen: str, rejected: str) -> tuple[str, str, str]:
    """The part where a sentence-shaped pair differs ("베를린" / "뮌헨", "100" / "80"): common text trimmed from both
    ends, never splitting a number; and that common text (context both answers share, like "10월" in a date)."""
    start = next((i for i, (a, b) in enumerate(zip(chosen, rejected, strict=False)) if a != b), 0)
    end = next((i for i, (a, b) in enumerate(zip(chosen[::-1], rejected[::-1], strict=False)) if a != b), 0)
    while start and chosen[start - 1].isdigit():
        start -= 1
    while end and chosen[len(chosen) - end].isdigit():
        end -= 1
    return (chosen[start:len(chosen) - end].strip(), rejected[start:len(rejected) - end].strip(),
            chosen[:start] + " " + chosen[len(chosen) - end:])


def test_every_factual_pair_is_graded_right_when_chosen_and_wrong_when_rejected():
    """06's grader on every fact and guess pair: the chosen answer names one answer and no rival (a list of guesses, or
    a second candidate, is wrong), and the rejected one is wrong. A chosen answer that is a list, names both candidates
    or lacks the answer fails here."""
    from course_utils.grading import grade

    checked = 0
    for pair in load_pairs():
        if pair["kind"] not in ("fact", "guess"):
            continue
        rejected, shared = pair["rejected"], ""
        if ", " in rejected and "입니다" not in rejected:  # a list of guesses: one of them is the chosen answer
            items = [item.strip() for item in rejected.split(",")]
            right = [item for item in items if grade(pair["chosen"], {"question": pair["instruction"], "expected": item,
                                                                     "competitors": [o for o in items if o != item]}).correct]
            assert len(right) == 1, (pair["id"], right)
            key, rivals = right[0], [item for item in items if item != right[0]]
        else:
            key, rival, shared = _answer_keys(pair["chosen"], rejected)
            assert key and rival and key != rival, pair["id"]
            # a rival inside the question's own words ("포르투" in "포르투갈") would mark every answer wrong
            rivals = [rival] if rival not in pair["instruction"] else []
        probe = {"question": pair["instruction"] + " " + shared, "expected": key,  # shared numbers do not compete
                 "competitors": rivals}
        assert grade(pair["chosen"], probe).correct, (pair["id"], grade(pair["chosen"], probe))
        assert not grade(rejected, probe).correct, (pair["id"], rejected)
        checked += 1
    assert checked == 95

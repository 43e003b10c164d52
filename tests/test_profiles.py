import pytest
import torch
import yaml

from course_utils.profiles import PROFILES_FILE, ProfileError, active_profile, get_profile, load_profiles


def test_profiles_name_their_models():
    profiles = load_profiles()
    assert set(profiles) == {"smoke", "demo", "cpu", "gpu8gb"}
    assert profiles["smoke"].model == "smollm2-135m-first-8-layers"
    assert profiles["cpu"].model == profiles["demo"].model == "gemma-3-270m"
    g = profiles["gpu8gb"]
    assert (g.quantization, g.seq_len, g.batch_size, g.grad_accum, g.optimizer, g.gradient_checkpointing) == (
        "nf4", 512, 1, 16, "paged_adamw_8bit", True)


def test_smoke_is_the_gpu8gb_recipe_on_a_cpu():
    """CI runs every notebook on smoke: it must take every code path the learners' recipe takes."""
    from course_utils.splits import split_source

    s, g = get_profile("smoke"), get_profile("gpu8gb")
    assert s.stands_in_for == "gpu8gb"
    assert (s.quantization, s.batch_size, s.gradient_checkpointing, s.lora) == (g.quantization, g.batch_size,
                                                                                 g.gradient_checkpointing, g.lora)
    assert s.grad_accum > 1 and s.train.max_steps is None and s.train.epochs  # accumulation, counted in epochs
    assert s.optimizer == "adamw_8bit" and g.optimizer == "paged_adamw_8bit"  # the same 8-bit AdamW, without paging
    assert s.device == "cpu" and s.dtype == "float32"
    # a KoAlpaca-format file (v1.1: instruction, output, url), held-out records split off it, never the bundled set
    assert s.data.source.startswith("bundled:") and s.data.source.endswith(".jsonl")
    train, dev, held, report = split_source(s.data.source, s.train.heldout_records, s.train.seed, s.data.on_invalid)
    assert report.source == s.data.source and len(held) == len(dev) == s.train.heldout_records
    assert not {r["instruction"] for r in held + dev} & {r["instruction"] for r in train}
    assert dict(report.dropped) == {"duplicate": 1, "empty field": 1}  # as real KoAlpaca dumps have


def test_every_setting_the_stand_in_changes_has_its_reason():
    from course_utils.overrides import differences, swaps_table

    s, g = get_profile("smoke"), get_profile("gpu8gb")
    changed = [key for key, _, _ in differences(s, g)]
    assert sorted(changed) == sorted(key for key, _ in s.swaps)
    assert {"model", "device", "dtype", "optimizer", "data.source"} <= set(changed)
    table = swaps_table(s).data
    assert table.loc["optimizer", "gpu8gb"] == "paged_adamw_8bit" and table.loc["optimizer", "smoke"] == "adamw_8bit"
    assert "CUDA" in table.loc["optimizer", "바꾼 이유"] and "(이유가 적혀 있지 않음)" not in set(table["바꾼 이유"])


def test_a_stand_in_that_changes_a_setting_without_a_reason_shows_it(tmp_path):
    from course_utils.overrides import swaps_table

    path = _write(tmp_path, lambda raw: raw["smoke"].update(seq_len=128, swaps={
        k: v for k, v in raw["smoke"]["swaps"].items() if k != "seq_len"}))
    table = swaps_table(get_profile("smoke", path), path).data
    assert table.loc["seq_len", "바꾼 이유"] == "(이유가 적혀 있지 않음)"
    with pytest.raises(ProfileError, match="swaps are listed but stands_in_for"):
        get_profile("smoke", _write(tmp_path, lambda raw: raw["smoke"].pop("stands_in_for")))


def test_overrides_are_validated_like_the_yaml():
    from course_utils.overrides import parse_setting, with_overrides

    s = get_profile("smoke")
    changed = with_overrides(s, [parse_setting("lora.r=16"), parse_setting("train.learning_rate=2e-4"),
                                 ("train.epochs", 3.0), parse_setting("gradient_checkpointing=false")])
    assert (changed.lora.r, changed.train.learning_rate, changed.train.epochs, changed.gradient_checkpointing) == (
        16, 2e-4, 3.0, False)
    with pytest.raises(ProfileError, match=r"in the command line \(train.learning_rate=2\): train.learning_rate "
                                           r"must be between 0 and 1, got 2"):
        with_overrides(s, [parse_setting("train.learning_rate=2")])
    with pytest.raises(ProfileError, match=r"unknown setting 'lora.rank'. Valid settings: lora.alpha, lora.dropout, "
                                           r"lora.r, lora.targets, lora.variant$"):
        with_overrides(s, [parse_setting("lora.rank=4")])
    with pytest.raises(ProfileError, match="set exactly one of train.max_steps"):
        with_overrides(s, [("train.max_steps", 10)])  # epochs is still set: the same error a YAML gets
    with pytest.raises(ProfileError, match="write it as key=value"):
        parse_setting("lora.r")


def test_env_var_chooses(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "cpu")
    assert active_profile().name == "cpu"


def test_default_follows_cuda(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert active_profile().name == "gpu8gb"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert active_profile().name == "cpu"


def test_unknown_profile_lists_valid(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "gpu")
    with pytest.raises(ProfileError, match=r"Unknown profile 'gpu'\. Valid profiles: smoke, demo, cpu, gpu8gb"):
        active_profile()


def _write(tmp_path, mutate):
    raw = yaml.safe_load(PROFILES_FILE.read_text(encoding="utf-8"))
    mutate(raw)
    path = tmp_path / "profiles.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_typo_key_is_named(tmp_path):
    path = _write(tmp_path, lambda raw: raw["cpu"].update(seq_lenght=128))
    with pytest.raises(ProfileError, match=r"profile 'cpu'.*unknown key\(s\) \['seq_lenght'\]. Valid keys: .*seq_len"):
        get_profile("cpu", path)


def test_a_profiles_file_written_before_the_transfer_keys_still_reads(tmp_path):
    # an earlier 09's best_profile.yaml or a learner's --profiles file has no train.transfer_*: the cpu values fill in
    from course_utils.profiles import ADDED

    path = _write(tmp_path, lambda raw: [raw["smoke"]["train"].pop(k) for k in ("transfer_records", "transfer_answers")])
    old = get_profile("smoke", path)
    cpu = get_profile("cpu").train
    assert (old.train.transfer_records, old.train.transfer_answers) == tuple(ADDED["train"].values()) == (
        cpu.transfer_records, cpu.transfer_answers)
    assert get_profile("smoke").train.transfer_records == 8  # a file that names them keeps its own


def test_the_course_profiles_file_must_name_every_key():
    # the fill-in is for files written before a key existed: it must not hide a key missing from profiles.yaml itself
    from course_utils.profiles import parse_profile

    raw = yaml.safe_load(PROFILES_FILE.read_text(encoding="utf-8"))["cpu"]
    raw["train"].pop("transfer_records")
    with pytest.raises(ProfileError, match=r"missing key\(s\) \['transfer_records'\]"):
        parse_profile("cpu", raw, str(PROFILES_FILE))


def test_lora_r_zero_is_refused(tmp_path):
    path = _write(tmp_path, lambda raw: raw["smoke"]["lora"].update(r=0))
    with pytest.raises(ProfileError, match=r"lora\.r must be a whole number >= 1"):
        get_profile("smoke", path)


def test_bad_choice_lists_options(tmp_path):
    path = _write(tmp_path, lambda raw: raw["smoke"].update(quantization="nf3"))
    with pytest.raises(ProfileError, match=r"quantization='nf3' is not valid. Choose one of: none, int8, nf4"):
        get_profile("smoke", path)


def test_unknown_model_lists_registry(tmp_path):
    path = _write(tmp_path, lambda raw: raw["smoke"].update(model="llama-7b"))
    with pytest.raises(ProfileError, match=r"model 'llama-7b' is not in the registry. Valid models: gpt2"):
        get_profile("smoke", path)


def test_learning_profiles_score_the_whole_dev_and_test_splits():
    # the held-out file is grouped by kind: scoring its first N records would weigh some kinds only
    from course_utils.splits import load_heldout

    held = max(len(load_heldout("dev")), len(load_heldout("test")))
    for name in ("cpu", "gpu8gb"):
        assert get_profile(name).train.heldout_records >= held, name


def test_notebook_profile_switch_with_a_typo_lists_the_valid_ones(monkeypatch):
    from course_utils.profiles import ProfileError, active_profile

    monkeypatch.setenv("COURSE_PROFILE", "gpu8")
    with pytest.raises(ProfileError, match=r"'gpu8'.*smoke.*cpu.*gpu8gb"):
        active_profile()


def test_a_profile_trains_by_steps_or_by_epochs():
    profiles = load_profiles()
    assert profiles["cpu"].train.max_steps == 64 and profiles["cpu"].train.epochs is None
    seed = profiles["gpu8gb"]  # the seed's recipe: KoAlpaca, 10,000 records, 3 epochs, warmup 100
    assert seed.train.epochs == 3.0 and seed.train.max_steps is None and seed.train.warmup_steps == 100
    assert seed.data.source == "beomi/KoAlpaca-v1.1a" and seed.data.max_records == 10_000


@pytest.mark.parametrize("change,message", [
    ({"epochs": 3}, r"set exactly one of train\.max_steps .* Got max_steps=64, epochs=3"),
    ({"max_steps": None}, r"set exactly one of train\.max_steps .* Got max_steps=None, epochs=None"),
    ({"max_steps": None, "epochs": 0}, r"train\.epochs must be a number > 0"),
    ({"save_steps": 30}, r"save_steps \(30\) must be a multiple of train\.eval_steps \(32\)"),
    ({"answer_tokens": 0}, r"train\.answer_tokens must be a whole number >= 1, got 0"),
])
def test_steps_epochs_and_checkpoint_schedule_are_validated(tmp_path, change, message):
    raw = yaml.safe_load(PROFILES_FILE.read_text(encoding="utf-8"))
    raw["cpu"]["train"].update(change)
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ProfileError, match=message):
        get_profile("cpu", path)


def test_epochs_become_the_trainers_step_count(tmp_path):
    import dataclasses

    from course_utils.trainer import training_arguments

    cpu = get_profile("cpu")
    by_epochs = dataclasses.replace(cpu, train=dataclasses.replace(cpu.train, max_steps=None, epochs=2.0))
    args = training_arguments(by_epochs, tmp_path)
    assert args.max_steps == -1 and args.num_train_epochs == 2.0
    assert training_arguments(cpu, tmp_path).max_steps == 64


def test_model_override_and_device_check():
    from course_utils.hardware import check_device
    from course_utils.overrides import with_model

    assert with_model(get_profile("gpu8gb"), "phi-2").model == "phi-2"
    with pytest.raises(ProfileError, match=r"--model 'llama-7b' is not in the registry"):
        with_model(get_profile("cpu"), "llama-7b")
    with pytest.raises(ProfileError, match=r"uses seq_len=2048, above gpt2's maximum of 1024 positions"):
        with_model(dataclasses_replace_seq(get_profile("cpu"), 2048), "gpt2")
    check_device(get_profile("cpu"))  # a CPU profile never needs CUDA
    if not torch.cuda.is_available():
        with pytest.raises(ProfileError, match=r"needs a CUDA GPU, .* Use --profile cpu"):
            check_device(get_profile("gpu8gb"))


def dataclasses_replace_seq(profile, seq_len):
    import dataclasses

    return dataclasses.replace(profile, seq_len=seq_len)

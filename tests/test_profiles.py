import pytest
import torch
import yaml

from course_utils.profiles import PROFILES_FILE, ProfileError, active_profile, get_profile, load_profiles


def test_profiles_name_their_models():
    profiles = load_profiles()
    assert set(profiles) == {"smoke", "cpu", "gpu8gb"}
    assert profiles["smoke"].model == "smollm2-135m-instruct"
    assert profiles["cpu"].model == "gemma-3-270m"
    g = profiles["gpu8gb"]
    assert (g.quantization, g.seq_len, g.batch_size, g.grad_accum, g.optimizer, g.gradient_checkpointing) == (
        "nf4", 512, 1, 16, "paged_adamw_8bit", True)


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
    with pytest.raises(ProfileError, match=r"Unknown profile 'gpu'\. Valid profiles: smoke, cpu, gpu8gb"):
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


def test_learning_profiles_score_the_whole_heldout_file():
    # the held-out file is grouped by kind: scoring its first N records would weigh some kinds only
    from course_utils.data import load_heldout

    held = len(load_heldout())
    for name in ("cpu", "gpu8gb"):
        assert get_profile(name).train.heldout_records >= held, name


def test_notebook_profile_switch_with_a_typo_lists_the_valid_ones(monkeypatch):
    from course_utils.profiles import ProfileError, active_profile

    monkeypatch.setenv("COURSE_PROFILE", "gpu8")
    with pytest.raises(ProfileError, match=r"'gpu8'.*smoke.*cpu.*gpu8gb"):
        active_profile()

import pytest

from course_utils.gguf import ModelNotAvailableError
from course_utils.loading import load_tokenizer
from course_utils.models import count_params, get_spec, meta_model


@pytest.mark.parametrize("key,total", [
    ("gpt2", 124_439_808), ("tinyllama-1.1b", 1_100_048_384), ("phi-2", 2_779_683_840),
    ("smollm2-135m-instruct", 134_515_008), ("gemma-3-270m", 268_098_176),
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

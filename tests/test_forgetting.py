"""What fine-tuning broke: the general-text loss (peft's forgetting measure) is exact, is zero for an untrained
adapter, and rises for an adapter trained to overfit."""
import re

import pytest
import torch

from course_utils import forgetting
from course_utils.forgetting import LANGUAGES, general_texts, measure, text_losses

HANGUL = re.compile(r"[가-힣]")


def test_the_bundled_paragraphs_are_forty_or_more_per_language_distinct_and_in_their_language():
    for language in LANGUAGES:
        texts = general_texts(language)
        assert len(texts) >= 40 and len(set(texts)) == len(texts)
        assert all(len(t) >= 60 for t in texts), "a paragraph, not a phrase"
        assert all(bool(HANGUL.search(t)) == (language == "ko") for t in texts)
    assert general_texts("ko", 3) == general_texts("ko")[:3]
    with pytest.raises(ValueError, match="'fr'.*ko, en"):
        general_texts("fr")


@pytest.fixture(scope="module")
def model_and_tokenizer():
    from course_utils.loading import load_model, load_tokenizer

    return load_model("smollm2-135m-instruct"), load_tokenizer("smollm2-135m-instruct")


def test_text_losses_are_the_models_own_loss_and_do_not_depend_on_the_batch(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    texts = general_texts("en", 3) + general_texts("ko", 2)
    one_by_one = text_losses(model, tokenizer, texts, batch_size=1)
    for text, (total, count) in zip(texts, one_by_one, strict=True):
        ids = torch.tensor([tokenizer(text)["input_ids"]])
        with torch.no_grad():
            own = model(input_ids=ids, labels=ids).loss.item()  # transformers' mean over the shifted targets
        assert count == ids.shape[1] - 1
        assert total / count == pytest.approx(own, rel=1e-5)
    batched = text_losses(model, tokenizer, texts, batch_size=5)  # right-padded to the longest of five
    assert [n for _, n in batched] == [n for _, n in one_by_one]
    # padding changes the matrix shapes, so fp32 sums round differently (measured on this machine: 2e-7 relative);
    # a wrong mask or shift moves a loss by far more than 1e-5
    assert [s for s, _ in batched] == pytest.approx([s for s, _ in one_by_one], rel=1e-5)


def test_an_untrained_adapter_forgets_nothing_and_a_changed_one_is_measured(model_and_tokenizer):
    import copy

    from conftest import randomize_lora_b

    from course_utils.lora import attach_lora
    from course_utils.profiles import LoraSettings

    base, tokenizer = model_and_tokenizer
    model = attach_lora(copy.deepcopy(base), LoraSettings(8, 16, 0.0, "all-linear"))
    zero = measure(model, tokenizer, limit=4)
    assert all(f.change == 0.0 and f.worse == 0 and f.texts == 4 for f in zero.values())  # B = 0: the identity
    randomize_lora_b(model, seed=0, std=0.05)
    noisy = measure(model, tokenizer, limit=4)
    assert all(f.before == zero[lang].before for lang, f in noisy.items())  # adapter off = the base, unchanged
    assert all(f.change != 0.0 for f in noisy.values())


def test_the_forgetting_measure_rises_for_an_adapter_trained_to_overfit(tmp_path):
    """An ordinary short run (the fast smoke profile, 4 steps) is the floor; the same run with a learning rate ten
    times higher for 8 steps over the same 8 records must make general text clearly less likely, in both languages.
    fp32 LoRA: the measure is the subject here, the recipe (nf4, accumulation, checkpointing) runs in test_train.py
    and the notebooks. The whole SmolLM2 (30 blocks), not smoke's first 8: those 8 are no language model (general
    text at about 20 nats a token, measured), so any training makes general text likelier and nothing can be forgotten."""
    import dataclasses

    from conftest import fast_smoke

    from course_utils.train import train
    from course_utils.tuning import with_settings

    recipe = dataclasses.replace(fast_smoke(general_texts=8), model="smollm2-135m-instruct")  # smoke's CI has 4
    short = with_settings(recipe, learning_rate=recipe.train.learning_rate, r=recipe.lora.r,
                          targets=recipe.lora.targets, heldout_records=2, eval_steps=4)
    overfit = with_settings(short, learning_rate=1e-2, r=recipe.lora.r, targets=recipe.lora.targets, steps=8,
                            eval_steps=8)
    results, before = {}, None
    for name, profile in (("recipe", short), ("overfit", overfit)):
        run = train(profile, tmp_path / name, progress=lambda message: None, measure_test=False)  # not read here
        # the base (adapter off) is the same model in both runs: measured once
        before = before or forgetting.base_losses(run.model, run.tokenizer, recipe.train.general_texts)
        results[name] = forgetting.measure(run.model, run.tokenizer, limit=recipe.train.general_texts, before=before)
    for language in LANGUAGES:
        floor, over = results["recipe"][language], results["overfit"][language]
        assert over.change > max(floor.change, 0.0) + 0.05, (language, floor, over)
        assert over.worse > over.texts // 2, (language, over)


def test_02_measures_quantization_loss_on_at_least_16_sentences_per_language():
    """Issue 43: 02's nf4 loss rests on 16 sentences or more per language on the stored (cpu) and the learners'
    (gpu8gb) profiles; the sentences are the general paragraphs' own, split where a sentence ends."""
    from course_utils.forgetting import general_sentences, general_texts
    from course_utils.profiles import get_profile

    for name in ("cpu", "gpu8gb"):
        n = get_profile(name).eval_sentences
        assert n >= 16
        for language in ("ko", "en"):
            sentences = general_sentences(language, n)
            assert len(sentences) == n and all(s[-1] in ".!?" for s in sentences)
    first = general_texts("ko", 1)[0]
    assert " ".join(general_sentences("ko")[:3]) == first  # the first paragraph's three sentences, whole

"""The answer-only loss: the same number on the training path, the evaluation path and from stored logits."""
import pytest
import torch

from course_utils.loss import answer_loss_sum


@pytest.mark.parametrize("key", ["gpt2", "tinyllama-1.1b", "phi-2"])
def test_answer_loss_equals_full_logit_cross_entropy(key):
    """The answer-only path (output layer only at answer positions) gives the plain masked loss."""
    from conftest import tiny_model

    from course_utils.lora import attach_lora
    from course_utils.profiles import LoraSettings

    model = attach_lora(tiny_model(key), LoraSettings(r=4, alpha=8, dropout=0.0, targets="attention")).eval()
    torch.manual_seed(1)
    ids = torch.randint(5, 1000, (3, 10))
    mask = torch.ones_like(ids)
    mask[2, 7:] = 0  # a padded row
    labels = ids.clone()
    labels[:, :4] = -100  # prompt
    labels[2, 7:] = -100  # padding
    with torch.no_grad():
        loss, n = answer_loss_sum(model, {"input_ids": ids, "attention_mask": mask, "labels": labels})
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                                                 labels[:, 1:].reshape(-1), ignore_index=-100, reduction="sum")
    assert n == int((labels[:, 1:] != -100).sum()) == 6 + 6 + 3
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)


def test_the_loss_of_answer_logits_equals_heldout_loss(smollm2):
    import torch.nn.functional as F

    from course_utils.loading import load_tokenizer
    from course_utils.loss import answer_logits, heldout_loss
    from course_utils.prompts import encode, pad_id
    from course_utils.splits import load_heldout

    tok = load_tokenizer("smollm2-135m-instruct")
    examples = [encode(r, tok, 128) for r in load_heldout("test")[:5]]
    logits, tokens = answer_logits(smollm2, examples, pad_id(tok))
    assert F.cross_entropy(logits, tokens).item() == pytest.approx(heldout_loss(smollm2, examples, pad_id(tok)), rel=1e-4)


def test_length_batches_cover_every_record_once_and_bound_the_padding():
    from course_utils.loss import length_batches

    lengths = [149, 237, 174, 94, 12, 13, 300, 14]
    batches = length_batches(lengths, batch_size=3)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(len(b) <= 3 for b in batches)
    for b in batches:  # the padded width is the longest record of the batch
        assert len(b) * max(lengths[i] for i in b) <= 1.25 * sum(lengths[i] for i in b)
    assert [12, 13, 14] in [[lengths[i] for i in b] for b in batches]  # similar lengths still share a batch
    assert length_batches([10, 100], 8) == [[0], [1]]  # 100 % padding: apart
    assert length_batches([], 4) == [] and length_batches([5, 5], 1) == [[0], [1]]


def test_answer_logits_are_the_full_logits_at_the_answer_positions_and_give_the_heldout_loss():
    """The merge and export checks keep only these (Gemma's vocabulary made 07 hold 9 fp32 model sizes of logits)."""
    import torch.nn.functional as F
    from conftest import batch_logits, tiny_model

    from course_utils.loss import answer_logits, heldout_loss

    model = tiny_model("tinyllama-1.1b")
    examples = [{"input_ids": list(range(5, 20)), "labels": [-100] * 10 + list(range(15, 20))},
                {"input_ids": list(range(30, 42)), "labels": [-100] * 5 + list(range(35, 42))}]
    logits, tokens = answer_logits(model, examples, pad=0)
    full, _ = batch_logits(model, examples, pad=0)
    expected = torch.cat([full[0, 9:14], full[1, 4:11]])  # position t predicts token t + 1
    assert logits.shape == (12, 1000) and torch.allclose(logits, expected, atol=1e-5)
    assert tokens.tolist() == list(range(15, 20)) + list(range(35, 42))
    assert F.cross_entropy(logits, tokens).item() == pytest.approx(heldout_loss(model, examples, pad=0), rel=1e-6)

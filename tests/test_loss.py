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


@pytest.mark.parametrize("key", ["gpt2", "tinyllama-1.1b", "gemma-3-270m"])
def test_each_answer_token_loss_is_the_full_logit_loss_and_only_answer_positions_reach_the_output_layer(key):
    """Evaluation's gathered path: rows whose prompts differ in length (the row union of answer positions is wider
    than any row's answers), a padded row, and packed rows masked by position ids. Gemma's stand-in has a final
    logit soft-cap, applied after the output layer: it must still apply to the gathered logits."""
    from conftest import randomize_lora_b, tiny_model

    from course_utils.lora import attach_lora
    from course_utils.loss import answer_token_losses
    from course_utils.profiles import LoraSettings

    if key == "gemma-3-270m":  # the cpu model's architecture, with a small cap: a logit the cap missed would show
        from transformers import Gemma3ForCausalLM, Gemma3TextConfig

        torch.manual_seed(0)
        base = Gemma3ForCausalLM(Gemma3TextConfig(
            vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=1, head_dim=32, final_logit_softcapping=3.0))
    else:
        base = tiny_model(key)
    model = attach_lora(base, LoraSettings(r=4, alpha=8, dropout=0.0, targets="attention")).eval()
    randomize_lora_b(model, seed=3, std=0.5)  # the adapter changes the logits: the gathered path must keep it
    torch.manual_seed(1)
    ids = torch.randint(5, 1000, (3, 12))
    mask = torch.ones_like(ids)
    mask[2, 9:] = 0  # a padded row
    labels = ids.clone()
    for row, prompt in enumerate((3, 6, 4)):
        labels[row, :prompt] = -100
    labels[2, 9:] = -100
    seen = []
    hook = model.get_output_embeddings().register_forward_hook(lambda m, args, out: seen.append(out.shape))
    with torch.no_grad():
        losses, counts = answer_token_losses(model, {"input_ids": ids, "attention_mask": mask, "labels": labels})
        hook.remove()
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                                                 labels[:, 1:].reshape(-1), ignore_index=-100, reduction="none")
    expected = expected[labels[:, 1:].reshape(-1) != -100]
    assert counts == [9, 6, 5] and seen[0][:-1] == (20,)  # 20 answer positions, not 3 rows x the union's 9
    assert torch.allclose(losses, expected, atol=1e-5)

    # packed: two records in one row, told apart by position ids (no 2D mask)
    packed = {"input_ids": ids[:1], "labels": labels[:1].clone(), "position_ids": torch.tensor([list(range(5)) +
                                                                                                list(range(7))])}
    packed["labels"][0, 5:7] = -100  # the second record's prompt
    with torch.no_grad():
        losses, counts = answer_token_losses(model, packed)
        full = model(input_ids=ids[:1], position_ids=packed["position_ids"], use_cache=False).logits[0, :-1]
    keep = packed["labels"][0, 1:] != -100
    assert counts == [int(keep.sum())]
    assert torch.allclose(losses, torch.nn.functional.cross_entropy(full[keep], packed["labels"][0, 1:][keep],
                                                                   reduction="none"), atol=1e-5)


def test_record_losses_are_each_records_own_loss_whatever_batch_it_shares():
    from conftest import tiny_model

    from course_utils.loss import answer_token_count, heldout_loss, record_losses, total_loss

    model = tiny_model("tinyllama-1.1b")
    torch.manual_seed(2)
    examples = []
    for n_prompt, n_answer in ((4, 6), (7, 3), (5, 5), (2, 8), (9, 2)):
        ids = torch.randint(5, 1000, (n_prompt + n_answer,)).tolist()
        examples.append({"input_ids": ids, "labels": [-100] * n_prompt + ids[n_prompt:]})
    together = record_losses(model, examples, pad=0, batch_size=8)
    alone = [record_losses(model, [e], pad=0, batch_size=1)[0] for e in examples]
    assert [n for _, n in together] == [6, 3, 5, 8, 2] == [n for _, n in alone]
    assert [answer_token_count(e) for e in examples] == [6, 3, 5, 8, 2]  # the benchmarks' and the report's count
    assert [s for s, _ in together] == pytest.approx([s for s, _ in alone], rel=1e-5)
    assert total_loss(together) == pytest.approx(heldout_loss(model, examples, pad=0, batch_size=2), rel=1e-6)

"""The course's loss: cross-entropy on answer tokens only (prompt and padding are masked with -100).

Training, the held-out evaluation during training, notebooks 05-07 and the benchmarks all use these, so
"held-out answer loss" means one thing everywhere: the mean cross-entropy (nats) per answer token,
the final EOS included, over all answer tokens of the records (a token-weighted mean, not a mean of
per-batch means).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .prompts import IGNORE, collate


def answer_loss_sum(model, batch) -> tuple[torch.Tensor, int]:
    """(sum of cross-entropy over answer tokens, number of answer tokens) for a padded batch.

    Asks the model for logits only at positions whose next token is an answer token in some row of
    the batch (``logits_to_keep``), so prompt and padding positions mostly never reach the output
    layer (for Gemma's 262k vocabulary that is most of the work). Everything runs inside the
    model's own forward, so DDP, DeepSpeed and FSDP wrappers see it.
    """
    labels = batch["labels"][:, 1:]
    keep = labels != IGNORE
    positions = keep.any(dim=0).nonzero().squeeze(1)  # hidden state t predicts token t + 1
    logits = model(input_ids=batch["input_ids"], **_masking(batch), logits_to_keep=positions, use_cache=False).logits
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels[:, positions].reshape(-1),
                           ignore_index=IGNORE, reduction="sum")
    return loss, int(keep.sum())


def _masking(batch) -> dict:
    """Packed rows: the library's block-diagonal mask from position ids, no 2D mask; else the padding mask."""
    if "position_ids" in batch:
        return {"position_ids": batch["position_ids"], "attention_mask": None}
    return {"attention_mask": batch["attention_mask"]}


def length_batches(lengths: list[int], batch_size: int, max_padding: float = 0.25) -> list[list[int]]:
    """Indices grouped into batches of at most ``batch_size``, shortest first, a batch closed before its padding
    would pass ``max_padding`` of its tokens. Evaluation is compute-bound on a CPU, where padding is pure cost: the
    smoke held-out set (4 records of 94-237 tokens) took 4.1 s in one padded batch and 3.3 s one by one; records of
    similar length still share a batch."""
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        batch = batches[-1] if batches else None
        if batch and len(batch) < batch_size and \
                (len(batch) + 1) * lengths[i] <= (1 + max_padding) * (sum(lengths[j] for j in batch) + lengths[i]):
            batch.append(i)
        else:
            batches.append([i])
    return batches


def answer_token_losses(model, batch) -> tuple[torch.Tensor, list[int]]:
    """(cross-entropy of each answer token of a padded batch, in row-major order; each row's number of answer tokens).

    Evaluation's counterpart of ``answer_loss_sum``: the output layer sees the answer positions themselves, not every
    position that predicts an answer token in *some* row. ``logits_to_keep`` takes a boolean (batch, sequence) mask
    for that (transformers 5.23, ``modeling_utils.slice_logits_to_keep``: the kept hidden states are flattened to
    (answer tokens, hidden) before the output layer), inside the model's own forward, so a final logit soft-cap still
    applies. Records of a batch have prompts of different lengths, so the row union is much wider: on Gemma's 262k
    vocabulary, 48 test records took 36.6 s through the union and 25.9 s this way (Benchmark 12), with the same loss.
    The evaluation during training uses it too (it picks the kept checkpoint; on a GPU in bf16 a near-tie between two
    checkpoints could round the other way). Training keeps the union: its packed rows gain less (52 % -> 45 % of
    positions), and other logit shapes round differently, which would change every stored adapter of 05-10.
    """
    labels = batch["labels"][:, 1:]
    keep = labels != IGNORE  # hidden state t predicts token t + 1; the last position predicts nothing
    logits = model(input_ids=batch["input_ids"], **_masking(batch), logits_to_keep=F.pad(keep, (0, 1)),
                   use_cache=False).logits
    losses = F.cross_entropy(logits.float(), labels[keep], reduction="none")
    return losses, keep.sum(dim=1).tolist()


@torch.no_grad()
def record_losses(model, examples: list[dict], pad: int, batch_size: int = 8) -> list[tuple[float, int]]:
    """(sum of answer-token cross-entropy in nats, number of answer tokens) of each encoded record, in order: one pass
    over ``examples`` in batches of similar length (``length_batches``). 05 keeps the test records' losses before
    and after training, and its report per kind of task adds them up instead of measuring again."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out: list[tuple[float, int]] = [(0.0, 0)] * len(examples)
    for indices in length_batches([len(e["input_ids"]) for e in examples], batch_size):
        batch = collate([examples[i] for i in indices], pad)
        losses, counts = answer_token_losses(model, {k: v.to(device) for k, v in batch.items()})
        for i, part in zip(indices, losses.split(counts), strict=True):
            out[i] = (float(part.sum()), len(part))
    model.train(was_training)
    return out


def answer_token_count(example: dict) -> int:
    """How many answer tokens an encoded record's loss is measured over: the labels after the first (a position
    predicts the next token) that are not masked, as ``answer_token_losses`` counts them."""
    return sum(1 for label in example["labels"][1:] if label != IGNORE)


def check_record_losses(examples: list[dict], losses: list[tuple[float, int]]) -> None:
    """Refuse ``losses`` measured elsewhere (``record_losses``' output) unless they fit ``examples``: one per record,
    each over the record's own number of answer tokens. Losses of other records, or in another order, fail here
    instead of being added up under the wrong kind of task."""
    expected = [answer_token_count(e) for e in examples]
    if len(losses) != len(expected):
        raise ValueError(f"레코드 {len(expected)}개에 손실이 {len(losses)}개입니다: 같은 레코드를 같은 순서로 잰 손실"
                         "(loss.record_losses)을 주세요")
    for i, ((_, n), want) in enumerate(zip(losses, expected, strict=True)):
        if n != want:
            raise ValueError(f"레코드 {i}의 답 토큰은 {want}개인데 주어진 손실은 {n}개 토큰으로 잰 것입니다: 같은 레코드를 "
                             "같은 순서로 잰 손실(loss.record_losses)을 주세요")


def total_loss(losses: list[tuple[float, int]]) -> float:
    """Token-weighted mean (nats per answer token) of ``record_losses``' output."""
    return sum(s for s, _ in losses) / sum(n for _, n in losses)


def heldout_loss_sum(model, examples: list[dict], pad: int, batch_size: int = 8) -> tuple[float, int]:
    """(sum of answer-token cross-entropy in nats, number of answer tokens) over ``examples`` (encoded records)."""
    losses = record_losses(model, examples, pad, batch_size)
    return sum(s for s, _ in losses), sum(n for _, n in losses)


def heldout_loss(model, examples: list[dict], pad: int, batch_size: int = 8) -> float:
    """Mean cross-entropy per answer token (nats) over ``examples`` (encoded records)."""
    return total_loss(record_losses(model, examples, pad, batch_size))


@torch.no_grad()
def answer_logits(model, examples: list[dict], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(fp32 logits of every position that predicts an answer token, as (answer tokens, vocabulary) on the CPU; those
    answer tokens): what the held-out loss reads, one record at a time. The logits of every position of a batch
    would be vocabulary-sized per token (Gemma's 262,144: 1.6 GiB for 8 records of 200 tokens); these are the part a
    merge or an export must reproduce. ``F.cross_entropy(logits, tokens)`` is the held-out loss of ``examples``."""
    device = next(model.parameters()).device
    model.eval()
    logits, tokens = [], []
    for example in examples:
        batch = collate([example], pad)
        labels = batch["labels"][0, 1:]
        keep = (labels != IGNORE).nonzero().squeeze(1)  # hidden state t predicts token t + 1
        out = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
                    logits_to_keep=keep.to(device), use_cache=False).logits
        logits.append(out[0].float().cpu())
        tokens.append(labels[keep])
    return torch.cat(logits), torch.cat(tokens)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest |a - b| (two ``answer_logits`` of the same records)."""
    return (a - b).abs().max().item()

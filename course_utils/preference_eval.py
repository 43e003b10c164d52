"""Measuring preference tuning (notebook 10): DPO's implicit reward on test pairs, and 06's measures, for the SFT
adapter and what DPO and ORPO made of it, on one scale."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def answer_logps(model, tokenizer, pairs: list[dict], template: str, max_length: int, batch_size: int = 8):
    """Summed log-probability of the chosen and of the rejected answer (with EOS) of each pair: two tensors."""
    from .prompts import collate, encode, pad_id

    out = []
    model.eval()
    device = next(model.parameters()).device
    for side in ("chosen", "rejected"):
        examples = [encode({**p, "output": p[side]}, tokenizer, max_length, template) for p in pairs]
        order = sorted(range(len(examples)), key=lambda i: len(examples[i]["input_ids"]))  # less padding
        sums = torch.zeros(len(examples))
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            batch = collate([examples[i] for i in chunk], pad_id(tokenizer))
            labels = batch["labels"][:, 1:]
            # logits only where some row's next token is an answer token (hidden state t predicts token t + 1):
            # every position's logits would be vocabulary-sized (Gemma: 262,144 per token)
            positions = (labels != -100).any(dim=0).nonzero().squeeze(1)
            with torch.no_grad():
                logits = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
                               logits_to_keep=positions.to(device)).logits
                labels = labels[:, positions].to(logits.device)
                # one row at a time: a batch's log-softmax would be a second vocabulary-sized copy of its logits
                for row, i in enumerate(chunk):
                    logp = torch.log_softmax(logits[row].float(), -1).gather(-1, labels[row].clamp(min=0)[:, None])
                    sums[i] = (logp.squeeze(-1) * (labels[row] != -100)).sum().cpu()
            del logits, logp
        out.append(sums)
    return out[0], out[1]


@dataclass(frozen=True)
class RewardStats:
    """DPO's implicit reward r = beta * (log p_policy - log p_reference) on pairs; the reference is the base (adapter
    off) for every model compared, so SFT, DPO and ORPO are measured on one scale."""

    correct: int  # pairs whose chosen reward is above the rejected one
    pairs: int
    margin: float  # mean of r(chosen) - r(rejected)
    chosen: float  # mean r(chosen)
    rejected: float  # mean r(rejected)
    wins: tuple[bool, ...] = ()  # per pair, in order: chosen above rejected

    @property
    def accuracy(self) -> float:
        return self.correct / self.pairs


def reward_stats(model, tokenizer, pairs: list[dict], template: str, beta: float, max_length: int,
                 batch_size: int = 8, reference=None) -> RewardStats:
    """``RewardStats`` of a PEFT model on ``pairs`` (adapter on: the policy; adapter off: the reference).
    ``reference``: the reference's (chosen, rejected) log-probabilities when already measured (``answer_logps``)."""
    policy = answer_logps(model, tokenizer, pairs, template, max_length, batch_size)
    if reference is None:
        with model.disable_adapter():
            reference = answer_logps(model, tokenizer, pairs, template, max_length, batch_size)
    chosen, rejected = beta * (policy[0] - reference[0]), beta * (policy[1] - reference[1])
    wins = chosen > rejected
    return RewardStats(correct=int(wins.sum()), pairs=len(pairs), margin=float((chosen - rejected).mean()),
                       chosen=float(chosen.mean()), rejected=float(rejected.mean()), wins=tuple(wins.tolist()))


def chance_probability(correct: int, pairs: int) -> float:
    """P(at least ``correct`` of ``pairs`` right by coin flips): how surprising the accuracy is at chance (50 %)."""
    return sum(math.comb(pairs, k) for k in range(correct, pairs + 1)) / 2 ** pairs


def compare_models(models: dict, tokenizer, profile, test_pairs: list[dict], records: list[dict],
                   probes: list[dict]) -> dict:
    """``measure`` for each named model (SFT, after DPO, after ORPO: adapters on one base, loaded alike by
    ``load_policy``), the base's log-probabilities (the reference, adapter off) measured once for all."""
    first = next(iter(models.values()))
    with first.disable_adapter():
        reference = answer_logps(first, tokenizer, test_pairs, profile.data.template, profile.preference.max_length,
                                 profile.train.eval_batch_size)
    return {name: measure(model, tokenizer, profile, test_pairs, records, probes, reference)
            for name, model in models.items()}


def measure(model, tokenizer, profile, test_pairs: list[dict], records: list[dict], probes: list[dict],
            reference=None) -> dict:
    """One model's row of notebook 10's comparison: ``RewardStats`` on the test pairs, then 06's measures under
    plain greedy decoding (no repetition penalty, so loops show): loops, EOS and chrF on test records, probe answers
    graded by 06's grader, and the answers of both that drift out of Korean (``purity.drift``)."""
    from .evaluation import Count, answers_only
    from .grading import grade
    from .inference import PLAIN_GREEDY, generate_batch
    from .memory import drop_autocast_wrapper
    from .purity import drifted

    drop_autocast_wrapper(model)  # measured as the model computes by itself, as the SFT row is, not under training's AMP
    p, t, template = profile.preference, profile.train, profile.data.template
    rewards = reward_stats(model, tokenizer, test_pairs, template, p.beta, p.max_length, t.eval_batch_size, reference)
    held = answers_only(model, tokenizer, records, template, t.answer_tokens, t.eval_batch_size, **PLAIN_GREEDY)
    answers = generate_batch(model, tokenizer, [(q["question"], "") for q in probes], template, t.answer_tokens,
                             t.eval_batch_size, **PLAIN_GREEDY)
    right = sum(grade(a["answer"], q).correct for a, q in zip(answers, probes, strict=True))
    texts = [r["answer"] for r in held["answers"]] + [a["answer"] for a in answers]
    asked = [r["instruction"] + "\n" + r.get("input", "") for r in records] + [q["question"] for q in probes]
    out = drifted(texts, asked)  # answers that left Korean (Han, kana, a Latin sentence) beyond their question
    return {"rewards": rewards, "chrf": held["chrf"], "eos": held["eos"], "degenerate": held["degenerate"],
            "probes": Count(right, len(probes)), "answers": held["answers"], "probe_answers": answers,
            "drift": Count(len(out), len(texts)), "drift_examples": [(texts[i], why) for i, why in out]}


def compare_sentence(name: str, result: dict, base: dict) -> str:
    """One sentence from ``measure`` rows: what preference tuning changed against the SFT adapter, worse ones named."""
    r, b = result["rewards"], base["rewards"]
    rows = [("보상 정확도", f"{b.correct}/{b.pairs}", f"{r.correct}/{r.pairs}", r.correct - b.correct),
            ("반복 답", base["degenerate"].hits, result["degenerate"].hits,
             base["degenerate"].hits - result["degenerate"].hits),
            ("EOS로 끝남", base["eos"].hits, result["eos"].hits, result["eos"].hits - base["eos"].hits),
            ("chrF", f"{base['chrf']:.1f}", f"{result['chrf']:.1f}", round(result["chrf"], 1) - round(base["chrf"], 1)),
            ("확인 질문 정답", base["probes"].hits, result["probes"].hits, result["probes"].hits - base["probes"].hits),
            ("한국어를 벗어난 답", base["drift"].hits, result["drift"].hits, base["drift"].hits - result["drift"].hits)]
    said = [f"{label} {old} → {new} ({'나아짐' if gain > 0 else '나빠짐' if gain < 0 else '같음'})"
            for label, old, new, gain in rows]
    worse = [label for label, _, _, gain in rows if gain < 0]
    tail = f" SFT보다 나빠진 것: {', '.join(worse)}." if worse else " SFT보다 나빠진 지표는 없습니다."
    if rows[0][3] > 0 and rows[3][3] < 0:
        tail += " 보상 정확도는 올랐는데 chrF는 떨어졌습니다: 쌍을 가르는 법은 배웠지만 답의 글은 참고 답에서 멀어졌습니다."
    return f"{name}: " + ", ".join(said) + "." + tail

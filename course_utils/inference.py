"""Generate answers with the course's prompt template, and score the probe questions."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .grading import Grade, grade
from .prompts import KOALPACA, format_record, prompt_ids

# The course's decoding defaults, chosen by measurement on the dev split (notebook 06 measures the comparison again in
# every run, on 32 dev records, never on test). The cpu profile's v2 adapter, 2026-12-07: plain greedy decoding looped
# in 1/32 answers and ended 17/32 at EOS (chrF 15.8); greedy with repetition_penalty 1.1 looped in 0/32 and ended 24/32
# at EOS, at a lower chrF (12.9). 1.2 cost more chrF (10.4), no_repeat_ngram_size 3 more still (9.7). The default
# trades that chrF for answers that stop by themselves. (The 583-record adapter, 2026-12-06, showed the same trade:
# chrF 21.4 -> 19.2, EOS 27/32 -> 31/32.)
DEFAULT_DECODING = {"do_sample": False, "repetition_penalty": 1.1}
# Greedy decoding with nothing added, the measure of what a model does by itself (loops show): 06's robustness
# pass, 10's pairs from the adapter's own mistakes, 10's comparison, and benchmark 11's rebuilt pre-split evaluation.
PLAIN_GREEDY = {"do_sample": False, "repetition_penalty": 1.0}


def generate_answer(model, tokenizer, instruction: str, input_text: str = "", template: str = KOALPACA,
                    max_new_tokens: int = 48, **generate_kwargs) -> str:
    """The model's answer to one instruction (``DEFAULT_DECODING`` unless other arguments are given)."""
    return answer_with_stats(model, tokenizer, instruction, input_text, template, max_new_tokens,
                             **generate_kwargs)["answer"]


@dataclass(frozen=True)
class ProbeResult:
    question: str
    answer: str
    grade: Grade  # grading.grade: right only with an accepted answer and no competitor in the first sentence

    @property
    def correct(self) -> bool:
        return self.grade.correct


def run_probes(model, tokenizer, probes: list[dict], template: str = KOALPACA,
               max_new_tokens: int = 24) -> list[ProbeResult]:
    """Answers to the probe questions (``DEFAULT_DECODING``, generated together: ``generate_batch``), each graded by
    ``grading.grade``."""
    answers = generate_batch(model, tokenizer, [(p["question"], "") for p in probes], template, max_new_tokens)
    return [ProbeResult(question=p["question"], answer=a["answer"], grade=grade(a["answer"], p))
            for p, a in zip(probes, answers, strict=True)]


def hangul_share(text: str) -> float:
    """Share of non-space characters that are Hangul syllables (U+AC00..U+D7A3), 0..1."""
    chars = [c for c in text if not c.isspace()]
    return sum("\uac00" <= c <= "\ud7a3" for c in chars) / len(chars) if chars else 0.0


def instruction_ids(tokenizer, instruction: str, input_text: str = "", template: str = KOALPACA) -> list[int]:
    """The token ids of one instruction's prompt (the template up to where the answer starts)."""
    prompt, _ = format_record({"instruction": instruction, "input": input_text, "output": ""}, tokenizer, template)
    return prompt_ids(prompt, tokenizer, template)


def prompt_tensor(model, tokenizer, instruction: str, input_text: str = "", template: str = KOALPACA) -> torch.Tensor:
    """The prompt of one instruction as a (1, tokens) id tensor on the model's device."""
    return torch.tensor([instruction_ids(tokenizer, instruction, input_text, template)],
                        device=next(model.parameters()).device)


@torch.no_grad()
def answer_with_stats(model, tokenizer, instruction: str, input_text: str = "", template: str = KOALPACA,
                      max_new_tokens: int = 48, **generate_kwargs) -> dict:
    """Generate one answer and measure it: text, new tokens, whether it stopped at EOS, seconds."""
    import time

    ids = prompt_tensor(model, tokenizer, instruction, input_text, template)
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id,
                         **{**DEFAULT_DECODING, **generate_kwargs})
    seconds = time.perf_counter() - start
    model.train(was_training)
    new = out[0, ids.shape[1]:].tolist()
    return {"answer": tokenizer.decode(new, skip_special_tokens=True).strip(), "new_tokens": len(new),
            "stopped_at_eos": tokenizer.eos_token_id in new, "seconds": seconds}


def quality_signals(rows: list[dict]) -> dict:
    """Summary of ``answer_with_stats`` rows: EOS stop share, Hangul share, tokens per second."""
    return {"eos_stop_share": sum(r["stopped_at_eos"] for r in rows) / len(rows),
            "hangul_share": sum(hangul_share(r["answer"]) for r in rows) / len(rows),
            "tokens_per_second": sum(r["new_tokens"] for r in rows) / sum(r["seconds"] for r in rows)}


def stream_answer(model, tokenizer, instruction: str, template: str = KOALPACA, max_new_tokens: int = 48,
                  printer=None, **generate_kwargs) -> str:
    """Print the answer token by token as it is generated (``TextIteratorStreamer``); return it."""
    from threading import Thread

    from transformers import TextIteratorStreamer

    printer = printer or (lambda piece: print(piece, end="", flush=True))
    ids = prompt_tensor(model, tokenizer, instruction, template=template)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    kwargs = dict(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                  eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id, streamer=streamer,
                  **{**DEFAULT_DECODING, **generate_kwargs})
    thread = Thread(target=model.generate, kwargs=kwargs)
    thread.start()
    pieces = []
    for piece in streamer:
        printer(piece)
        pieces.append(piece)
    thread.join()
    printer("\n")
    return "".join(pieces).strip()


@torch.no_grad()
def generate_batch(model, tokenizer, questions: list[tuple[str, str]], template: str = KOALPACA,
                   max_new_tokens: int = 48, batch_size: int = 8, seed: int = 0, **decoding) -> list[dict]:
    """Answers to many (instruction, input) pairs, ``batch_size`` at a time (left-padded), in the given order.

    Each row: answer text, new_tokens (up to and including EOS), stopped_at_eos, hit_limit (stopped by
    ``max_new_tokens`` instead). ``DEFAULT_DECODING`` unless ``decoding`` overrides it; sampling is seeded.
    Prompts of similar length are batched together (less padding); batched greedy answers can differ from
    one-at-a-time ones where two tokens tie to float rounding.
    """
    device = next(model.parameters()).device
    eos = tokenizer.eos_token_id
    # left padding must not be the EOS id (SmolLM2's pad is its EOS): repetition_penalty counts every input id,
    # so padded rows would be pushed away from ending. Masked by attention, the pad id is never seen otherwise.
    pad = next(i for i in (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.unk_token_id, 0)
               if i is not None and i != eos)
    prompts = [instruction_ids(tokenizer, q, i, template) for q, i in questions]
    order = sorted(range(len(prompts)), key=lambda k: len(prompts[k]))
    rows: dict[int, dict] = {}
    was_training = model.training
    model.eval()
    torch.manual_seed(seed)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        width = max(len(prompts[k]) for k in chunk)
        ids = torch.tensor([[pad] * (width - len(prompts[k])) + prompts[k] for k in chunk], device=device)
        mask = torch.tensor([[0] * (width - len(prompts[k])) + [1] * len(prompts[k]) for k in chunk], device=device)
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, eos_token_id=eos,
                             pad_token_id=pad, **{**DEFAULT_DECODING, **decoding})
        for row, k in zip(out[:, width:].tolist(), chunk, strict=True):
            new = row[: row.index(eos) + 1] if eos in row else row
            rows[k] = {"answer": tokenizer.decode(new, skip_special_tokens=True).strip(), "new_tokens": len(new),
                       "stopped_at_eos": eos in new, "hit_limit": eos not in new and len(new) >= max_new_tokens}
    model.train(was_training)
    return [rows[k] for k in range(len(prompts))]

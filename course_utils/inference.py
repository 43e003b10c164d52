"""Generate answers with the course's prompt template, and score the probe questions."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .prompts import KOALPACA, format_record, prompt_ids


def generate_answer(model, tokenizer, instruction: str, input_text: str = "", template: str = KOALPACA,
                    max_new_tokens: int = 48, **generate_kwargs) -> str:
    """The model's answer to one instruction (greedy unless sampling arguments are given)."""
    return answer_with_stats(model, tokenizer, instruction, input_text, template, max_new_tokens,
                             **generate_kwargs)["answer"]


@dataclass(frozen=True)
class ProbeResult:
    question: str
    expected: str
    answer: str

    @property
    def correct(self) -> bool:
        return self.expected in self.answer


def run_probes(model, tokenizer, probes: list[dict], template: str = KOALPACA,
               max_new_tokens: int = 24) -> list[ProbeResult]:
    """Greedy answers to the probe questions; ``correct`` = the expected text appears in the answer."""
    return [ProbeResult(p["question"], p["expected"],
                        generate_answer(model, tokenizer, p["question"], template=template, max_new_tokens=max_new_tokens))
            for p in probes]


def probe_accuracy(results: list[ProbeResult]) -> float:
    """Share of probe answers that contain the expected text (0..1)."""
    return sum(r.correct for r in results) / len(results)


def hangul_share(text: str) -> float:
    """Share of non-space characters that are Hangul syllables (U+AC00..U+D7A3), 0..1."""
    chars = [c for c in text if not c.isspace()]
    return sum("\uac00" <= c <= "\ud7a3" for c in chars) / len(chars) if chars else 0.0


def prompt_tensor(model, tokenizer, instruction: str, input_text: str = "", template: str = KOALPACA) -> torch.Tensor:
    """The prompt of one instruction as a (1, tokens) id tensor on the model's device."""
    prompt, _ = format_record({"instruction": instruction, "input": input_text, "output": ""}, tokenizer, template)
    return torch.tensor([prompt_ids(prompt, tokenizer, template)], device=next(model.parameters()).device)


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
                         **{"do_sample": False, **generate_kwargs})
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
                  **{"do_sample": False, **generate_kwargs})
    thread = Thread(target=model.generate, kwargs=kwargs)
    thread.start()
    pieces = []
    for piece in streamer:
        printer(piece)
        pieces.append(piece)
    thread.join()
    printer("\n")
    return "".join(pieces).strip()

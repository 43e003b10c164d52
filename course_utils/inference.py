"""Generate answers with the course's prompt template, and score the probe questions."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .prompts import KOALPACA, format_record, prompt_ids


@torch.no_grad()
def generate_answer(model, tokenizer, instruction: str, input_text: str = "", template: str = KOALPACA,
                    max_new_tokens: int = 48, **generate_kwargs) -> str:
    """The model's answer to one instruction (greedy unless sampling arguments are given)."""
    prompt, _ = format_record({"instruction": instruction, "input": input_text, "output": ""}, tokenizer, template)
    ids = torch.tensor([prompt_ids(prompt, tokenizer, template)], device=next(model.parameters()).device)
    was_training = model.training
    model.eval()
    kwargs = {"do_sample": False, **generate_kwargs}
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id, **kwargs)
    model.train(was_training)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()


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

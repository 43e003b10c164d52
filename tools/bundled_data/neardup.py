"""Near-duplicates between two lists of texts by chrF (sacrebleu's sentence chrF, the course's metric).

Scoring every pair exactly is slow (1,700 x 1,200 pairs of sentence chrF is minutes on 2 cores), so candidates are
found first by the cosine of hashed character 3-gram counts, and chrF is computed for each text's ``top`` most
similar texts and for every pair whose cosine passes ``cosine_floor``. A pair with chrF >= 80 shares most of its
character 1- to 6-grams both ways, so its 3-gram cosine is high: 0.5 is far below what such a pair shows
(tests/test_bundled_shape.py measures the lowest cosine of the known near-duplicates it plants).
"""
from __future__ import annotations

import zlib

import numpy as np

DIM = 1 << 14


def _vectors(texts: list[str]) -> np.ndarray:
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    for i, text in enumerate(texts):
        t = " ".join(text.split())
        for j in range(max(1, len(t) - 2)):
            out[i, zlib.crc32(t[j:j + 3].encode()) % DIM] += 1
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-9)


def cosines(ours: list[str], theirs: list[str]) -> np.ndarray:
    """Cosine of hashed character 3-gram counts, ``len(ours) x len(theirs)``."""
    return _vectors(ours) @ _vectors(theirs).T


def near_duplicates(ours: list[str], theirs: list[str], threshold: float = 80.0, top: int = 3,
                    cosine_floor: float = 0.5) -> list[tuple[int, int, float]]:
    """(index in ours, index in theirs, chrF) of every candidate pair with chrF >= ``threshold``, highest first."""
    from sacrebleu.metrics import CHRF

    metric, sims, found = CHRF(), cosines(ours, theirs), []
    for i in range(len(ours)):
        candidates = set(np.argsort(-sims[i])[:top].tolist()) | set(np.nonzero(sims[i] >= cosine_floor)[0].tolist())
        for j in candidates:
            score = metric.sentence_score(ours[i], [theirs[j]]).score
            if score >= threshold:
                found.append((i, j, score))
    return sorted(found, key=lambda f: -f[2])

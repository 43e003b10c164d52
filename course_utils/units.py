"""Byte units for printing (binary: 1 MiB = 1024**2 bytes, 1 GiB = 1024**3 bytes)."""
from __future__ import annotations

MIB = 1024**2
GIB = 1024**3


def mib(n_bytes: float) -> str:
    """``12.34 MiB``."""
    return f"{n_bytes / MIB:,.2f} MiB"


def gib(n_bytes: float) -> str:
    """``1.23 GiB``."""
    return f"{n_bytes / GIB:,.2f} GiB"


def pct_error(estimate: float, measured: float) -> float:
    """Signed error of an estimate in percent of the measurement (0 when both are 0)."""
    if measured == 0:
        return 0.0 if estimate == 0 else float("inf")
    return 100.0 * (estimate - measured) / measured

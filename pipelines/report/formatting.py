"""How numbers look in the report (also registered as template filters by rendering.py)."""
from __future__ import annotations

import math


def fmt_stat(value) -> str:
    """Dataset statistics: 19,868 / 2,387.3 / 48.4 / 0.153."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}" if abs(value) >= 10000 or float(value).is_integer() else f"{value:,.1f}"
    if float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.4g}"


def fmt_value(value) -> str:
    """Hyperparameters, scores and last-epoch metrics: 4 significant digits, 3 when tiny or huge."""
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.3g}"
        return f"{value:.4g}"
    return "—" if value is None else str(value)


def thousands(value) -> str:
    """Counts: 19868 -> 19,868."""
    return f"{value:,}"


def describe(exc: BaseException) -> str:
    """An error as a section shows it: its type and message."""
    return f"{type(exc).__name__}: {exc}"

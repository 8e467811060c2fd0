"""Typing text cells from outside, shared by every reader."""

from __future__ import annotations

import pandas as pd


def whole_numbers(series: pd.Series, bound: float) -> tuple[pd.Series, pd.Series]:
    """Whole numbers below ``bound`` in size, and a mask of cells that held something else ("3.5", "tiga",
    1e30). Empty cells are missing, not wrong."""
    numbers = pd.to_numeric(series, errors="coerce")
    whole = numbers.where((numbers % 1 == 0) & numbers.abs().lt(bound))
    return whole.astype("Int64"), series.notna() & series.ne("") & whole.isna()

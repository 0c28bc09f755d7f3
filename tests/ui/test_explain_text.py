"""How the Explain view writes numbers: short, at most 4 significant digits, and read
back as the value they stand for."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from cnnstudio.ui.explain.arithmetic_text import cell_colour, fmt


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12))
def test_a_number_reads_back_within_its_four_digits(value: float) -> None:
    text = fmt(value)
    back = float(text.replace("−", "-"))
    assert math.isclose(back, value, rel_tol=5e-4, abs_tol=5e-4 * 1e-3)
    assert len(text.replace("−", "")) <= 10


def test_special_values_and_signs() -> None:
    assert fmt(0.0) == fmt(-0.0) == "0"
    assert fmt(-0.12345) == "−0.1235"
    assert fmt(float("-inf")) == "−∞"
    assert fmt(12346.0) == "1.235e4" and fmt(0.00012344) == "1.234e−4"
    assert cell_colour(1.0, 1.0)[0] > cell_colour(1.0, 1.0)[2]  # positive: warm
    assert cell_colour(-1.0, 1.0)[2] > cell_colour(-1.0, 1.0)[0]  # negative: cool

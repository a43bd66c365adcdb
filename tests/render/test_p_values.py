"""A p-value below what the test can carry prints as ``<1e-16``, never ``p=0`` (a claim of certainty)."""

from __future__ import annotations

from energybench import units
from energybench.render.cells import evidence, short_evidence
from energybench.verdicts.baseline import VsBaseline


def _claim(p: float, p_adjusted: float) -> VsBaseline:
    return VsBaseline(ratio=0.3, ci_low=0.28, ci_high=0.32, p=p, p_adjusted=p_adjusted, n=12, test="paired t",
                      outcome="saves")


def test_a_p_that_underflows_reads_below_the_floor_not_zero():
    assert units.p_value(0.0) == "<1e-16" and units.p_is(0.0) == "<1e-16"
    assert units.p_value(0.0113) == "0.011" and units.p_is(0.0113) == "=0.011" and units.p_is(3e-14) == "=3e-14"
    assert short_evidence(_claim(0.0, 0.0)) == "adj. p<1e-16, n=12"
    assert evidence(_claim(0.0, 0.0)) == "p<1e-16 (adj. <1e-16), n=12"
    assert evidence(_claim(0.002, 0.011)) == "p=0.002 (adj. 0.011), n=12"

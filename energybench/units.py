"""Numbers with units as people write them: 27.3 nJ, 55.6 ug, 2.02k token/s, +3.1%.

Every figure a user reads goes through here, so a joule reads the same in a terminal, a PR comment and
an HTML page, and nothing prints as ``2.73e-05 mJ``. Pure and dependency-free: the lowest layer of the
package may use it (``Measurement.__str__``).
"""

from __future__ import annotations

import math

# (exponent, prefix): from the largest down; "u" rather than "µ" so terminals and CSV never mangle it
_PREFIXES = ((18, "E"), (15, "P"), (12, "T"), (9, "G"), (6, "M"), (3, "k"), (0, ""), (-3, "m"), (-6, "u"),
             (-9, "n"), (-12, "p"), (-15, "f"))
NA = "n/a"


def _finite(value: float | None) -> bool:
    return value is not None and not isinstance(value, bool) and math.isfinite(value)


def si(value: float | None, unit: str = "", digits: int = 3, space: bool = True) -> str:
    """``value`` with an SI prefix and ``digits`` significant digits: ``si(2.73e-8, "J") == "27.3 nJ"``.

    NaN and None read ``n/a``; zero reads ``0 J``. The prefix is chosen after rounding, so 999.96 J is
    ``1 kJ``, never ``1e+03 J``.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NA
    sep = " " if space and unit else ""
    if math.isinf(value):
        return f"{'-' if value < 0 else ''}inf{sep}{unit}"
    if value == 0:
        return f"0{sep}{unit}"
    magnitude = abs(value)
    for exponent, prefix in _PREFIXES:
        scaled = magnitude / 10**exponent
        if scaled >= 1 or exponent == _PREFIXES[-1][0]:
            rounded = float(f"{scaled:.{digits}g}")
            if rounded >= 1000 and exponent < _PREFIXES[0][0]:
                exponent += 3
                prefix = next(p for e, p in _PREFIXES if e == exponent)
                rounded = float(f"{magnitude / 10**exponent:.{digits}g}")
            text = f"{rounded:.{digits}g}"
            if "e" in text:  # beyond the table's range: plain scientific notation is all that is left
                text = f"{magnitude / 10**exponent:.{digits - 1}e}"
            return f"{'-' if value < 0 else ''}{text}{sep}{prefix}{unit}"
    return f"{value:.{digits}g}{sep}{unit}"  # pragma: no cover - the loop always returns


def joules(value: float | None) -> str:
    return si(value, "J")


def grams(value: float | None) -> str:
    """CO2e mass: SI prefixes up to kg, then tonnes (``t``) as carbon accounting writes them."""
    if _finite(value) and abs(value) >= 1e6:  # type: ignore[arg-type]
        return si(value / 1e6, "t")  # type: ignore[operator]
    if _finite(value) and abs(value) >= 1e3:  # type: ignore[arg-type]
        return si(value / 1e3, "kg")  # type: ignore[operator]
    return si(value, "g")


def watts(value: float | None) -> str:
    return si(value, "W")


def seconds(value: float | None) -> str:
    """Durations: ns to s with prefixes, then minutes and hours (``2.5 min``, ``1.2 h``)."""
    if not _finite(value):
        return NA if value is None or math.isnan(value) else si(value, "s")
    if abs(value) >= 7200:  # type: ignore[arg-type]
        return f"{value / 3600:.3g} h"  # type: ignore[operator]
    if abs(value) >= 120:  # type: ignore[arg-type]
        return f"{value / 60:.3g} min"  # type: ignore[operator]
    return si(value, "s")


def count(value: float | None, digits: int = 3) -> str:
    """A plain quantity with an SI prefix and no space: ``2.02k``, ``1.5M``, ``512``, ``0.748`` (no milli- for
    a count: nobody writes 748m runs)."""
    if value is not None and _finite(value) and abs(value) < 1000:
        return f"{value:.{digits}g}"
    return si(value, "", digits=digits, space=False)


def rate(value: float | None, unit: str = "") -> str:
    """Items per second: ``2.02k token/s`` (``2.02k/s`` without a unit)."""
    if value is None or not _finite(value):
        return NA
    return f"{count(value)} {unit}/s" if unit else f"{count(value)}/s"


def per(value_text: str, unit: str | None) -> str:
    """``27.3 nJ/token``; the unit left off when there is none."""
    return f"{value_text}/{unit}" if unit and value_text != NA else value_text


def percent(fraction: float | None, signed: bool = False) -> str:
    """A fraction as a percentage, the one rounding rule every table uses: one decimal below 10%
    (``3.1%``), none from 10% (``38%``); ``signed`` adds ``+`` to increases (changes)."""
    if fraction is None or not _finite(fraction):
        return NA
    pct = fraction * 100
    digits = 1 if abs(pct) < 9.95 else 0
    text = f"{pct:+.{digits}f}%" if signed else f"{pct:.{digits}f}%"
    return text.replace("-0.0%", "0.0%").replace("+0.0%", "0.0%") if signed else text


def change(fraction: float | None) -> str:
    """A relative change: ``+12%``, ``-3.1%``, ``0.0%``."""
    return percent(fraction, signed=True)


#: p-values below this print as ``<1e-16``: a figure far below it (or a 0 from underflow) claims more than the test's
#: assumptions can carry, and "p=0" would claim certainty.
P_FLOOR = 1e-16


def p_value(p: float, digits: int = 2) -> str:
    """``0.011``, or ``<1e-16`` for a p below ``P_FLOOR`` (``nan`` as is)."""
    return f"<{P_FLOOR:g}" if p < P_FLOOR else f"{p:.{digits}g}"


def p_is(p: float, digits: int = 2) -> str:
    """``=0.011`` or ``<1e-16``: to follow a label, as in ``p=0.011`` and ``p<1e-16``."""
    text = p_value(p, digits)
    return text if text.startswith("<") else f"={text}"


def ratio(value: float | None) -> str:
    """A ratio to a baseline: ``0.62x``."""
    return NA if value is None or not _finite(value) else f"{value:.2f}x"


def interval(low: float | None, high: float | None, fmt=si) -> str:  # noqa: ANN001 - a formatter callable
    """``[low, high]`` in the value's own format, or empty when either end is unknown."""
    if not (_finite(low) and _finite(high)):
        return ""
    return f"[{fmt(low)}, {fmt(high)}]"


def compact_interval(low: float | None, high: float | None, value: float | None, fmt=si) -> str:  # noqa: ANN001
    """``[26.9, 27.8]`` when both ends read in the same unit and prefix as ``value`` (``27.3 nJ``), else the
    full ``[999 pJ, 1.03 nJ]``: a narrow table shows the unit once."""
    full = interval(low, high, fmt)
    if not full:
        return ""
    lo, hi, mid = fmt(low), fmt(high), fmt(value)
    unit = mid.partition(" ")[2]
    if unit and lo.endswith(" " + unit) and hi.endswith(" " + unit):
        return f"[{lo.partition(' ')[0]}, {hi.partition(' ')[0]}]"
    return full


def intensity(g_per_kwh: float | None) -> str:
    """A grid factor: ``56 gCO2e/kWh`` (three significant digits, no prefix: nobody writes kgCO2e/MWh here)."""
    return NA if g_per_kwh is None or not _finite(g_per_kwh) else f"{g_per_kwh:.3g} gCO2e/kWh"


def is_number(text: str) -> bool:
    """Whether ``text`` reads as a number (``float`` accepts it): a CSV cell's or a header's test."""
    try:
        float(text)
    except ValueError:
        return False
    return True

"""One provenance per comparison: ``modeled`` figures are never compared with ``measured`` or ``estimated`` ones.

A modeled joule (counted events x per-event energies, ``energybench.counted``) and a measured one are different
quantities: the first leaves out idle power, other processes, frequency and everything the profile does not
price, so a ratio of the two says nothing about a change in the code. Comparing them is always a mistake (a
baseline saved with the other meter), and it is refused with both provenances named, before any row is built.
``measured`` and ``estimated`` stay comparable with each other, as they always were (the rows say which).
"""

from __future__ import annotations

from collections.abc import Sequence

from energybench.errors import ResultsError
from energybench.record import Run

MODELED = "modeled"


def provenance(run: Run) -> str:
    """``modeled``, ``measured`` or ``estimated`` as every benchmark with rounds is; ``modeled and measured`` (or
    ``estimated``) for a run that holds both kinds; ``none`` without rounds."""
    sources = {b.source for b in run.benchmarks} - {"none"}
    if not sources:
        return "none"
    others = sources - {MODELED}
    sampled = "measured" if others == {"measured"} else "estimated"
    if MODELED in sources:
        return f"{MODELED} and {sampled}" if others else MODELED
    return sampled


def check_same_provenance(base: Run, new: Run, history: Sequence[Run] = ()) -> None:
    """``ResultsError`` naming both provenances when ``new`` and ``base`` (or a run of ``history``) are not both
    modeled or both not; runs without rounds pass (there is nothing to compare)."""
    theirs = provenance(new)
    for run in (base, *history):
        ours = provenance(run)
        if "none" in (ours, theirs) or (ours == MODELED) == (theirs == MODELED) and " and " not in ours + theirs:
            continue
        raise ResultsError(
            f"run {run.label} is {ours} and run {new.label} is {theirs}: modeled energy (counted events x per-event "
            "energies) is never compared with measured or estimated energy; compare two counted runs "
            "(--energy-meter counted, --meter counted) or two runs of the sampled meter"
        )

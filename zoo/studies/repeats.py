"""Repeated runs of an ablation: the mean and spread per variant, and which differences are beyond the noise.

With `seeds: [0, 1, 2]` every variant trains once per seed. `summarize` folds the runs of each
variant into mean and sample standard deviation. `compare` calls the difference of two variants
above the noise when it exceeds twice its standard error, sqrt(s_a^2/n_a + s_b^2/n_b): roughly,
when the seeds' spread could not have made it by chance. `axis_effects` applies it to the pairs
of variants that differ in one axis only (all other axes equal); a zip ablation, whose variants
differ in several axes at once, compares each variant with its first instead (`versus_first`).
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import statistics
from typing import Any

METRIC = "eval_accuracy"


@dataclasses.dataclass(frozen=True)
class VariantSummary:
    values: dict[str, Any]  # axis -> value
    runs: int
    mean: float
    std: float  # sample standard deviation over the seeds (0 for one run)
    first: dict[str, Any]  # one run's row, for what does not vary with the seed (params, MACs, sizes)


@dataclasses.dataclass(frozen=True)
class AxisEffect:
    axis: str
    pairs: int           # pairs of variants differing in this axis alone
    above_noise: int     # how many of them differ by more than twice the standard error
    largest: float       # the largest difference of means among the pairs
    noise: float         # twice the standard error of that largest difference

    def sentence(self) -> str:
        if not self.pairs:
            return f"`{self.axis}`: no pair of finished variants differs in it alone."
        verdict = ("above the seeds' spread" if self.above_noise == self.pairs else
                   "within the seeds' spread" if not self.above_noise else "partly above the seeds' spread")
        return (f"`{self.axis}`: {verdict}: {self.above_noise} of {self.pairs} pairs differ by more than twice "
                f"the standard error; the largest difference is {100 * self.largest:.2f} points "
                f"(twice its standard error: {100 * self.noise:.2f}).")


@dataclasses.dataclass(frozen=True)
class Difference:
    reference: VariantSummary
    other: VariantSummary
    points: float  # other's mean minus the reference's, in percentage points
    noise: float   # twice the standard error of that difference, in points

    @property
    def measurable(self) -> bool:
        """The seeds' spread is known only with at least two runs on each side."""
        return self.reference.runs > 1 and self.other.runs > 1

    @property
    def above_noise(self) -> bool:
        return self.measurable and abs(self.points) > self.noise

    def sentence(self, name: str, reference_name: str) -> str:
        verdict = ("fewer than two runs on a side, so the noise is unknown" if not self.measurable else
                   "above the seeds' spread" if self.above_noise else "within the seeds' spread")
        return (f"{name}: {self.points:+.2f} points against {reference_name} (twice the standard error: "
                f"{self.noise:.2f}), {verdict}.")


def compare(reference: VariantSummary, other: VariantSummary) -> Difference:
    """How far `other` lies from `reference`, and the noise that difference must beat."""
    noise = 2 * math.sqrt(reference.std ** 2 / reference.runs + other.std ** 2 / other.runs)
    return Difference(reference, other, 100 * (other.mean - reference.mean), 100 * noise)


def versus_first(summaries: list[VariantSummary]) -> list[Difference]:
    """Every later variant against the first (a zip ablation's baseline), then the best against the runner-up."""
    if len(summaries) < 2:
        return []
    differences = [compare(summaries[0], s) for s in summaries[1:]]
    runner_up, best = sorted(summaries, key=lambda s: s.mean)[-2:]
    if summaries[0] not in (runner_up, best):
        differences.append(compare(runner_up, best))
    return differences


def summarize(rows: list[dict[str, Any]], axes: list[str]) -> list[VariantSummary]:
    """One summary per variant that finished at least once, in the order the variants first appear."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("status") == "ok":
            groups.setdefault(tuple(str(row[a]) for a in axes), []).append(row)
    summaries = []
    for runs in groups.values():
        scores = [r[METRIC] for r in runs]
        summaries.append(VariantSummary({a: runs[0][a] for a in axes}, len(runs), statistics.fmean(scores),
                                        statistics.stdev(scores) if len(scores) > 1 else 0.0, runs[0]))
    return summaries


def axis_effects(summaries: list[VariantSummary], axes: list[str]) -> list[AxisEffect]:
    """For each axis, how its pairs of variants (all other axes equal) compare with the seeds' spread."""
    effects = []
    for axis in axes:
        others = [a for a in axes if a != axis]
        pairs = [(a, b) for a, b in itertools.combinations(summaries, 2)
                 if all(str(a.values[o]) == str(b.values[o]) for o in others)
                 and str(a.values[axis]) != str(b.values[axis]) and a.runs > 1 and b.runs > 1]
        differences = [compare(a, b) for a, b in pairs]
        largest = max(differences, key=lambda d: abs(d.points), default=None)
        effects.append(AxisEffect(axis, len(pairs), sum(d.above_noise for d in differences),
                                  abs(largest.points) / 100 if largest else 0.0, largest.noise / 100 if largest else 0.0))
    return effects

"""The simulated world: loan applications from river's Agrawal generator, with drift knobs.

Agrawal draws applicant attributes (salary, age, loan, ...) and labels each with one of ten
classification functions. Concept drift swaps the function (a second generator with the new
function); data drift rejection-samples the inputs so that higher salaries become more common
while the labelling function, and so P(y|x), stays exactly the same.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from river.datasets import synth

Features = dict[str, float | str]

ORIGINAL_CONCEPT = 0
"""Agrawal function before drift: the class depends on age bands."""
DRIFTED_CONCEPT = 2
"""Agrawal function after concept drift: the class depends on age and salary together."""
SHIFTED_FEATURE = "salary"
"""The feature whose distribution moves under data drift (uniform -> linearly rising)."""
SALARY_RANGE = (20_000.0, 150_000.0)


def as_features(attributes: dict[str, float]) -> Features:
    """Agrawal attributes as event features: numbers rounded to cents, zipcode categorical."""
    return {
        name: f"zip{int(value)}" if name == "zipcode" else round(float(value), 2)
        for name, value in attributes.items()
    }


def shifted_acceptance(features: Features) -> float:
    """Acceptance probability under data drift: rises linearly with salary, 0 to 1."""
    low, high = SALARY_RANGE
    return (float(features[SHIFTED_FEATURE]) - low) / (high - low)


class LoanApplications:
    """An endless, seeded source of (features, true class) with concept and input drift knobs."""

    def __init__(self, seed: int, label_noise: float) -> None:
        self._rng = random.Random(seed)
        self._label_noise = label_noise
        self._original: Iterator[tuple[dict[str, float], int]] = iter(
            synth.Agrawal(classification_function=ORIGINAL_CONCEPT, seed=seed)
        )
        self._drifted: Iterator[tuple[dict[str, float], int]] = iter(
            synth.Agrawal(classification_function=DRIFTED_CONCEPT, seed=seed + 1)
        )

    def draw(self, concept_drift: float = 0.0, input_shift: float = 0.0) -> tuple[Features, int]:
        """One application and its true class.

        ``concept_drift`` is the probability that the drifted concept labels it;
        ``input_shift`` the weight of the shifted input distribution in the mixture.
        """
        source = self._drifted if self._rng.random() < concept_drift else self._original
        while True:
            attributes, label = next(source)
            features = as_features(attributes)
            keep = 1.0 - input_shift + input_shift * shifted_acceptance(features)
            if keep >= 1.0 or self._rng.random() < keep:
                break
        if self._rng.random() < self._label_noise:
            label = 1 - label
        return features, label

"""Accuracy and wrong-drug rate on the public-source evaluation sets (tests/eval/*.csv).

A wrong drug is worse than no drug: the look-alike, brand and misspelling sets must give none.
The floors pin today's accuracy so that a change that loses it fails here.
"""

from pathlib import Path

import pytest

from safetycheck.evaluation import evaluate_file

EVAL_DIR = Path(__file__).parent / "eval"
LIMITS = {
    # set: (minimum accuracy, maximum wrong-drug rate)
    "brand_generic": (0.88, 0.0),
    "lookalikes": (0.97, 0.0),
    "misspellings": (0.75, 0.0),
    "unknown": (0.98, 0.0),
    # issue 8 sets (public sources per row, tests/eval/README.md)
    "formulations": (0.95, 0.0),
    "formulation_wrongdrug": (0.90, 0.0),
    "rxnorm_strings": (0.95, 0.0),
    "international_brands": (0.95, 0.0),
}
MIN_ROWS = {"formulations": 25, "formulation_wrongdrug": 30, "rxnorm_strings": 10, "international_brands": 12}


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_evaluation_set(checker, name):
    score = evaluate_file(checker, EVAL_DIR / f"{name}.csv")
    min_accuracy, max_wrong = LIMITS[name]
    assert score.total >= MIN_ROWS.get(name, 70)
    assert score.wrong_rate <= max_wrong, score.wrong_rows
    assert score.accuracy >= min_accuracy, (score.accuracy, score.abstained)

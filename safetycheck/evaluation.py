"""Matcher evaluation over labelled CSV sets: accuracy and wrong-drug rate per set.

`python -m safetycheck.evaluation [EVAL_DIR]` prints the table quoted in issue notes.
"""

import csv
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .text import normalize

UNMATCHED = "!unmatched"


@dataclass
class Score:
    """Counts for one evaluation set."""

    name: str
    total: int = 0
    correct: int = 0
    wrong: int = 0
    abstained: int = 0
    wrong_rows: list = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def wrong_rate(self) -> float:
        return self.wrong / self.total if self.total else 0.0


def expected_ingredients(expected: str) -> tuple[str, ...] | None:
    """'a+b' -> ('a', 'b'); '!unmatched' -> None."""
    if expected.strip() == UNMATCHED:
        return None
    return tuple(sorted(normalize(p) for p in expected.split("+")))


def evaluate_file(checker, path: Path) -> Score:
    """Score the matcher on one CSV of input,expected,source rows."""
    score = Score(path.stem)
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            expected = expected_ingredients(row["expected"])
            result = checker.match_texts([row["input"]])[0].match
            score.total += 1
            if result.status != "matched":
                if expected is None:
                    score.correct += 1
                else:
                    score.abstained += 1
            elif expected is not None and result.ingredients == expected:
                score.correct += 1
            else:
                score.wrong += 1
                score.wrong_rows.append((row["input"], row["expected"], result.ingredients))
    return score


def evaluate(checker, eval_dir: Path) -> list[Score]:
    """Score every CSV in eval_dir."""
    return [evaluate_file(checker, p) for p in sorted(Path(eval_dir).glob("*.csv"))]


def main(argv: list[str]) -> int:
    """Print accuracy and wrong-drug rate per set."""
    from .knowledge import load_knowledge_base
    from .pipeline import Checker

    eval_dir = Path(argv[0]) if argv else Path("tests/eval")
    checker = Checker(load_knowledge_base(Path(argv[1]) if len(argv) > 1 else Path("data")))
    print(f"{'set':<24}{'rows':>6}{'accuracy':>10}{'wrong drug':>12}{'abstained':>11}")
    for s in evaluate(checker, eval_dir):
        print(f"{s.name:<24}{s.total:>6}{s.accuracy:>10.1%}{s.wrong_rate:>12.1%}{s.abstained:>11}")
        for text, expected, got in s.wrong_rows:
            print(f"    wrong: {text!r} expected {expected} got {'+'.join(got) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

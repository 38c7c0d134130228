"""The fast reading path (issue 12) gives the answers of the straightforward code it replaced.

The reference implementations below are the code as it was before; each fast path is compared with
its reference over real queries: misspellings made from the vocabulary's own names (fixed seed) and
every input of the evaluation sets.
"""

import copy
import csv
import random
import types
from pathlib import Path

import numpy as np
import pytest

from safetycheck.matching import COMMON_GRAM, _trigrams
from safetycheck.parsing import parse_line

EVAL_DIR = Path(__file__).parent / "eval"


def reference_shortlist(self, key: str) -> list[int]:
    """The shortlist before issue 12: a bincount over every name, then the length slack, argpartition."""
    query = _trigrams(key)
    grams = [p for p in (self.postings.get(g) for g in query) if p is not None and len(p) <= COMMON_GRAM]
    if not grams:
        return []
    counts = np.bincount(np.concatenate(grams), minlength=len(self.keys))
    ids = np.flatnonzero(counts >= max(2, int(0.4 * len(grams))))
    slack = max(3, len(key) // 3)
    ids = ids[np.abs(self.lengths[ids] - len(key)) <= slack]
    if len(ids) > self.shortlist:
        ids = ids[np.argpartition(counts[ids], -self.shortlist)[-self.shortlist:]]
    return ids.tolist()


def misspelt(name: str, rng: random.Random) -> str:
    """One or two edits of the kinds people make: a letter lost, two swapped, one wrong, one extra."""
    for _ in range(rng.choice((1, 1, 2))):
        i = rng.randrange(len(name))
        edit = rng.randrange(4)
        if edit == 0:
            name = name[:i] + name[i + 1 :]
        elif edit == 1 and i < len(name) - 1:
            name = name[:i] + name[i + 1] + name[i] + name[i + 2 :]
        elif edit == 2:
            name = name[:i] + rng.choice("aeiouyszxc") + name[i + 1 :]
        else:
            name = name[:i] + rng.choice("aeiouyszxc") + name[i:]
    return name


@pytest.fixture(scope="module")
def queries(kb) -> list[str]:
    """Medication lines: 1500 misspelt vocabulary names (some with a dose or form after them), the
    names themselves, and every evaluation-set input."""
    rng = random.Random(12)
    names = rng.sample(sorted(n for n in kb.names if len(n) >= 4), 1500)
    lines = [misspelt(n, rng) + rng.choice(("", "", " 10 mg", " 5 mg po daily", " tab")) for n in names]
    lines += names[:300]
    for path in sorted(EVAL_DIR.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            lines += [row["input"] for row in csv.DictReader(handle)]
    return lines


@pytest.fixture(scope="module")
def reference_matcher(checker):
    """The checker's matcher with the reference shortlist (a shallow copy: the same index and names)."""
    reference = copy.copy(checker.matcher)
    reference._shortlist = types.MethodType(reference_shortlist, reference)
    return reference


def test_the_shortlist_is_the_reference_one_in_the_same_order(checker, queries):
    matcher = checker.matcher
    keys = {key for line in queries for key in (line.lower(), parse_line(line).name.lower()) if key}
    differing = [key for key in sorted(keys)
                 if matcher._shortlist(key) != reference_shortlist(matcher, key)]
    assert len(keys) > 3000
    assert differing == []


def test_matching_answers_as_with_the_reference_shortlist(checker, reference_matcher, queries):
    differing = [line for line in queries
                 if checker.matcher.match(parse_line(line)) != reference_matcher.match(parse_line(line))]
    assert differing == []


def test_the_shortlist_of_a_name_too_short_or_too_common_is_empty(checker):
    matcher = checker.matcher
    for key in ("", "a", "ab", "ine", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"):
        assert matcher._shortlist(key) == reference_shortlist(matcher, key)

"""The fast reading path (issue 12) gives the answers of the straightforward code it replaced.

The reference implementations below are the code as it was before; each fast path is compared with
its reference over real queries: misspellings made from the vocabulary's own names (fixed seed) and
every input of the evaluation sets.
"""

import copy
import csv
import random
import re
import types
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from safetycheck import parsing
from safetycheck.matching import _WITH, COMMON_GRAM, _trigrams
from safetycheck.parsing import ParsedMedication, parse_line
from safetycheck.text import _APOSTROPHES, _NOT_NAME, normalize

EVAL_DIR = Path(__file__).parent / "eval"


def reference_shortlist(self, key: str) -> list[int]:
    """The shortlist as first written: a bincount over every name, then the length slack and the cut.

    The cut was numpy's argpartition, which leaves the names tied at it in an order of its own (one
    that x86-simd-sort makes depend on the CPU); now the cut keeps the most shared, then the lower ids.
    """
    query = _trigrams(key)
    grams = [p for p in (self.postings.get(g) for g in query) if p is not None and len(p) <= COMMON_GRAM]
    if not grams:
        return []
    counts = np.bincount(np.concatenate(grams), minlength=len(self.keys))
    ids = np.flatnonzero(counts >= max(2, int(0.4 * len(grams))))
    slack = max(3, len(key) // 3)
    ids = ids[np.abs(self.lengths[ids] - len(key)) <= slack]
    if len(ids) > self.shortlist:
        ids = np.sort(ids[np.lexsort((ids, -counts[ids]))[: self.shortlist]])
    return ids.tolist()


def _reference_number(text: str) -> float | None:
    parts = re.split(r"\s*/\s*", text.replace(",", "."))
    try:
        return float(parts[0]) if len(parts) == 1 else None
    except ValueError:
        return None


def _reference_is_dose_token(token: str) -> bool:
    return bool(parsing._DOSE.match(token))


def reference_parse_line(line: str) -> ParsedMedication:
    """parse_line before issue 12: every pattern run on every line, case-insensitively."""
    p = parsing
    text = p._BULLET.sub("", line).strip()
    other_names = tuple(b.strip() for b in p._BRACKET.findall(text) if b.strip())
    work = p._BRACKET.sub(" ", text)
    work = p._RXNORM_NOISE.sub(" ", work)
    prn = p._PRN.search(work)
    indication = prn.group("why").strip() if prn and prn.group("why") else None
    if prn:
        work = work[: prn.start()]
    tokens = work.replace(",", " ").split()
    while tokens and (_reference_is_dose_token(tokens[0]) or tokens[0].lower() in p._UNITS):
        tokens.pop(0)
    name_tokens: list[str] = []
    for token in tokens:
        low = token.lower().strip(".;:")
        if (_reference_is_dose_token(token) or low in p._ROUTES or low in p._STOP_WORDS
                or (low in p._FORM_WORDS and name_tokens) or p._FREQUENCY.fullmatch(low)):
            break
        name_tokens.append(token)
    name = " ".join(name_tokens).strip(" ,;:-")
    rest = work[len(" ".join(tokens[: len(name_tokens)])):] if name_tokens else work
    dose = unit = dose_text = None
    found = p._DOSE_IN_TEXT.search(rest)
    if found:
        dose_text = re.sub(r"\s+", "", found.group("num"))
        dose = _reference_number(dose_text)
        unit = p._UNITS[found.group("unit").lower()]
    lowered = [t.lower().strip(".,;:") for t in rest.split()]
    route = next((p._ROUTES[t] for t in lowered if t in p._ROUTES), None)
    if route is None:
        route = next((p._FORM_ROUTES[t] for t in lowered if p._FORM_ROUTES.get(t)), None)
    form_words = [t for t in lowered if t in p._FORM_WORDS and t not in p._ROUTES]
    frequency = p._FREQUENCY.search(rest)
    return ParsedMedication(
        text=line.strip(), name=name, dose=dose, dose_text=dose_text if dose is None else None, unit=unit,
        form=" ".join(form_words) or None, route=route, frequency=frequency.group(0) if frequency else None,
        prn=bool(prn), indication=indication, other_names=other_names)


# Pieces of medication lines as they are written, to put together at random.
_PIECES = {
    "lead": ["", "", "", "1. ", "- ", "* ", "a) ", "24 HR ", "12 hr ", "NDA020800 ", "0.3 ML ", "2 ", "BLA125057 "],
    "dose": ["", "5 mg", "81mg", "0.5 MG", "1,5 mg", "300/100 mg", "40 mg/ml", "10 units", "2 puffs", "75 mcg",
             "500 MG", "1 g", "20 mEq", "2.5%", "5 mg / 325 mg", "1 tab", "x 2", "٣ mg", "10\u00a0mg", "½ tab"],
    "form": ["", "", "tab", "cap DR", "Extended Release Oral Tablet", "cream", "eye drops", "inhaler HFA",
             "patch", "ODT", "Oral Solution", "Auto-Injector", "Metered Dose Inhaler", "pen"],
    "route": ["", "", "PO", "po", "IV", "SC", "subq", "topically", "PR", "inh", "SL", "per os"],
    "frequency": ["", "", "BID", "bid", "q8h", "Q 6 H", "qAM", "qhs", "daily", "DAILY", "once daily",
                  "twice a day", "three times daily", "every 4 hours", "every other day", "days 1-21",
                  "D1,8,15", "q.d.", "b.i.d.", "weekly", "MWF", "Q WEEK", "q4-6h", "nightly", "monthly", "hs",
                  "TID", "qid", "qod", "qwk", "four times daily", "every morning", "d1-21", "t.i.d.", "once weekly"],
    "prn": ["", "", "", "prn", "PRN nausea", "prn for pain", "as needed", "As  Needed for sleep", "p.r.n. itch"],
    "tail": ["", "", "", "[Tegretol]", "[Eliquis]", " x 7 days", ", take with food", "; hold if SBP<100",
             "(home med)", "[ ]", "[Brand] [Other]", " stopped", " for 5 days"],
}
_NAMES = ["Eliquis", "ASA", "omeprazole", "Ondansetron", "Bactrim DS", "Metformin hydrochloride",
          "Carbamazepine", "Paxlovid", "lisinoprl", "dexamethason", "Tylenol with codeine", "Anacin 3",
          "insulin glargine", "Epinephrine", "hydrocodone/acetaminophen", "Céfuroxime", "İbuprofen",
          "stopped taking omeprazole", "my prilosec", "vitamin D3", "Zyrtec-D", "levothyroxine sodium",
          "HR", "Daily", "prn", "Dapagliflozin", "Blaxin", "Needed", "Q", "2", "oral contraceptives"]


def made_up_lines(count: int, seed: int = 12) -> list[str]:
    """Lines made of the pieces above in the usual order and, one in five, shuffled."""
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        parts = [rng.choice(_PIECES["lead"]) + rng.choice(_NAMES)]
        parts += [rng.choice(_PIECES[k]) for k in ("dose", "form", "route", "frequency", "prn", "tail")]
        if rng.random() < 0.2:
            rng.shuffle(parts)
        line = " ".join(p for p in parts if p)
        if rng.random() < 0.1:
            line = line.upper()
        lines.append(line)
    return lines


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
    lines = queries + made_up_lines(1000)
    keys = {key for line in lines for key in (line.lower(), normalize(line), normalize(parse_line(line).name)) if key}
    differing = [key for key in sorted(keys)
                 if matcher._shortlist(key) != reference_shortlist(matcher, key)]
    assert len(keys) > 5000
    assert differing == []


def test_matching_answers_as_with_the_reference_shortlist(checker, reference_matcher, queries):
    differing = [line for line in queries + made_up_lines(1000, seed=3)
                 if checker.matcher.match(parse_line(line)) != reference_matcher.match(parse_line(line))]
    assert differing == []


def test_the_shortlist_of_a_name_too_short_or_too_common_is_empty(checker):
    matcher = checker.matcher
    for key in ("", "a", "ab", "ine", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"):
        assert matcher._shortlist(key) == reference_shortlist(matcher, key)


def test_parse_line_reads_every_line_as_the_reference_does(queries):
    lines = queries + made_up_lines(6000) + [
        "", " ", "[", "[]", "prn", "as needed", "hr", "24 HR", "NDA123456", "x", "1.", "2 mg", "\u212aeppra 5 mg",
        "ſomething 5 mg qd", "ıbuprofen PRN", "Tylenol 500 mg PRN\u00a0headache", "abc 5 mg q\u0660h", "da 5 mg",
        " - aspirin 81 mg", "\t1) warfarin", "b. Tylenol", "b.Tylenol", "K. 5 mg", "\u212a) x", "ſ) x", "a)", "a) ",
        "(2) heparin", "\u2022 Lasix 40 mg", "x.", "Z) zinc"]
    differing = [line for line in lines if parse_line(line) != reference_parse_line(line)]
    assert len(lines) > 8000
    assert differing == []


def test_a_line_without_w_never_holds_with(queries):
    lines = queries + made_up_lines(2000) + ["WITH", "w/", "W/", "\u0175ith", "w\u0130th", "wıth"]
    assert [t for t in lines if _WITH.search(t) and "w" not in t and "W" not in t] == []


def reference_normalize(name: str) -> str:
    """text.normalize before issue 12: the pattern on every name."""
    if not name.isascii():
        name = name.translate(_APOSTROPHES)
        name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    text = name.lower().replace(".", " ")
    return _NOT_NAME.sub(" ", text).strip(" -/+'")


def test_normalize_is_the_reference_one(kb, queries):
    rng = random.Random(12)
    names = rng.sample(sorted(kb.names), 20000)
    texts = queries + made_up_lines(3000) + names + [n.upper() for n in names[:2000]] + [
        "", " ", "  ", "a  b", " a b ", "a\tb", "a\u00a0b", "-a-", "'a'", "a.b", "a. b", "A1 B2", "x/y", "x + y",
        "\u0130buprofen", "caf\u00e9", "\u00bd tab", "\u212a", "a#1", "5-fu"]
    assert [t for t in texts if normalize(t) != reference_normalize(t)] == []

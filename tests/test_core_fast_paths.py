"""The core's shortcuts (message templates, exact decimals, JSON forms) give what the plain code gives."""

import itertools
import string
from dataclasses import FrozenInstanceError, fields
from decimal import Decimal

import pytest

from safetycheck import labs, rules
from safetycheck.models import DoseRecommendation, Warning
from safetycheck.parsing import ParsedMedication, parse_line


def plain_fmt(template, values):
    return rules._Formatter().vformat(template, (), rules._Defaulting(values))


def every_template(kb):
    found = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "message" and isinstance(value, str):
                    found.add(value)
                walk(value)
        elif isinstance(node, list | tuple):
            for value in node:
                walk(value)

    walk([kb.interaction_rules, kb.prophylaxis_rules, kb.bleeding_rules, kb.dose_rules, list(kb.protocols.values())])
    return sorted(found)


def test_every_message_template_fills_as_the_formatter_does(kb):
    templates = every_template(kb)
    assert any("{platelets:,.0f}" in t for t in templates)  # format specs are among them
    for template in templates:
        names = [n for _, n, _, _ in string.Formatter().parse(template) if n]
        full = {name: 1234.5678 for name in names} | {"drug": "clarithromycin", "authority": "FDA-T1"}
        assert rules.fmt(template, full) == plain_fmt(template, full)
        for absent in names:  # an absent value prints n/a, whatever its format spec
            partial = {**full, absent: None}
            assert rules.fmt(template, partial) == plain_fmt(template, partial)
            assert "n/a" in rules.fmt(template, partial)


def test_exact_keeps_the_sign_of_zero_and_the_shortest_decimal():
    for x in (0.0, -0.0, 1.8, 1.79999, 0.1 + 0.2, 3, True, 1e-7, 2.5e300):
        assert exact_twice(x) == Decimal(repr(float(x)))
        assert str(exact_twice(x)) == str(Decimal(repr(float(x))))


def exact_twice(x):
    labs.exact(x)
    return labs.exact(x)


@pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
def test_compare_is_the_decimal_comparison(op):
    values = [1.5, 1.8, Decimal("1.8"), 2, -0.0, 0.0, 1.7999999]
    for a, b in itertools.product(values, repeat=2):
        da, db = Decimal(repr(float(a))) if not isinstance(a, Decimal) else a, \
            Decimal(repr(float(b))) if not isinstance(b, Decimal) else b
        expected = {"<": da < db, "<=": da <= db, ">": da > db, ">=": da >= db}[op]
        assert labs.compare(op, a, b) is expected


def test_as_dict_lists_the_set_fields_in_declaration_order():
    warning = Warning("r", "C", "high", "interaction", "m", {"title": "t"}, drug="x", window_days=0)
    assert warning.as_dict() == {f.name: getattr(warning, f.name) for f in fields(warning)
                                 if getattr(warning, f.name) is not None}
    assert list(warning.as_dict()) == [f.name for f in fields(warning) if getattr(warning, f.name) is not None]
    for resume in (None, {"mg": 2}):
        dose = DoseRecommendation("pomalidomide", "hold", 4, None, "why", {"title": "t"}, ["r"], resume)
        assert dose.as_dict() == {f.name: getattr(dose, f.name) for f in fields(dose)
                                  if f.name != "resume" or dose.resume}


@pytest.mark.parametrize("line", ["Eliquis 5 mg PO BID", "Ondansetron 8 mg q8h prn nausea", "Carbamazepine[Tegretol]",
                                  "0.3 ML Epinephrine auto-injector", "", "métformine 500 mg"])
def test_a_parsed_line_is_the_dataclass_its_fields_make(line):
    """parse_line fills the frozen dataclass directly: equal to the one its __init__ builds, and still frozen."""
    parsed = parse_line(line)
    built = ParsedMedication(**{f.name: getattr(parsed, f.name) for f in fields(ParsedMedication)})
    assert parsed == built and hash(parsed) == hash(built) and repr(parsed) == repr(built)
    with pytest.raises(FrozenInstanceError):
        parsed.name = "other"

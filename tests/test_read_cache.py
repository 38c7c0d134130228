"""The per-process cache of medication readings: it saves work, never changes an answer."""

from safetycheck.models import CheckRequest, MedicationInput
from safetycheck.pipeline import Checker, run_check

from .test_api_checks import BASE

LOOK_ALIKES = ["hydroxyzine 25 mg", "hydralazine 25 mg", "Celexa 20 mg", "Celebrex 200 mg",
               "oxcarbazepine 300 mg", "carbamazepine 200 mg"]


def readings(checker: Checker, lines: list[str]) -> list[tuple]:
    return [(r.parsed, r.match.status, r.match.ingredients, r.classes) for r in checker.match_texts(lines)]


def test_a_cached_reading_equals_a_fresh_one_in_any_order(kb):
    fresh = Checker(kb)
    expected = readings(fresh, LOOK_ALIKES)
    warm = Checker(kb)
    readings(warm, list(reversed(LOOK_ALIKES)))  # the look-alike partner of each line is cached first
    assert readings(warm, LOOK_ALIKES) == expected
    assert [r[2] for r in expected] == [("hydroxyzine",), ("hydralazine",), ("citalopram",), ("celecoxib",),
                                        ("oxcarbazepine",), ("carbamazepine",)]


def test_the_same_line_is_read_once_and_keeps_its_own_index(kb):
    checker = Checker(kb)
    first, second = checker.match_texts(["Cipro 500 mg PO BID", "Cipro 500 mg PO BID"])
    assert (first.index, second.index) == (0, 1)
    assert first.match is second.match  # one reading, shared (it is frozen)
    assert checker._matched.cache_info().hits == 1


def test_a_check_answers_the_same_with_a_warm_cache(kb):
    request = CheckRequest(regimen="ipd", mode="dispensing", patient=dict(BASE["patient"]),
                           medications=tuple(MedicationInput(text=t) for t in LOOK_ALIKES + ["Paxlovid"]),
                           labs={}, current_doses={}, toxicities={}, serology={})
    cold = run_check(Checker(kb), request)
    warm_checker = Checker(kb)
    run_check(warm_checker, request)
    assert run_check(warm_checker, request) == cold
    warm_checker.clear_caches()
    assert warm_checker._matched.cache_info().currsize == 0
    assert run_check(warm_checker, request) == cold

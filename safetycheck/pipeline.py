"""The only core entry point: parse -> match -> rules -> labs -> result, with no I/O."""

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from .knowledge import KnowledgeBase
from .labs import derive, normalize_labs
from .matching import Matcher, MatchResult
from .models import SEVERITY_ORDER, CheckRequest, DoseRecommendation, InputError, MedicationInput, Warning
from .ncpdp import DurCodes
from .ncpdp import load as load_dur_codes
from .parsing import ParsedMedication, normalize_route, parse_line
from .rules import (
    Context,
    Med,
    conditional_needs,
    dose_modifications,
    eligibility,
    exclusions,
    interactions,
    patient_criteria,
    prophylaxis,
    thrombosis,
)


@lru_cache(maxsize=8192)
def _reading_dict(parsed: ParsedMedication, match: MatchResult, classes: tuple[str, ...]) -> dict:
    """A medication entry without its index, made once per reading (the readings are cached, so most are seen
    again). Shared between responses, which only serialise it: never mutate it."""
    best = match.best
    return {
        "input": parsed.text,
        "parsed": parsed.as_dict(),
        "status": match.status,
        "match": None if match.status != "matched" else {
            "generic": best.generic, "via": match.via, "score": round(best.score, 1),
            "ingredients": list(best.ingredients), "matched_name": best.matched_name,
        },
        "candidates": [c.as_dict() for c in match.candidates],
        "classes": list(classes),
    }


@dataclass(frozen=True)
class MedicationResult:
    """One medication as read and matched, with the classes its ingredients belong to."""

    index: int
    parsed: ParsedMedication
    match: MatchResult
    classes: tuple[str, ...]

    def as_dict(self, kb: KnowledgeBase, memberships: bool = True) -> dict:
        """The contract's `medications[]` entry; `class_memberships` (with sources) on request."""
        entry = {"index": self.index, **_reading_dict(self.parsed, self.match, self.classes)}
        if memberships:
            entry["class_memberships"] = [
                {"drug": m.drug, "class": m.drug_class, "authority": m.authority, "scope": m.scope,
                 "source": m.source}
                for drug in self.match.ingredients for m in kb.classes_of(drug)
            ]
        return entry


@dataclass(frozen=True)
class CheckResult:
    """What one check found, typed; `contract.v1.response_body` gives its v1 JSON form."""

    ruleset_version: str
    regimen: str
    protocol: str | None
    mode: str
    verdict: str
    medications: tuple[MedicationResult, ...]
    warnings: tuple[Warning, ...]
    dose_recommendations: tuple[DoseRecommendation, ...]
    derived: dict
    missing: tuple[str, ...]
    protocol_flags: tuple[dict, ...]


# Medication lists repeat the same strings all day ("Eliquis 5 mg PO BID"): each distinct one is read
# (parsed, matched, classed) once per process. Every cached value is frozen, so sharing them is safe.
READ_CACHE_SIZE = 8192


class Checker:
    """Holds the validated knowledge base and the name index; pure functions over them."""

    def __init__(self, kb: KnowledgeBase, dur_codes: DurCodes | None = None, **match_options):
        self.kb = kb
        # NCPDP DUR codes ride on every warning; the default tables live in the checkout's data/.
        self.dur_codes = dur_codes if dur_codes is not None else load_dur_codes()
        self.matcher = Matcher(kb, **match_options)
        self.parse = lru_cache(maxsize=READ_CACHE_SIZE)(parse_line)
        self._matched = lru_cache(maxsize=READ_CACHE_SIZE)(self._match_and_class)

    def _match_and_class(self, parsed: ParsedMedication) -> tuple[MatchResult, tuple[str, ...]]:
        match = self.matcher.match(parsed)
        return match, tuple(sorted({m.drug_class for i in match.ingredients for m in self.kb.classes_of(i)}))

    def classify(self, parsed: ParsedMedication, index: int) -> MedicationResult:
        """Match one parsed medication and list its ingredients' classes."""
        match, classes = self._matched(parsed)
        return MedicationResult(index, parsed, match, classes)

    def clear_caches(self) -> None:
        """Forget every medication read so far (the bench measures reading a list never seen)."""
        self.parse.cache_clear()
        self._matched.cache_clear()

    def match_texts(self, texts: list[str]) -> list[MedicationResult]:
        """Parse and match free-text medication lines."""
        return [self.classify(self.parse(text), i) for i, text in enumerate(texts)]


def _parsed_from_fields(med: MedicationInput) -> ParsedMedication:
    return ParsedMedication(text=med.name, name=med.name, dose=med.dose, unit=med.unit,
                            route=normalize_route(med.route), frequency=med.frequency)


def run_check(checker: Checker, request: CheckRequest) -> CheckResult:
    """Parse, match, apply every rule, and return what was found (typed; no ids, no JSON)."""
    kb = checker.kb
    regimen = kb.regimens.get(request.regimen)
    if regimen is None:
        raise InputError({"regimen": [f"Unknown regimen; one of {sorted(kb.regimens)}."]})
    protocol = None
    if request.protocol:
        protocol = kb.protocols.get(request.protocol)
        if protocol is None:
            raise InputError({"protocol": [f"Unknown protocol; one of {sorted(kb.protocols)}."]})
        if protocol["regimen"] != regimen["id"]:
            raise InputError({"protocol": [f"Protocol {protocol['id']} is for regimen {protocol['regimen']}, "
                                           f"not {regimen['id']}."]})
    labs = normalize_labs(request.labs, kb)
    patient = dict(request.patient)
    results, meds = [], []
    for i, med in enumerate(request.medications):
        parsed = checker.parse(med.text) if med.text else _parsed_from_fields(med)
        result = checker.classify(parsed, i)
        results.append(result)
        meds.append(Med(i, result.match.ingredients, parsed, med.last_dose_date, bool(med.investigational)))
    ctx = Context(kb=kb, mode=request.mode, regimen=regimen, protocol=protocol,
                  day_of_check=request.date or date.today(), cycle_day=request.day, patient=patient,
                  toxicities=dict(request.toxicities), current_doses=dict(request.current_doses), labs=labs,
                  derived=derive(labs, patient, kb), meds=meds, serology=dict(request.serology),
                  anchors={name: getattr(request, name) for name in ("registration_date", "screening_date",
                                                                     "c1d1_date") if getattr(request, name)})
    for result in results:
        if result.match.status != "matched":
            code = "UNMATCHED_MEDICATION" if result.match.status == "unmatched" else "AMBIGUOUS_MEDICATION"
            options = ", ".join(c.generic for c in result.match.candidates)
            ctx.warn({"id": f"{result.match.status}-medication", "code": code, "severity": "moderate",
                      "source": {"title": "safetycheck matcher", "section": "fail closed: not checked"},
                      "action": "Identify this medication; it was not checked against any rule."},
                     f"'{result.parsed.text}' could not be identified"
                     + (f" (could be: {options})" if options else "") + ".",
                     "medication", medication_index=result.index)
    interactions(ctx)
    exclusions(ctx)
    if request.mode == "screening":
        eligibility(ctx)
        patient_criteria(ctx)
        prophylaxis(ctx)
    else:
        thrombosis(ctx)
        dose_modifications(ctx)
    warned = conditional_needs(ctx) if request.mode == "dispensing" else set()
    for field_name, rule_ids in sorted(ctx.missing.items()):
        if field_name in warned:
            continue
        code = "MISSING_LAB" if field_name.startswith(("labs.", "serology.")) else "MISSING_PATIENT_DATA"
        ctx.warn({"id": "missing-input", "code": code, "severity": "moderate",
                  "source": {"title": "safetycheck",
                             "section": "fail closed: a rule without its input is not assessed"},
                  "action": f"Provide {field_name}."},
                 f"{field_name} is needed by {', '.join(sorted(rule_ids))}; not assessed.", "missing_input",
                 field=field_name)
    warnings = sorted(ctx.warnings, key=lambda w: (SEVERITY_ORDER[w.severity], w.rule_id,
                                                   -1 if w.medication_index is None else w.medication_index))
    for warning in warnings:
        # NCPDP DUR codes (439-E4, 528-FS) on every warning of every channel, from data/ncpdp_*.csv.
        warning.ncpdp = checker.dur_codes.for_warning({"code": warning.code, "severity": warning.severity})
    return CheckResult(
        ruleset_version=kb.version,
        regimen=regimen["id"],
        protocol=protocol["id"] if protocol else None,
        mode=request.mode,
        verdict=verdict(warnings, ctx.missing),
        medications=tuple(results),
        warnings=tuple(warnings),
        dose_recommendations=tuple(merge_doses(ctx.doses)),
        derived=ctx.derived,
        missing=tuple(sorted(ctx.missing)),
        protocol_flags=tuple({"id": f["id"], "text": f["text"], "note": f["note"]}
                             for f in (protocol["flagged"] if protocol else [])),
    )


def verdict(warnings, missing) -> str:
    """block on any critical; review on major/moderate or anything not assessed; else pass."""
    severities = {w.severity for w in warnings}
    if "critical" in severities:
        return "block"
    if severities & {"major", "moderate"} or missing:
        return "review"
    return "pass"


def merge_doses(doses: list[DoseRecommendation]) -> list[DoseRecommendation]:
    """One recommendation per drug: a hold wins; otherwise the lowest target dose."""
    merged: dict[str, DoseRecommendation] = {}
    rank = {"discontinue": 0, "hold": 1, "reduce": 2}
    for d in doses:
        best = merged.get(d.drug)
        if best is None:
            merged[d.drug] = d
            continue
        ids = best.rule_ids + d.rule_ids
        if (rank[d.action], d.recommended_mg or 0) < (rank[best.action], best.recommended_mg or 0):
            d.rule_ids = ids
            d.reason = f"{d.reason} | {best.reason}"
            merged[d.drug] = d
        else:
            best.rule_ids = ids
            best.reason = f"{best.reason} | {d.reason}"
    return [merged[k] for k in sorted(merged)]

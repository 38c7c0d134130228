"""Clinical rules over a check's context: interactions, thrombosis, protocol exclusions, eligibility
and dose modification. Every rule is a data row (data/); this module holds the few rule kinds."""

import calendar
import operator
import re
import string
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache

from .knowledge import KnowledgeBase
from .labs import compare, exact
from .labs import times as uln_times
from .models import DoseRecommendation, LabValue, Warning

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
# Local routes: a rule with routes = "systemic" skips them. Anything else, and an unknown route, is systemic.
NON_SYSTEMIC_ROUTES = {"topical", "inhalation", "ophthalmic", "otic", "nasal", "vaginal"}


def applies_to_route(rule: dict, med) -> bool:
    """A rule scoped to systemic use skips locally applied products; an unknown route counts as systemic."""
    return rule.get("routes", "any") != "systemic" or getattr(med.parsed, "route", None) not in NON_SYSTEMIC_ROUTES
_EVERY_HOURS = re.compile(r"(?:q|every)\s*(\d+)\s*(?:h|hr|hrs|hours?)\b", re.I)
_PER_DAY = [
    (re.compile(r"\b(?:qid|q\.i\.d|four times)", re.I), 4),
    (re.compile(r"\b(?:tid|t\.i\.d|three times)", re.I), 3),
    (re.compile(r"\b(?:bid|b\.i\.d|twice daily|twice a day|bd)\b", re.I), 2),
    (re.compile(r"\b(?:qod|every other day)\b", re.I), 0.5),
    (re.compile(r"\b(?:weekly|qwk|q\s?week|once a week)\b", re.I), 1 / 7),
    (re.compile(r"\b(?:daily|qd|q\.d|od|once|qam|qpm|qhs|hs|nightly|every (?:morning|evening|night))\b", re.I), 1),
]


class _Formatter(string.Formatter):
    """Message templates: a value that is absent prints as 'n/a' instead of failing."""

    def format_field(self, value, format_spec):
        if value is None:
            return "n/a"
        return super().format_field(value, format_spec)


def fmt(template: str, values: dict) -> str:
    """Fill a message template from the check's values."""
    if all(values.get(name) is not None for name in _field_names(template)):
        return template.format_map(values)  # what the formatter gives when nothing is absent, in C
    return _Formatter().vformat(template, (), _Defaulting(values))


@lru_cache(maxsize=1024)
def _field_names(template: str) -> tuple[str, ...]:
    """The names a template fills ("{platelets:,.0f}" -> platelets)."""
    return tuple(name for _, name, _, _ in string.Formatter().parse(template) if name is not None)


class _Defaulting(dict):
    def __missing__(self, key):
        return None


def add_months(day: date, months: int) -> date:
    """Same day of the month `months` later (last day of a shorter month)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def per_day(frequency: str | None) -> float | None:
    """Administrations per day read from a frequency, or None when it cannot be read."""
    if not frequency:
        return None
    hours = _EVERY_HOURS.search(frequency)
    if hours and int(hours.group(1)) > 0:
        return 24 / int(hours.group(1))
    for pattern, times in _PER_DAY:
        if pattern.search(frequency):
            return times
    return None


@dataclass
class Med:
    """A matched medication as the rules see it."""

    index: int
    ingredients: tuple[str, ...]
    parsed: object
    last_dose_date: date | None
    investigational: bool = False


@dataclass
class Context:
    """Everything the rules read, and what they found."""

    kb: KnowledgeBase
    mode: str
    regimen: dict
    protocol: dict | None
    day_of_check: date
    cycle_day: int | None
    patient: dict
    toxicities: dict
    current_doses: dict
    labs: dict[str, LabValue]
    derived: dict
    meds: list[Med]
    anchors: dict = field(default_factory=dict)  # registration_date, screening_date, c1d1_date as sent
    serology: dict = field(default_factory=dict)
    warnings: list[Warning] = field(default_factory=list)
    doses: list[DoseRecommendation] = field(default_factory=list)
    fired: set = field(default_factory=set)
    missing: dict = field(default_factory=dict)

    def __post_init__(self):
        self.regimen_drugs = frozenset(self.regimen["drugs"])
        self._class_sets: dict[str, frozenset] = {}
        # Each ingredient of a medication taken now, once and in list order: what most rules walk.
        self.taken = [(med, drug) for med in self.meds if self.current(med) for drug in med.ingredients]

    def class_set(self, drug: str) -> frozenset:
        """Every class any authority puts the drug in (a cheap first filter before authorities())."""
        found = self._class_sets.get(drug)
        if found is None:
            found = self._class_sets[drug] = frozenset(m.drug_class for m in self.kb.classes_of(drug))
        return found

    def current(self, med: Med) -> bool:
        """Taken now: no last dose date, or a last dose on or after the check date."""
        return med.last_dose_date is None or med.last_dose_date >= self.day_of_check

    def need(self, field_name: str, rule_id: str) -> None:
        self.missing.setdefault(field_name, set()).add(rule_id)

    def values(self) -> dict:
        values = {k: v.value for k, v in self.labs.items()}
        values.update({k: v for k, v in self.patient.items() if v is not None})
        values.update({k: v for k, v in self.toxicities.items() if v is not None})
        values.update({k: v["value"] for k, v in self.derived.items() if isinstance(v, dict) and "value" in v})
        return values

    def authorities(self, drug: str, classes, allowed, label_scope=None, protocol_scope=None) -> list[str]:
        """Which allowed authorities put `drug` in one of `classes` (label rows only for label_scope)."""
        if self.class_set(drug).isdisjoint(classes):
            return []
        found = []
        for m in self.kb.classes_of(drug):
            if m.drug_class not in classes or (allowed and m.authority not in allowed):
                continue
            if m.authority == "label" and label_scope and m.scope != label_scope:
                continue
            if m.authority == "protocol" and m.scope != protocol_scope:
                continue
            name = f"{m.authority} ({m.scope})" if m.scope else m.authority
            if name not in found:
                found.append(name)
        return found

    def warn(self, rule: dict, message: str, kind: str, **extra) -> Warning:
        warning = Warning(rule_id=rule["id"], code=rule["code"], severity=rule.get("severity", "moderate"),
                          kind=kind, message=message, source=dict(rule["source"]) if isinstance(
                              rule["source"], dict) else {"title": rule["source"]},
                          action=rule.get("action"), **extra)
        self.warnings.append(warning)
        self.fired.add((rule["id"], extra.get("drug")))
        return warning

    def recommend(self, drug: str, action: str, to_mg: float | None, reason: str, source: dict,
                  rule_id: str) -> bool:
        """Add a dose recommendation; False when the current dose already satisfies a reduction."""
        current = self.current_doses.get(drug)
        if action == "reduce" and current is not None and current <= to_mg:
            return False
        self.doses.append(DoseRecommendation(drug, action, current, to_mg if action == "reduce" else None,
                                             reason, dict(source), [rule_id]))
        return True


# -- conditions ---------------------------------------------------------------------------------
def check_condition(cond: dict, ctx: Context) -> tuple[bool | None, list[str]]:
    """Evaluate one closed condition: (result, inputs that were missing)."""
    if "lab" in cond:
        lab = ctx.labs.get(cond["lab"])
        if lab is None:
            return None, [f"labs.{cond['lab']}"]
        if "uln" in cond:
            if lab.uln is None:
                return None, [f"labs.{cond['lab']}.uln"]
            return compare(cond["op"], lab.value, uln_times(cond["uln"], lab.uln)), []
        return compare(cond["op"], lab.value, cond["value"]), []
    if "derived" in cond:
        value = ctx.derived.get(cond["derived"])
        if value is None:
            return None, [f"derived.{cond['derived']}"]
        return compare(cond["op"], value["value"], cond["value"]), []
    if "serology" in cond:
        value = ctx.serology.get(cond["serology"])
        if value is None:
            return None, [f"serology.{cond['serology']}"]
        return str(value) in cond["in_"] if "in_" in cond else bool(value) is cond["is_"], []
    source, name = ("patient", cond["patient"]) if "patient" in cond else ("toxicities", cond["toxicity"])
    value = (ctx.patient if source == "patient" else ctx.toxicities).get(name)
    if value is None:
        if source == "toxicities":
            return False, []  # a toxicity that is not reported is not present
        if name == "child_pugh_class":
            return False, []  # asked for (needs_when) only when bilirubin suggests hepatic impairment
        return None, [f"{source}.{name}"]
    if "is_" in cond:
        return bool(value) is cond["is_"], []
    if "in_" in cond:
        return str(value) in cond["in_"], []
    return compare(cond["op"], value, cond["value"]), []


def check_any(conds: list[dict], ctx: Context) -> tuple[bool | None, list[str]]:
    """True if any condition holds; None if none holds and some could not be assessed."""
    missing: list[str] = []
    for cond in conds:
        result, need = check_condition(cond, ctx)
        if result:
            return True, []
        missing += need
    return (None, missing) if missing else (False, [])


def _missing_renal_inputs(ctx: Context, with_weight: bool) -> list[str]:
    """The absent inputs of Cockcroft-Gault (with weight) or MDRD (without)."""
    needed = [] if "creatinine" in ctx.labs else ["labs.creatinine"]
    fields = ("age_years", "weight_kg", "sex") if with_weight else ("age_years", "sex")
    return needed + [f"patient.{n}" for n in fields if ctx.patient.get(n) is None]


def _expand_missing(field_name: str, ctx: Context) -> list[str]:
    """A derived value is missing because of the inputs it is computed from."""
    if field_name != "derived.crcl_ml_min":
        return [field_name]
    return _missing_renal_inputs(ctx, with_weight=True)


# -- A: interactions ----------------------------------------------------------------------------
def interactions(ctx: Context) -> None:
    """Class x regimen-drug interactions, judged for co-administration now."""
    # Each current ingredient with its classes, once, instead of once per rule.
    taken = [(med, drug, ctx.class_set(drug)) for med, drug in ctx.taken if drug not in ctx.regimen_drugs]
    for rule in ctx.kb.interaction_rules:
        if rule["affects"] not in ctx.regimen_drugs:
            continue
        classes = frozenset(rule["classes"])
        for med, drug, drug_classes in taken:
            if drug_classes.isdisjoint(classes) or not applies_to_route(rule, med) or (
                    rule.get("unless_rule"), drug) in ctx.fired:
                continue
            found = ctx.authorities(drug, classes, rule["authorities"], label_scope=rule["affects"])
            if found:
                _fire_interaction(ctx, rule, drug, med.index, ", ".join(found))
        if rule.get("also_when_smoker"):
            smoker = ctx.patient.get("smoker")
            if smoker is None:
                ctx.need("patient.smoker", rule["id"])  # tobacco smoke is a CYP1A2 inducer: unknown is unchecked
            elif smoker:
                _fire_interaction(ctx, rule, "tobacco smoke (patient.smoker)", None, "patient.smoker")


def _fire_interaction(ctx: Context, rule: dict, drug: str, index: int | None, authority: str) -> None:
    message = fmt(rule["message"], {"drug": drug, "authority": authority})
    ctx.warn(rule, message, "interaction", drug=drug, affects=rule["affects"], medication_index=index,
             authority=authority)
    dose = rule.get("dose")
    if dose:
        ctx.recommend(dose["drug"], dose["action"], dose.get("to_mg"), message, rule["source"], rule["id"])


# -- B: thrombosis and bleeding -----------------------------------------------------------------
def thrombosis(ctx: Context) -> None:
    """Thromboprophylaxis with IMiDs; anticoagulants and antiplatelets with low platelets."""
    prophylaxis(ctx)
    bleeding(ctx)


def prophylaxis(ctx: Context) -> None:
    """A regimen that needs prophylaxis (thrombosis, herpes zoster) with none of the covering groups listed."""
    groups = {c.id: c.group for c in ctx.kb.classes.values()}
    for rule in ctx.kb.prophylaxis_rules:
        if ctx.mode not in rule["modes"]:
            continue
        if rule["protocols"] and (not ctx.protocol or ctx.protocol["id"] not in rule["protocols"]):
            continue
        imids = [d for d in sorted(ctx.regimen_drugs)
                 if d in rule["regimen_drugs"] or ctx.authorities(d, rule["regimen_classes"], None)]
        if not imids:
            continue
        covered = any(groups.get(m.drug_class) in rule["needs_groups"]
                      for _, d in ctx.taken for m in ctx.kb.classes_of(d))
        if not covered:
            ctx.warn(rule, fmt(rule["message"], {"regimen_drug": " and ".join(imids)}), rule.get("kind", "thrombosis"),
                     affects=imids[0])


def bleeding(ctx: Context) -> None:
    """Anticoagulants and antiplatelets with low platelets."""
    for rule in ctx.kb.bleeding_rules:
        classes = frozenset(rule["classes"])  # a set once per rule, for the class filter before authorities()
        for med, drug in ctx.taken:
            if ctx.class_set(drug).isdisjoint(classes) or not ctx.authorities(drug, classes, None) or (
                    rule.get("unless_rule"), drug) in ctx.fired:
                continue
            platelets = ctx.labs.get("platelets")
            if platelets is None:
                ctx.need("labs.platelets", rule["id"])
            elif compare("<", platelets.value, rule["below"]):
                message = fmt(rule["message"], {"drug": drug, "platelets": platelets.value})
                ctx.warn(rule, message, "bleeding", drug=drug, medication_index=med.index)


# -- C: protocol exclusions ---------------------------------------------------------------------
def exclusions(ctx: Context) -> None:
    """Protocol medication exclusions: washout windows in screening, concomitant use in dispensing."""
    protocol = ctx.protocol
    if not protocol:
        return
    screening = ctx.mode == "screening"
    for rule in protocol["exclusions"]:
        if not screening and not rule["concomitant"]:
            continue
        for med in ctx.meds:
            if not applies_to_route(rule, med):
                continue
            for drug in med.ingredients:
                if drug in ctx.regimen_drugs and (not screening or med.last_dose_date is None):
                    continue  # the planned regimen itself, not prior exposure
                found = ctx.authorities(drug, rule["classes"], rule.get("authorities"),
                                        protocol_scope=protocol["id"])
                if med.investigational and "INVESTIGATIONAL" in rule["classes"]:
                    found.append("request (investigational: true)")
                if found:
                    _judge_window(ctx, rule, med, drug, ", ".join(found), screening)
            if med.investigational and not med.ingredients and "INVESTIGATIONAL" in rule["classes"]:
                name = getattr(med.parsed, "text", None) or "investigational agent"
                _judge_window(ctx, rule, med, name, "request (investigational: true)", screening)
    for rule in protocol["corticosteroid_limit"]:
        if screening or rule["concomitant"]:
            corticosteroids(ctx, rule, screening)


def _anchor(ctx: Context, rule: dict) -> tuple[date, str]:
    """The day a window counts back from: the rule's own anchor input, else the check date (said in the text)."""
    if ctx.mode != "screening":
        return ctx.day_of_check, f"concomitant use on {ctx.day_of_check.isoformat()}"  # dispensing: use now
    name = rule.get("anchor_field")
    if name and ctx.anchors.get(name):
        return ctx.anchors[name], f"counted from {name} {ctx.anchors[name].isoformat()}"
    fallback = f"{name} not given: counted from date" if name else "counted from date"
    return ctx.day_of_check, f"{fallback} {ctx.day_of_check.isoformat()}"


def _judge_window(ctx: Context, rule: dict, med: Med, drug: str, authority: str, screening: bool) -> None:
    last = med.last_dose_date
    extra: dict = {}
    day, anchor_text = _anchor(ctx, rule)
    if rule.get("window") == "ever":
        pass
    elif last is None:
        extra["window_days"] = rule.get("window_days") or (
            add_months(day, rule["window_months"]) - day).days
    else:
        # Inclusive window: "within 7 days" includes day -7, so the first eligible day is day -8 + 1.
        end = (last + timedelta(days=rule["window_days"]) if "window_days" in rule
               else add_months(last, rule["window_months"]))
        eligible = end + timedelta(days=1)
        if eligible <= day:
            return  # washout met
        extra = {"window_days": (end - last).days, "eligible_on": eligible.isoformat()}
    when = f"last dose {last.isoformat()}" if last else "no last-dose date: treated as current"
    severity = "critical" if screening else "major"
    window = "" if rule.get("window") == "ever" else f"; window {anchor_text}"
    message = f"{drug}: {rule['text']} ({when}; {authority}{window})."
    action = ("Not eligible until the washout is met." if screening
              else "Protocol-prohibited concomitant medication: contact the investigator before dispensing.")
    ctx.warn({**rule, "severity": severity, "source": protocol_source(ctx, rule["source"]), "action": action},
             message, "protocol_exclusion", drug=drug, medication_index=med.index, authority=authority, **extra)


def protocol_source(ctx: Context, section: str) -> dict:
    """The `source` of a warning raised by the check's protocol."""
    return {"title": f"Protocol {ctx.protocol['id']}: {ctx.protocol['title']}", "section": section}


def corticosteroids(ctx: Context, rule: dict, screening: bool) -> None:
    """Systemic corticosteroids summed as prednisone-equivalent mg/day against the protocol allowance."""
    parts, names, total, first, unknown = [], [], Decimal(0), None, False
    for med in ctx.meds:
        if not ctx.current(med):
            continue
        parsed = med.parsed
        for drug in med.ingredients:
            factors = [m.factor for m in ctx.kb.classes_of(drug) if m.drug_class == "SYSTEMIC_CORTICOSTEROID"]
            if not factors or drug in ctx.regimen_drugs or parsed.route in NON_SYSTEMIC_ROUTES:
                continue
            per = per_day(parsed.frequency)
            unit_mg = {"mg": Decimal(1), "mcg": Decimal("0.001"), "g": Decimal(1000)}.get(parsed.unit or "")
            if parsed.dose is None or unit_mg is None:
                ctx.need(f"medications[{med.index}].dose", rule["id"])
                unknown = True
                continue
            if per is None:
                ctx.need(f"medications[{med.index}].frequency", rule["id"])
                unknown = True
                continue
            per_d = Decimal(1) / 7 if per == 1 / 7 else exact(per)
            equivalent = exact(parsed.dose) * unit_mg * per_d * exact(factors[0])
            total += equivalent
            first = med.index if first is None else first
            names.append(drug)
            parts.append(f"{drug} {parsed.dose:g} {parsed.unit} x {per:g}/day = {equivalent:.1f}")
    limit = rule["max_prednisone_mg_per_day"]
    if parts and compare(">", total, limit):
        partial = " (more corticosteroids without dose or frequency not counted)" if unknown else ""
        message = (f"{'; '.join(parts)}: total {total:.1f} mg/day prednisone equivalent (> {limit:g}){partial}: "
                   f"{rule['text']}.")
        ctx.warn({**rule, "severity": "critical" if screening else "major",
                  "source": protocol_source(ctx, rule["source"]),
                  "action": "Excluded above the allowance; taper or document before enrolment/dispensing."},
                 message, "protocol_exclusion", drug=" + ".join(names),
                 medication_index=first)


# -- D: screening eligibility -------------------------------------------------------------------
def eligibility(ctx: Context) -> None:
    """Each protocol lab criterion, operators exactly as written."""
    if not ctx.protocol:
        return
    for crit in ctx.protocol["lab_criteria"]:
        if crit["value"] == "crcl":
            _crcl_criterion(ctx, crit)
            continue
        lab = ctx.labs.get(crit["value"])
        if lab is None:
            ctx.need(f"labs.{crit['value']}", crit["id"])
            continue
        op, threshold = crit.get("op"), crit.get("threshold")
        if "branches" in crit:
            branch = None
            for b in crit["branches"]:
                applies, need = check_condition(b["when"], ctx)
                for n in need:
                    ctx.need(n, crit["id"])
                if applies:
                    branch = b
            if branch is None:
                if not any(crit["id"] in ids for ids in ctx.missing.values()):
                    ctx.warn({"id": crit["id"], "code": "CRITERION_UNCLEAR", "severity": "moderate",
                              "source": protocol_source(ctx, crit["source"])},
                             f"'{crit['text']}' does not cover this case. {crit.get('note', '')}".strip(),
                             "eligibility")
                continue
            op, threshold = branch["op"], branch["threshold"]
        if "uln_multiple" in crit:
            if lab.uln is None:
                ctx.need(f"labs.{crit['value']}.uln", crit["id"])
                continue
            threshold = uln_times(crit["uln_multiple"], lab.uln)
        holds = compare(op, lab.value, threshold)
        if holds != (crit["rule"] == "require"):
            _ineligible(ctx, crit, f"{lab.value:g} {lab.unit}", f"{op} {threshold:g} {lab.unit}")


def patient_criteria(ctx: Context) -> None:
    """Screening exclusions on patient, toxicity and serology inputs (neuropathy, HBV, contact lenses)."""
    if not ctx.protocol:
        return
    for crit in ctx.protocol["patient_criteria"]:
        missing: list[str] = []
        holds = True
        for cond in crit["all"]:
            result, need = _strict_condition(cond, ctx)
            if result is False:
                holds = False
                break
            if result is None:
                missing += need
                break  # later conditions only matter once this one is known (grade 2, then pain)
        if not holds:
            continue
        if missing:
            for n in missing:
                ctx.need(n, crit["id"])
            continue
        ctx.warn({"id": crit["id"], "code": crit["code"], "severity": "critical",
                  "source": protocol_source(ctx, crit["source"]), "action": "Not eligible on this finding."},
                 f"Excluded: {crit['text']}." + (f" {crit['note']}" if crit.get("note") else ""), "eligibility")


def _strict_condition(cond: dict, ctx: Context) -> tuple[bool | None, list[str]]:
    """check_condition, except that an unreported toxicity or patient field is missing, not absent."""
    for subject, values in (("toxicity", ctx.toxicities), ("patient", ctx.patient)):
        if subject in cond and values.get(cond[subject]) is None:
            prefix = "toxicities" if subject == "toxicity" else "patient"
            return None, [f"{prefix}.{cond[subject]}"]
    return check_condition(cond, ctx)


def _crcl_criterion(ctx: Context, crit: dict) -> None:
    results, unknown = [], []
    for method in crit["methods"]:
        key = "crcl_ml_min" if method == "cockcroft-gault" else "egfr_mdrd"
        value = ctx.derived.get(key)
        if value is None:
            unknown.append(method)
        else:
            results.append((method, value["value"], compare(crit["op"], value["value"], crit["threshold"])))
    if any(ok for _, _, ok in results):
        return
    if unknown:
        for n in _missing_renal_inputs(ctx, with_weight="cockcroft-gault" in unknown):
            ctx.need(n, crit["id"])
        return
    shown = "; ".join(f"{m} {v:g}" for m, v, _ in results)
    _ineligible(ctx, crit, shown, f"{crit['op']} {crit['threshold']:g} {crit.get('unit', '')}")


def _ineligible(ctx: Context, crit: dict, value: str, threshold: str) -> None:
    ctx.warn({"id": crit["id"], "code": "LAB_INELIGIBLE", "severity": "critical",
              "source": protocol_source(ctx, crit["source"]),
              "action": "Not eligible on this value."},
             f"{value} fails '{crit['text']}' (threshold {threshold}).", "eligibility")


# -- E: dispensing dose modification ------------------------------------------------------------
def dose_modifications(ctx: Context) -> None:
    """Label dose-modification rows for the regimen's drugs, and the inputs they need."""
    regimen_id = ctx.regimen["id"]
    for rule in ctx.kb.dose_rules:
        if rule["drug"] not in ctx.regimen_drugs or (rule.get("regimens") and regimen_id not in rule["regimens"]):
            continue
        if any((other, None) in ctx.fired for other in rule.get("unless_rule", [])):
            continue
        holds, need = check_any([rule["when"]] if "when" in rule else rule["any"], ctx)
        if holds is None:
            for n in need:
                for expanded in _expand_missing(n, ctx):
                    ctx.need(expanded, rule["id"])
            continue
        if not holds:
            continue
        if rule["cycle_start"] and ctx.cycle_day != 1:
            if ctx.cycle_day is None:
                ctx.need("day", rule["id"])
            continue
        message = fmt(rule["message"], ctx.values())
        resume = rule.get("resume_by_regimen", {}).get(regimen_id) or rule.get("resume", "")
        if rule["action"] in ("not_assessed", "consider"):
            ctx.warn({**rule, "action": resume or "Assess the dose with the protocol team."},
                     message, "dose_modification", affects=rule["drug"])
            ctx.fired.add((rule["id"], None))
            continue
        if rule["action"] == "reduce":
            if not ctx.recommend(rule["drug"], "reduce", rule["to_mg"], message, rule["source"], rule["id"]):
                continue
        else:
            ctx.recommend(rule["drug"], rule["action"], None, f"{message} {resume}".strip(),
                          rule["source"], rule["id"])
            if rule.get("resume_mg"):
                ctx.doses[-1].resume = resume_dose(ctx.current_doses.get(rule["drug"]), rule["resume_mg"])
        kind = "dose_modification"
        ctx.warn({**rule, "action": resume or f"{rule['action']} {rule['drug']}"},
                 message, kind, affects=rule["drug"])
        ctx.fired.add((rule["id"], None))
    for drug, needs in ctx.kb.needs.items():
        if drug not in ctx.regimen_drugs:
            continue
        for lab in needs["labs"]:
            if lab not in ctx.labs:
                ctx.need(f"labs.{lab}", f"needs:{drug}")
        for name in needs["patient"]:
            if ctx.patient.get(name) is None:
                ctx.need(f"patient.{name}", f"needs:{drug}")
        for group in needs["any_of"]:
            if all(_input(ctx, name) is None for name in group):
                ctx.need(" or ".join(group), f"needs:{drug}")
        if drug == "ixazomib" and "bilirubin_total" in ctx.labs and ctx.labs["bilirubin_total"].uln is None:
            ctx.need("labs.bilirubin_total.uln", "ixa-hepatic")


def resume_dose(current: float | None, step: dict) -> dict:
    """Structured resume dose: `step_mg` below the current dose; discontinue below `min_mg` (POMALYST)."""
    if current is None:
        return {"mg": None, "rule": f"{step['step_mg']:g} mg below the previous dose; discontinue below "
                                    f"{step['min_mg']:g} mg", "needs": "current_doses"}
    mg = float(exact(current) - exact(step["step_mg"]))
    if compare("<", mg, step["min_mg"]):
        return {"mg": None, "action": "discontinue"}
    return {"mg": mg, "action": "resume"}


def _input(ctx: Context, name: str):
    """A request input by its dotted name (toxicities.x, patient.x, serology.x, labs.x)."""
    where, _, key = name.partition(".")
    source = {"toxicities": ctx.toxicities, "patient": ctx.patient, "serology": ctx.serology,
              "labs": ctx.labs}.get(where, {})
    return source.get(key)


def conditional_needs(ctx: Context) -> set[str]:
    """Inputs needed only when a condition holds; returns the fields already warned about."""
    warned = set()
    for rule in ctx.kb.needs_when:
        if rule["drug"] not in ctx.regimen_drugs or ctx.patient.get(rule["patient"]) is not None:
            continue
        holds, _ = check_condition(rule["when"], ctx)
        if holds:
            field_name = f"patient.{rule['patient']}"
            ctx.need(field_name, rule["id"])
            ctx.warn(rule, rule["message"], "missing_input", field=field_name)
            warned.add(field_name)
    return warned

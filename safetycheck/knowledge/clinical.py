"""TOML rule files (labs, CTCAE, regimens, protocols, interaction and dose rules): load and validate."""

import tomllib
from pathlib import Path

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

OPS = ("<", "<=", ">", ">=")
SEVERITIES = ("critical", "major", "moderate", "minor", "info")
PATIENT_FIELDS = ("age_years", "sex", "weight_kg", "height_cm", "on_dialysis", "smoker", "child_pugh_class",
                  "contact_lens_use")
TOXICITY_FIELDS = ("peripheral_neuropathy_grade", "peripheral_neuropathy_with_pain", "febrile_neutropenia",
                   "ocular_grade", "eye_exam_date")
SEROLOGY_FIELDS = ("hbsag", "anti_hbc", "hbv_dna")
ANCHOR_FIELDS = ("registration_date", "screening_date", "c1d1_date")
DERIVED_FIELDS = ("crcl_ml_min",)
ROUTE_SCOPES = ("any", "systemic")  # "systemic": locally applied products (cream, eye drops...) are skipped


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class SourceSchema(_Strict):
    key = fields.String(required=True)
    title = fields.String(required=True)
    section = fields.String(required=True)


class ConditionSchema(_Strict):
    """One closed condition: a lab, derived value, patient field or toxicity against a value."""

    lab = fields.String()
    derived = fields.String(validate=validate.OneOf(DERIVED_FIELDS))
    patient = fields.String(validate=validate.OneOf(PATIENT_FIELDS))
    toxicity = fields.String(validate=validate.OneOf(TOXICITY_FIELDS))
    serology = fields.String(validate=validate.OneOf(SEROLOGY_FIELDS))
    op = fields.String(validate=validate.OneOf(OPS))
    value = fields.Float()
    uln = fields.Float()
    is_ = fields.Boolean(data_key="is")
    in_ = fields.List(fields.String(), data_key="in")

    @validates_schema
    def _one_subject_one_test(self, data, **_):
        subjects = [k for k in ("lab", "derived", "patient", "toxicity", "serology") if k in data]
        if len(subjects) != 1:
            raise ValidationError("name exactly one of lab, derived, patient, toxicity, serology")
        tests = [k for k in ("value", "uln", "is_", "in_") if k in data]
        if len(tests) != 1:
            raise ValidationError("give exactly one of value, uln, is, in")
        if tests[0] in ("value", "uln") and "op" not in data:
            raise ValidationError("a value or uln test needs op")


class LabSchema(_Strict):
    name = fields.String(required=True)
    unit = fields.String(required=True)
    bounds = fields.List(fields.Float(), required=True, validate=validate.Length(equal=2))
    loinc = fields.String()
    source = fields.String(required=True, validate=validate.Length(min=1))
    units = fields.Dict(keys=fields.String(), values=fields.Float(validate=validate.Range(min=0, min_inclusive=False)),
                        required=True)


class BandSchema(_Strict):
    grade = fields.Integer(required=True, validate=validate.Range(1, 5))
    below = fields.Float()
    below_lln = fields.Boolean()
    above_uln = fields.Float()


class CtcaeSchema(_Strict):
    term = fields.String(required=True)
    bands = fields.List(fields.Nested(BandSchema), required=True)
    source = fields.String(required=True, validate=validate.Length(min=1))


class ScheduleSchema(_Strict):
    cycles = fields.String(required=True)
    cycle_days = fields.Integer(required=True)
    doses = fields.List(fields.Dict(), required=True)
    source = fields.String(required=True)


class RegimenSchema(_Strict):
    id = fields.String(required=True)
    name = fields.String(required=True)
    drugs = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    source = fields.String(required=True, validate=validate.Length(min=1))
    schedule = fields.List(fields.Nested(ScheduleSchema), load_default=list)


class DoseLevelsSchema(_Strict):
    drug = fields.String(required=True)
    levels_mg = fields.List(fields.Float(), required=True)
    source = fields.String(required=True, validate=validate.Length(min=1))


class RegimensFileSchema(_Strict):
    regimen = fields.List(fields.Nested(RegimenSchema), required=True)
    dose_levels = fields.List(fields.Nested(DoseLevelsSchema), required=True)


class BranchSchema(_Strict):
    when = fields.Nested(ConditionSchema, required=True)
    op = fields.String(required=True, validate=validate.OneOf(OPS))
    threshold = fields.Float(required=True)


class LabCriterionSchema(_Strict):
    id = fields.String(required=True)
    value = fields.String(required=True)
    methods = fields.List(fields.String(validate=validate.OneOf(("cockcroft-gault", "mdrd"))))
    rule = fields.String(required=True, validate=validate.OneOf(("require", "exclude")))
    op = fields.String(validate=validate.OneOf(OPS))
    threshold = fields.Float()
    uln_multiple = fields.Float()
    unit = fields.String()
    branches = fields.List(fields.Nested(BranchSchema))
    text = fields.String(required=True)
    source = fields.String(required=True, validate=validate.Length(min=1))
    note = fields.String()

    @validates_schema
    def _threshold_or_branches(self, data, **_):
        if "branches" in data:
            return
        if "op" not in data or ("threshold" in data) == ("uln_multiple" in data):
            raise ValidationError("give op and exactly one of threshold, uln_multiple (or branches)")


class ExclusionSchema(_Strict):
    id = fields.String(required=True)
    classes = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    authorities = fields.List(fields.String(validate=validate.OneOf(("fda", "label", "protocol", "literature"))))
    window_days = fields.Integer(validate=validate.Range(min=1))
    window_months = fields.Integer(validate=validate.Range(min=1))
    window = fields.String(validate=validate.OneOf(("ever",)))
    routes = fields.String(validate=validate.OneOf(ROUTE_SCOPES), load_default="any")
    anchor = fields.String(required=True)
    anchor_field = fields.String(validate=validate.OneOf(ANCHOR_FIELDS))
    code = fields.String(required=True)
    concomitant = fields.Boolean(required=True)
    text = fields.String(required=True)
    source = fields.String(required=True, validate=validate.Length(min=1))

    @validates_schema
    def _one_window(self, data, **_):
        if sum(k in data for k in ("window_days", "window_months", "window")) != 1:
            raise ValidationError("give exactly one of window_days, window_months, window = 'ever'")


class CorticosteroidLimitSchema(_Strict):
    id = fields.String(required=True)
    max_prednisone_mg_per_day = fields.Float(required=True)
    code = fields.String(required=True)
    concomitant = fields.Boolean(required=True)
    text = fields.String(required=True)
    source = fields.String(required=True, validate=validate.Length(min=1))


class PatientCriterionSchema(_Strict):
    """A screening exclusion on patient, toxicity or serology inputs: fires when every condition in `all` holds."""

    id = fields.String(required=True)
    code = fields.String(required=True)
    all = fields.List(fields.Nested(ConditionSchema), required=True, validate=validate.Length(min=1))
    text = fields.String(required=True)
    source = fields.String(required=True, validate=validate.Length(min=1))
    note = fields.String()


class FlaggedSchema(_Strict):
    id = fields.String(required=True)
    text = fields.String(required=True)
    note = fields.String(required=True)
    source = fields.String(required=True, validate=validate.Length(min=1))


class ProtocolSchema(_Strict):
    id = fields.String(required=True)
    regimen = fields.String(required=True)
    title = fields.String(required=True)
    source = fields.String(required=True, validate=validate.Length(min=1))
    note = fields.String()
    lab_criteria = fields.List(fields.Nested(LabCriterionSchema), load_default=list)
    exclusions = fields.List(fields.Nested(ExclusionSchema), load_default=list)
    corticosteroid_limit = fields.List(fields.Nested(CorticosteroidLimitSchema), load_default=list)
    patient_criteria = fields.List(fields.Nested(PatientCriterionSchema), load_default=list)
    flagged = fields.List(fields.Nested(FlaggedSchema), load_default=list)


class ProtocolsFileSchema(_Strict):
    protocol = fields.List(fields.Nested(ProtocolSchema), required=True)


_rule_common = {
    "id": fields.String(required=True),
    "code": fields.String(required=True),
    "severity": fields.String(required=True, validate=validate.OneOf(SEVERITIES)),
    "message": fields.String(required=True),
    "action": fields.String(),
    "source": fields.Nested(SourceSchema, required=True),
}


class InteractionRuleSchema(_Strict):
    classes = fields.List(fields.String(), required=True)
    authorities = fields.List(fields.String(validate=validate.OneOf(("fda", "label", "protocol", "literature"))),
                              required=True)
    affects = fields.String(required=True)
    unless_rule = fields.String()
    also_when_smoker = fields.Boolean(load_default=False)
    routes = fields.String(validate=validate.OneOf(ROUTE_SCOPES), load_default="any")
    dose = fields.Dict()
    locals().update(_rule_common)


class ProphylaxisRuleSchema(_Strict):
    regimen_classes = fields.List(fields.String(), load_default=list)
    regimen_drugs = fields.List(fields.String(), load_default=list)
    needs_groups = fields.List(fields.String(), required=True)
    modes = fields.List(fields.String(validate=validate.OneOf(("dispensing", "screening"))),
                        load_default=lambda: ["dispensing"])
    protocols = fields.List(fields.String(), load_default=list)
    kind = fields.String(validate=validate.OneOf(("thrombosis", "infection")), load_default="thrombosis")
    locals().update(_rule_common)


class BleedingRuleSchema(_Strict):
    classes = fields.List(fields.String(), required=True)
    below = fields.Float(required=True)
    unless_rule = fields.String()
    locals().update(_rule_common)


class InteractionsFileSchema(_Strict):
    rule = fields.List(fields.Nested(InteractionRuleSchema), required=True)
    prophylaxis = fields.List(fields.Nested(ProphylaxisRuleSchema), required=True)
    bleeding = fields.List(fields.Nested(BleedingRuleSchema), required=True)


class DoseRuleSchema(_Strict):
    drug = fields.String(required=True)
    regimens = fields.List(fields.String())
    when = fields.Nested(ConditionSchema)
    any = fields.List(fields.Nested(ConditionSchema))
    cycle_start = fields.Boolean(load_default=False)
    unless_rule = fields.List(fields.String())
    action = fields.String(required=True, validate=validate.OneOf(
        ("hold", "reduce", "discontinue", "not_assessed", "consider")))  # the last two only warn
    to_mg = fields.Float()
    resume = fields.String()
    resume_mg = fields.Dict(keys=fields.String(validate=validate.OneOf(("step_mg", "min_mg"))), values=fields.Float())
    resume_by_regimen = fields.Dict(keys=fields.String(), values=fields.String())
    locals().update(_rule_common)

    @validates_schema
    def _shape(self, data, **_):
        if ("when" in data) == ("any" in data):
            raise ValidationError("give exactly one of when, any")
        if (data["action"] == "reduce") != ("to_mg" in data):
            raise ValidationError("to_mg goes with action = 'reduce' (and only there)")


class NeedsSchema(_Strict):
    drug = fields.String(required=True)
    labs = fields.List(fields.String(), required=True)
    patient = fields.List(fields.String(validate=validate.OneOf(PATIENT_FIELDS)), required=True)
    any_of = fields.List(fields.List(fields.String()), load_default=list)  # one of each group must be given
    source = fields.Nested(SourceSchema, required=True)


class NeedsWhenSchema(_Strict):
    """An input needed only when a condition holds (Child-Pugh class when bilirubin > ULN)."""

    id = fields.String(required=True)
    drug = fields.String(required=True)
    when = fields.Nested(ConditionSchema, required=True)
    patient = fields.String(required=True, validate=validate.OneOf(PATIENT_FIELDS))
    locals().update(_rule_common)


class DoseFileSchema(_Strict):
    rule = fields.List(fields.Nested(DoseRuleSchema), required=True)
    needs = fields.List(fields.Nested(NeedsSchema), required=True)
    needs_when = fields.List(fields.Nested(NeedsWhenSchema), load_default=list)


FILES = {
    "labs.toml": None,
    "ctcae.toml": None,
    "regimens.toml": RegimensFileSchema,
    "protocols.toml": ProtocolsFileSchema,
    "rules/interactions.toml": InteractionsFileSchema,
    "rules/dose_modifications.toml": DoseFileSchema,
}


def _flatten(messages, prefix=""):
    if isinstance(messages, dict):
        for key, value in messages.items():
            yield from _flatten(value, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, " ".join(map(str, messages)) if isinstance(messages, list) else str(messages)


def load_clinical(data_dir: Path, problems, known_drug, classes: dict) -> dict:
    """Load every TOML rule file; record problems as 'file: path: message'; return parsed content."""
    content = {}
    for name, schema_cls in FILES.items():
        label = f"data/{name}"
        path = data_dir / name
        if not path.exists():
            problems.add(label, "file is missing", "restore it from git")
            continue
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as err:
            problems.add(label, f"not valid TOML: {err}")
            continue
        # labs.toml and ctcae.toml are tables keyed by lab; the rest are whole-file schemas.
        per_key = {"labs.toml": LabSchema, "ctcae.toml": CtcaeSchema}.get(name)
        parts = {key: (per_key, value) for key, value in raw.items()} if per_key else {"": (schema_cls, raw)}
        loaded = {}
        for key, (schema, value) in parts.items():
            try:
                loaded[key] = schema().load(value)
            except ValidationError as err:
                for where, message in _flatten(err.messages, key):
                    problems.add(f"{label}: {where}", message)
        if len(loaded) == len(parts):
            content[name] = loaded if per_key else loaded[""]
    if len(content) == len(FILES):
        _cross_check(content, problems, known_drug, classes)
    return content


def _cross_check(content, problems, known_drug, classes) -> None:
    labs = content["labs.toml"]
    for lab in content["ctcae.toml"]:
        if lab not in labs:
            problems.add(f"data/ctcae.toml: {lab}", "unknown lab", "use a key of labs.toml")
    regimens = {r["id"]: r for r in content["regimens.toml"]["regimen"]}
    for r in regimens.values():
        r["drugs"] = [known_drug(d, f"data/regimens.toml: regimen {r['id']}", "drugs") or d for d in r["drugs"]]
    ids: dict[str, str] = {}

    def unique(rule_id: str, where: str) -> None:
        if rule_id in ids:
            problems.add(where, f"rule id '{rule_id}' also used at {ids[rule_id]}", "rule ids must be unique")
        ids[rule_id] = where

    def check_condition(cond: dict, where: str) -> None:
        if "lab" in cond and cond["lab"] not in labs:
            problems.add(where, f"unknown lab '{cond['lab']}'", "use a key of data/labs.toml")

    def check_classes(names, where):
        for c in names:
            if c not in classes:
                problems.add(where, f"unknown class '{c}'", "define it in data/drug_lists/classes.csv")

    for p in content["protocols.toml"]["protocol"]:
        where = f"data/protocols.toml: protocol {p['id']}"
        if p["regimen"] not in regimens:
            problems.add(where, f"unknown regimen '{p['regimen']}'")
        for c in p["lab_criteria"]:
            unique(c["id"], f"{where}: lab_criteria {c['id']}")
            if c["value"] != "crcl" and c["value"] not in labs:
                problems.add(f"{where}: {c['id']}", f"unknown lab '{c['value']}'")
            for b in c.get("branches", []):
                check_condition(b["when"], f"{where}: {c['id']}")
        for e in p["exclusions"]:
            unique(e["id"], f"{where}: exclusions {e['id']}")
            check_classes(e["classes"], f"{where}: {e['id']}")
        for e in p["corticosteroid_limit"]:
            unique(e["id"], f"{where}: corticosteroid_limit {e['id']}")
        for e in p["patient_criteria"]:
            unique(e["id"], f"{where}: patient_criteria {e['id']}")
    interactions = content["rules/interactions.toml"]
    for kind in ("rule", "prophylaxis", "bleeding"):
        for r in interactions[kind]:
            where = f"data/rules/interactions.toml: {kind} {r['id']}"
            unique(r["id"], where)
            check_classes(r.get("classes", []) + r.get("regimen_classes", []), where)
            if "affects" in r:
                r["affects"] = known_drug(r["affects"], where, "affects") or r["affects"]
            if kind == "prophylaxis" and not (r["regimen_classes"] or r["regimen_drugs"]):
                problems.add(where, "give regimen_classes or regimen_drugs")
            r_drugs = r.get("regimen_drugs", [])
            r_drugs[:] = [known_drug(d, where, "regimen_drugs") or d for d in r_drugs]
    dose = content["rules/dose_modifications.toml"]
    for r in dose["rule"]:
        where = f"data/rules/dose_modifications.toml: rule {r['id']}"
        unique(r["id"], where)
        r["drug"] = known_drug(r["drug"], where, "drug") or r["drug"]
        for cond in [r["when"]] if "when" in r else r["any"]:
            check_condition(cond, where)
        for reg in r.get("regimens", []):
            if reg not in regimens:
                problems.add(where, f"unknown regimen '{reg}'")
    for r in dose["rule"]:
        for other in r.get("unless_rule", []):
            if other not in ids:
                problems.add(f"data/rules/dose_modifications.toml: rule {r['id']}", f"unless_rule '{other}' unknown")
    for n in dose["needs_when"]:
        where = f"data/rules/dose_modifications.toml: needs_when {n['id']}"
        unique(n["id"], where)
        n["drug"] = known_drug(n["drug"], where, "drug") or n["drug"]
        check_condition(n["when"], where)
    for n in dose["needs"]:
        n["drug"] = known_drug(n["drug"], "data/rules/dose_modifications.toml: needs", "drug") or n["drug"]
        for lab in n["labs"]:
            if lab not in labs:
                problems.add(f"data/rules/dose_modifications.toml: needs {n['drug']}", f"unknown lab '{lab}'")


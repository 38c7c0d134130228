"""Lab units, derived values (creatinine clearance, eGFR, corrected calcium) and CTCAE grades."""

import operator
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache

from .knowledge import KnowledgeBase
from .models import InputError, LabValue

_UNIT_SPELLINGS = str.maketrans({"µ": "u", "μ": "u", "³": "3", " ": ""})


@lru_cache(maxsize=1024)  # a few dozen spellings, asked for on every lab of every check
def _unit_key(unit: str) -> str:
    return unit.translate(_UNIT_SPELLINGS).replace("^", "*").lower()


CONVERTED_DIGITS = 6  # significant digits kept after a unit conversion (catalogue: "Exact comparisons")


def exact(x) -> Decimal:
    """A number as a clinician writes it: the shortest decimal that round-trips the float (1.8, not 1.79999...)."""
    if isinstance(x, Decimal):
        return x
    x = float(x)
    return _exact_float(x) if x else Decimal(repr(x))  # 0.0 and -0.0 are one cache key: keep the sign


@lru_cache(maxsize=4096)  # thresholds and lab values recur across checks; Decimal(repr()) is the slow part
def _exact_float(x: float) -> Decimal:
    return Decimal(repr(x))


_COMPARISONS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def compare(op: str, left, right) -> bool:
    """`left op right` in decimal arithmetic, so 1.8 > 1.5 x 1.2 is False as it is by hand."""
    return _COMPARISONS[op](exact(left), exact(right))


def times(multiple, value) -> Decimal:
    """`multiple x value` (x ULN) computed exactly in decimal."""
    return exact(multiple) * exact(value)


def convert(value, factor) -> float:
    """value x factor in decimal, rounded half-even to CONVERTED_DIGITS significant digits."""
    if factor == 1:
        return float(value)
    product = exact(value) * exact(factor)
    if product == 0:
        return 0.0
    quantum = Decimal(1).scaleb(product.adjusted() - CONVERTED_DIGITS + 1)
    return float(product.quantize(quantum, rounding=ROUND_HALF_EVEN))


def normalize_labs(raw: dict, kb: KnowledgeBase) -> dict[str, LabValue]:
    """Convert every lab to its canonical unit; an unknown unit or impossible value is an InputError."""
    errors: dict = {}
    labs: dict[str, LabValue] = {}
    for key, sent in raw.items():
        spec = kb.labs.get(key)
        if spec is None:
            errors[key] = ["Unknown lab."]
            continue
        factors = {_unit_key(u): f for u, f in spec["units"].items()}
        factor = factors.get(_unit_key(sent["unit"]))
        if factor is None:
            errors[key] = {"unit": [f"Unit '{sent['unit']}' is not understood for {spec['name']}; "
                                    f"accepted: {', '.join(spec['units'])}."]}
            continue
        value = convert(sent["value"], factor)
        low, high = spec["bounds"]
        if not low <= value <= high:
            errors[key] = {"value": [f"{sent['value']} {sent['unit']} = {value:g} {spec['unit']} is outside "
                                     f"the plausible range {low:g}-{high:g} {spec['unit']}; check the unit."]}
            continue
        uln = sent.get("uln")
        lln = sent.get("lln")
        labs[key] = LabValue(key, value, spec["unit"], None if uln is None else convert(uln, factor),
                             None if lln is None else convert(lln, factor), dict(sent))
    if errors:
        raise InputError({"labs": errors})
    return labs


def cockcroft_gault(age: float, weight_kg: float, sex: str, creatinine_mg_dl: float) -> float:
    """CrCl (mL/min) = (140 - age) x weight / (72 x SCr), x 0.85 if female; total body weight, SCr as measured."""
    crcl = (140 - exact(age)) * exact(weight_kg) / (72 * exact(creatinine_mg_dl))
    return float(crcl * Decimal("0.85") if sex == "female" else crcl)


def mdrd(age: float, sex: str, creatinine_mg_dl: float) -> float:
    """IDMS-traceable 4-variable MDRD eGFR (mL/min/1.73 m2), without the race coefficient."""
    egfr = 175 * creatinine_mg_dl ** -1.154 * age ** -0.203
    return egfr * 0.742 if sex == "female" else egfr


def corrected_calcium(calcium_mg_dl: float, albumin_g_dl: float) -> float:
    """Payne: measured Ca + 0.8 x (4.0 - albumin), mg/dL."""
    return float(exact(calcium_mg_dl) + Decimal("0.8") * (4 - exact(albumin_g_dl)))


def ctcae_grade(lab: LabValue, table: dict) -> dict:
    """CTCAE v5.0 grade of a lab from its bands; grade 1 needs the LLN/ULN the bands name."""
    for band in table["bands"]:
        if "below" in band and compare("<", lab.value, band["below"]):
            return {"grade": band["grade"], "term": table["term"], "version": "5.0"}
        if band.get("below_lln"):
            if lab.lln is None:
                return {"grade": "0-1", "term": table["term"], "version": "5.0",
                        "note": "grade 1 vs 0 needs the lab's lower limit of normal (lln)"}
            if compare("<", lab.value, lab.lln):
                return {"grade": band["grade"], "term": table["term"], "version": "5.0"}
        if "above_uln" in band:
            if lab.uln is None:
                return {"grade": None, "term": table["term"], "version": "5.0", "note": "needs uln"}
            if compare(">", lab.value, times(band["above_uln"], lab.uln)):
                return {"grade": band["grade"], "term": table["term"], "version": "5.0"}
    return {"grade": 0, "term": table["term"], "version": "5.0"}


def derive(labs: dict[str, LabValue], patient: dict, kb: KnowledgeBase) -> dict:
    """Every derived value that the inputs allow, each with its method.

    Values are not rounded: a rounded 29.96 mL/min would pass a ">= 30" threshold.
    """
    derived: dict = {}
    creatinine = labs.get("creatinine")
    age, weight, sex = patient.get("age_years"), patient.get("weight_kg"), patient.get("sex")
    if creatinine and age is not None and weight is not None and sex in ("female", "male"):
        derived["crcl_ml_min"] = {
            "value": cockcroft_gault(age, weight, sex, creatinine.value),
            "method": "cockcroft-gault", "weight": "total body weight", "scr_rounding": "none",
            "unit": "mL/min",
        }
    if creatinine and age is not None and sex in ("female", "male"):
        derived["egfr_mdrd"] = {
            "value": mdrd(age, sex, creatinine.value),
            "method": "mdrd-idms-175, no race coefficient", "unit": "mL/min/1.73m2",
        }
    if "calcium" in labs and "albumin" in labs:
        derived["corrected_calcium_mg_dl"] = {
            "value": corrected_calcium(labs["calcium"].value, labs["albumin"].value),
            "method": "payne",
        }
    grades = {key: ctcae_grade(labs[key], table) for key, table in kb.ctcae.items() if key in labs}
    if grades:
        derived["ctcae"] = grades
    return derived

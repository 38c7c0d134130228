"""The check form <-> the v1 request body, and field errors back onto the form's fields (no Flask)."""

PATIENT_NUMBERS = ("age_years", "weight_kg", "height_cm")
# Yes / no / not answered: "not answered" is sent as absent, never as false, so rules that need the answer
# fail closed (MISSING_PATIENT_DATA) exactly as when the API is sent no value.
PATIENT_FLAGS = ("on_dialysis", "smoker", "contact_lens_use")
TOX_FLAGS = ("peripheral_neuropathy_with_pain",)
ULN_LABS = ("bilirubin_total", "ast", "alt")  # the dose rules read these against the ULN
TOX_GRADES = ("peripheral_neuropathy_grade", "ocular_grade")
TOP_NUMBERS = ("cycle", "day")
TOP_DATES = ("date", "registration_date", "screening_date", "c1d1_date")  # the check date and window anchors
SEROLOGY = {"hbsag": ("positive", "negative"), "anti_hbc": ("positive", "negative"),
            "hbv_dna": ("detectable", "undetectable")}
ANSWERS = {"yes": True, "no": False}  # anything else (the "not answered" choice) leaves the field out


def _answer(raw, name: str, errors: dict) -> bool | None:
    """yes -> True, no -> False, not answered -> None; anything else is refused, not read as an answer."""
    text = (raw or "").strip()
    if text and text not in ANSWERS:
        errors[name] = ["Choose yes, no or not answered."]
    return ANSWERS.get(text)


def _shown(value) -> str:
    """A stored boolean -> the three-way choice ("" = not answered)."""
    return "" if value is None else ("yes" if value else "no")


def regimen_drugs(kb) -> list[str]:
    """Every drug of every regimen (one dose field each)."""
    return sorted({d for r in kb.regimens.values() for d in r["drugs"]})


def _number(raw: str, name: str, errors: dict, integer: bool = False):
    text = (raw or "").strip().replace(",", ".")
    if not text:
        return None
    try:
        return int(text) if integer else float(text)
    except ValueError:
        errors[name] = ["Enter a whole number." if integer else "Enter a number."]
        return None


def to_body(form, kb) -> tuple[dict, dict]:
    """Posted form fields -> (v1 request body, errors by form field); empty fields are left out."""
    errors: dict[str, list[str]] = {}
    body: dict = {"regimen": form.get("regimen", ""), "mode": form.get("mode") or "dispensing"}
    for key in ("protocol", *TOP_DATES):
        if (form.get(key) or "").strip():
            body[key] = form[key].strip()  # the schema checks the date and names the field
    for key in TOP_NUMBERS:
        value = _number(form.get(key), key, errors, integer=True)
        if value is not None:
            body[key] = value
    patient: dict = {}
    if form.get("patient_id", "").strip():
        patient["id"] = form["patient_id"].strip()
    for key in ("sex", "child_pugh_class"):  # choices; the schema refuses anything else, naming the field
        if form.get(key):
            patient[key] = form[key]
    for key in PATIENT_NUMBERS:
        value = _number(form.get(key), key, errors)
        if value is not None:
            patient[key] = value
    for key in PATIENT_FLAGS:
        answer = _answer(form.get(key), key, errors)
        if answer is not None:
            patient[key] = answer
    body["patient"] = patient
    labs: dict = {}
    for key in kb.labs:
        value = _number(form.get(f"lab_{key}_value"), f"lab_{key}_value", errors)
        unit = (form.get(f"lab_{key}_unit") or "").strip()
        if value is None:
            continue
        if not unit:  # never assume a unit: a guessed unit is a silent error
            errors[f"lab_{key}_unit"] = ["Choose the unit the value is in."]
            continue
        lab = {"value": value, "unit": unit}
        uln = _number(form.get(f"lab_{key}_uln"), f"lab_{key}_uln", errors)
        if uln is not None:
            lab["uln"] = uln
        labs[key] = lab
    body["labs"] = labs
    doses = {}
    for drug in regimen_drugs(kb):
        value = _number(form.get(f"dose_{drug}"), f"dose_{drug}", errors)
        if value is not None:
            doses[drug] = value
    body["current_doses"] = doses
    tox: dict = {}
    for key in TOX_GRADES:
        value = _number(form.get(f"tox_{key}"), f"tox_{key}", errors, integer=True)
        if value is not None:
            tox[key] = value
    for key in TOX_FLAGS:
        answer = _answer(form.get(f"tox_{key}"), f"tox_{key}", errors)
        if answer is not None:
            tox[key] = answer
    if form.get("tox_febrile_neutropenia") == "yes":
        tox["febrile_neutropenia"] = True
    if (form.get("tox_eye_exam_date") or "").strip():
        tox["eye_exam_date"] = form["tox_eye_exam_date"].strip()
    body["toxicities"] = tox
    serology = {key: form[f"serology_{key}"] for key in SEROLOGY if form.get(f"serology_{key}")}
    if serology:  # the schema refuses a value outside the choices, naming serology.KEY
        body["serology"] = serology
    text = form.get("medication_text", "")
    if text.strip():
        body["medication_text"] = text.replace("\r\n", "\n")
    return body, errors


def to_form(body: dict) -> dict:
    """A stored v1 request -> form values ("edit and check again")."""
    values = {k: body.get(k) for k in ("regimen", "protocol", "mode", *TOP_DATES, "cycle", "day")}
    patient = body.get("patient") or {}
    values["patient_id"] = patient.get("id")
    values["sex"] = patient.get("sex")
    values["child_pugh_class"] = patient.get("child_pugh_class")
    for key in PATIENT_NUMBERS:
        values[key] = patient.get(key)
    for key in PATIENT_FLAGS:
        values[key] = _shown(patient.get(key))
    for key, lab in (body.get("labs") or {}).items():
        values[f"lab_{key}_value"] = lab.get("value")
        values[f"lab_{key}_unit"] = lab.get("unit")
        values[f"lab_{key}_uln"] = lab.get("uln")
    for drug, dose in (body.get("current_doses") or {}).items():
        values[f"dose_{drug}"] = dose
    tox = body.get("toxicities") or {}
    for key in TOX_GRADES:
        values[f"tox_{key}"] = tox.get(key)
    for key in TOX_FLAGS:
        values[f"tox_{key}"] = _shown(tox.get(key))
    values["tox_febrile_neutropenia"] = "yes" if tox.get("febrile_neutropenia") else ""
    values["tox_eye_exam_date"] = tox.get("eye_exam_date")
    for key, value in (body.get("serology") or {}).items():
        values[f"serology_{key}"] = value
    lines = [m.get("text") or m.get("name") for m in body.get("medications") or []]
    text = body.get("medication_text") or ""
    values["medication_text"] = "\n".join([*(x for x in lines if x), *([text] if text else [])])
    return {k: ("" if v is None else v) for k, v in values.items()}


def field_errors(errors: dict) -> dict[str, list[str]]:
    """v1 field errors ({"labs": {"anc": {"unit": [...]}}}) -> the form's field names."""
    flat: dict[str, list[str]] = {}

    def walk(node, path):
        if isinstance(node, dict):
            for key, child in node.items():
                walk(child, (*path, str(key)))
        else:
            flat.setdefault(form_name(path), []).extend(node if isinstance(node, list) else [str(node)])

    walk(errors, ())
    return flat


def form_name(path: tuple[str, ...]) -> str:
    if not path:
        return "_form"
    head, rest = path[0], path[1:]
    if head == "labs" and len(rest) >= 2:
        return f"lab_{rest[0]}_{rest[1]}"
    if head == "labs" and rest:
        return f"lab_{rest[0]}_value"
    if head == "patient" and rest:
        return "patient_id" if rest[0] == "id" else rest[0]
    if head == "toxicities" and rest:
        return f"tox_{rest[0]}"
    if head == "serology" and rest:
        return f"serology_{rest[0]}"
    if head == "current_doses" and rest:
        return f"dose_{rest[0]}"
    if head == "medications":
        return "medication_text"
    return head

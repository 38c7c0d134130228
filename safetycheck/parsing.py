"""Free-text medication lines -> ParsedMedication (name, strength, unit, form, route, frequency, PRN)."""

import re
from dataclasses import dataclass, field, fields

_BULLET = re.compile(r"^\s*(?:[-*\u2022\u00b7\u25aa\u25e6\u2023\u2043>]+|\(?\d{1,3}[.)]|[a-z][.)])\s+", re.I)
_RXNORM_NOISE = re.compile(r"\b(?:N?DA|ANDA|BLA)\d{5,7}\b|^\s*\d+\s*HR\b", re.I)
_BRACKET = re.compile(r"\[([^\]]+)\]")
_UNITS = {
    "mg": "mg", "milligram": "mg", "milligrams": "mg", "mcg": "mcg", "ug": "mcg", "µg": "mcg",
    "microgram": "mcg", "micrograms": "mcg", "g": "g", "gm": "g", "gram": "g", "grams": "g",
    "ml": "mL", "l": "L", "unit": "units", "units": "units", "u": "units", "iu": "IU",
    "meq": "mEq", "mmol": "mmol", "%": "%", "mg/ml": "mg/mL", "mcg/ml": "mcg/mL", "mg/kg": "mg/kg",
    "puff": "puff", "puffs": "puff", "drop": "drop", "drops": "drop",
}
_NUMBER = r"\d+(?:[.,]\d+)?(?:\s*/\s*\d+(?:[.,]\d+)?)*"
_UNIT_RE = "|".join(sorted((re.escape(u) for u in _UNITS), key=len, reverse=True))
_DOSE = re.compile(rf"^(?P<num>{_NUMBER})\s*(?P<unit>{_UNIT_RE})?$", re.I)
_DOSE_IN_TEXT = re.compile(rf"(?<![\w.])(?P<num>{_NUMBER})\s*(?P<unit>{_UNIT_RE})(?![a-z])", re.I)
_ROUTES = {
    "po": "oral", "oral": "oral", "orally": "oral", "iv": "intravenous", "ivpb": "intravenous",
    "intravenous": "intravenous", "sc": "subcutaneous", "sq": "subcutaneous", "subq": "subcutaneous",
    "subcut": "subcutaneous", "subcutaneous": "subcutaneous", "im": "intramuscular",
    "intramuscular": "intramuscular", "sl": "sublingual", "sublingual": "sublingual", "pr": "rectal",
    "rectal": "rectal", "topical": "topical", "top": "topical", "inh": "inhalation",
    "inhaled": "inhalation", "neb": "inhalation", "td": "transdermal", "transdermal": "transdermal",
    "intranasal": "nasal", "nasal": "nasal", "ophthalmic": "ophthalmic", "ophth": "ophthalmic",
    "topically": "topical", "cutaneous": "topical", "otic": "otic", "vaginal": "vaginal",
    "vaginally": "vaginal", "pv": "vaginal", "rectally": "rectal",
}
# Dose forms that imply a route when none is written ("ketoconazole 2% cream"); "drops" alone does not.
_FORM_ROUTES = {
    "cream": "topical", "ointment": "topical", "gel": "topical", "lotion": "topical", "shampoo": "topical",
    "foam": "topical", "eye": "ophthalmic", "ear": "otic", "pessary": "vaginal", "suppository": "rectal",
    "enema": "rectal", "inhaler": "inhalation", "hfa": "inhalation", "nebulizer": "inhalation",
    "nebuliser": "inhalation", "spray": None, "patch": "transdermal",
}
_FREQUENCY = re.compile(
    r"\b(?:q\s?\d+(?:-\d+)?\s?(?:h|hr|hrs|hours?)|every\s+\d+(?:-\d+)?\s+(?:hours?|days?|weeks?)|"
    r"q\.?\s?d\.?|qam|qpm|qhs|hs|bid|b\.i\.d\.?|tid|t\.i\.d\.?|qid|q\.i\.d\.?|qod|qwk|q\s?week|"
    r"once\s+(?:a\s+)?(?:daily|weekly|monthly)|twice\s+(?:a\s+)?(?:daily|weekly)|"
    r"(?:three|four)\s+times\s+(?:a\s+)?daily|daily|nightly|weekly|monthly|"
    r"every\s+(?:morning|evening|night|other\s+day)|(?:days?|d)\s?\d+(?:\s?[-,]\s?\d+)+)\b",
    re.I,
)
_PRN = re.compile(r"\b(?:prn|p\.r\.n\.?|as\s+needed)\b(?:\s+(?:for\s+)?(?P<why>.+))?", re.I)
_FORM_WORDS = {
    "tab", "tabs", "tablet", "tablets", "cap", "caps", "capsule", "capsules", "er", "xr", "sr",
    "dr", "xl", "cr", "la", "ec", "odt", "inj", "injection", "injectable", "solution", "soln",
    "susp", "suspension", "chewable", "extended", "delayed", "release", "film", "coated", "oral",
    "auto-injector", "autoinjector", "injector", "pen", "vial", "syringe", "prefilled", "patch",
    "cream", "ointment", "gel", "drops", "spray", "inhaler", "hfa", "powder", "elixir", "syrup",
    "liquid", "lozenge", "suppository", "kit", "disintegrating", "sublingual", "transdermal",
    "topical", "ophthalmic", "nasal", "intravenous", "subcutaneous", "intramuscular", "inhalation",
    "shampoo", "lotion", "foam", "pessary", "enema", "eye", "ear", "otic", "vaginal", "rectal", "nebulizer",
    "nebuliser",
}
_STOP_WORDS = {"x", "take", "takes", "taking", "give", "for", "with", "then", "start", "started",
               "stop", "stopped", "held", "hold", "last", "dose", "on", "per", "via"}


@dataclass(frozen=True)
class ParsedMedication:
    """One medication entry as written, with what could be read off it."""

    text: str
    name: str
    dose: float | None = None
    dose_text: str | None = None
    unit: str | None = None
    form: str | None = None
    route: str | None = None
    frequency: str | None = None
    prn: bool = False
    indication: str | None = None
    other_names: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict:
        """The contract's `parsed` object: only the fields that were read."""
        # Shallow on purpose: dataclasses.asdict deep-copies and dominated a check's run time.
        data = {name: getattr(self, name) for name in _AS_DICT_FIELDS}
        data["other_names"] = list(self.other_names)
        return {k: v for k, v in data.items() if v not in (None, False, [], "")}


_AS_DICT_FIELDS = tuple(f.name for f in fields(ParsedMedication) if f.name != "text")
_NEW = object.__new__


def normalize_route(route: str | None) -> str | None:
    """A structured route ("PO", "Topical", "eye drops") in the parser's route words; unknown stays as sent."""
    if not route:
        return None
    words = route.lower().replace("-", " ").split()
    for word in words:
        if word in _ROUTES:
            return _ROUTES[word]
    for word in words:
        if _FORM_ROUTES.get(word):
            return _FORM_ROUTES[word]
    return route.lower()


def split_lines(text: str) -> list[str]:
    """Split a pasted list into medication lines, dropping blank lines, bullets and numbering."""
    lines = []
    for raw in text.splitlines():
        line = _BULLET.sub("", raw).strip()
        if line:
            lines.append(line)
    return lines


# Case-folded twins of the patterns that every line runs through (their letters are all lower-case):
# on an ASCII line, matching the lower-cased line without IGNORECASE finds the same spans, faster.
_FREQUENCY_LOWER = re.compile(_FREQUENCY.pattern)
_PRN_LOWER = re.compile(_PRN.pattern)
# A frequency starts with one of these letters: a word that does not cannot be one.
_FREQUENCY_FIRST = frozenset("qehbtofdnwm")
_SPACES = re.compile(r"\s+")
# A route or a stop word ends the name (one look-up for both).
_NAME_ENDS = frozenset(_ROUTES) | frozenset(_STOP_WORDS)
_SLASH = re.compile(r"\s*/\s*")


def _number(text: str) -> float | None:
    text = text.replace(",", ".")
    parts = _SLASH.split(text) if "/" in text else (text,)
    try:
        return float(parts[0]) if len(parts) == 1 else None
    except ValueError:
        return None


def parse_line(line: str) -> ParsedMedication:
    """Read name, strength, unit, form, route, frequency and PRN from one line."""
    # Most lines start with a letter not followed by "." or ")": no bullet can match there.
    plain = line[:1].isalpha() and line[1:2] not in (".", ")")
    text = (line if plain else _BULLET.sub("", line)).strip()
    if "[" in text:
        other_names = tuple(b.strip() for b in _BRACKET.findall(text) if b.strip())
        work = _BRACKET.sub(" ", text)
    else:
        other_names, work = (), text
    ascii_line = work.isascii()
    folded = work.lower()
    # The RxNorm noise needs "hr", or "da"/"bla" before its digits; the PRN words "prn", "p.r.n" or "needed".
    if "hr" in folded or "da" in folded or "bla" in folded:
        work = _RXNORM_NOISE.sub(" ", work)
        folded = work.lower()
    if "prn" in folded or "p.r.n" in folded or "needed" in folded:
        prn = _PRN_LOWER.search(folded) if ascii_line else _PRN.search(work)
    else:
        prn = None
    indication = None
    if prn:
        if ascii_line and prn.group("why"):
            indication = work[prn.start("why") : prn.end("why")].strip()
        elif not ascii_line:
            indication = prn.group("why").strip() if prn.group("why") else None
        work = work[: prn.start()]

    tokens = work.replace(",", " ").split()
    # Leading quantities ("0.3 ML Epinephrine ...") are not part of the name.
    while tokens and ((tokens[0][:1].isdecimal() and _DOSE.match(tokens[0])) or tokens[0].lower() in _UNITS):
        tokens.pop(0)
    name_tokens: list[str] = []
    for token in tokens:
        low = token.lower().strip(".;:")
        # A dose starts with a digit (\d is a Unicode decimal digit, as isdecimal() tests); a frequency with
        # one of _FREQUENCY_FIRST: the cheap test first, the pattern only then (this runs for every word).
        if (low in _NAME_ENDS or (low in _FORM_WORDS and name_tokens)
                or (token[:1].isdecimal() and _DOSE.match(token))
                or ((not low or low[0] in _FREQUENCY_FIRST) and _FREQUENCY.fullmatch(low))):
            break
        name_tokens.append(token)
    name = " ".join(name_tokens).strip(" ,;:-")
    rest = work[len(" ".join(tokens[: len(name_tokens)])):] if name_tokens else work

    dose = unit = dose_text = None
    found = _DOSE_IN_TEXT.search(rest)
    if found:
        dose_text = found.group("num")
        if not dose_text.isdigit():
            dose_text = _SPACES.sub("", dose_text)
        dose = float(dose_text) if dose_text.isdecimal() else _number(dose_text)
        unit = _UNITS[found.group("unit").lower()]
    rest_folded = rest.lower()  # lower-casing never makes or removes a space: split after it
    # One pass over the words: the first route word; else the first dose form that implies one; the forms.
    route = form_route = None
    form_words = []
    for t in rest_folded.split():
        t = t.strip(".,;:")
        if t in _ROUTES:
            route = route or _ROUTES[t]
        else:
            form_route = form_route or _FORM_ROUTES.get(t)
            if t in _FORM_WORDS:
                form_words.append(t)
    route = route or form_route
    if ascii_line:
        frequency = _FREQUENCY_LOWER.search(rest_folded)
        frequency = rest[frequency.start() : frequency.end()] if frequency else None
    else:
        frequency = _FREQUENCY.search(rest)
        frequency = frequency.group(0) if frequency else None
    # Filled in directly: a frozen dataclass's __init__ sets each of its 11 fields through object.__setattr__,
    # which was a fifth of reading a line; the object is the same (equal, same hash, still frozen).
    parsed = _NEW(ParsedMedication)
    parsed.__dict__.update(
        text=line.strip(),
        name=name,
        dose=dose,
        dose_text=dose_text if dose is None else None,
        unit=unit,
        form=" ".join(form_words) or None,
        route=route,
        frequency=frequency,
        prn=bool(prn),
        indication=indication,
        other_names=other_names,
    )
    return parsed

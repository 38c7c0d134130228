"""Lenient reading of FHIR R4 JSON as real clients send it: bare resources, odd Bundles, STU3 dosage."""

import json
from dataclasses import dataclass, field

BOM = b"\xef\xbb\xbf"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"


class BadBody(ValueError):
    """The body is not UTF-8 JSON (answered 400)."""


def parse_body(raw: bytes):
    """UTF-8 JSON with an optional byte-order mark; anything else is BadBody."""
    if raw.startswith(BOM):
        raw = raw[len(BOM):]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadBody(f"The body is not UTF-8 (byte {err.start}).") from err
    try:
        return json.loads(text)
    except ValueError as err:
        raise BadBody(f"Malformed JSON: {err}.") from err


@dataclass
class Resources:
    """Every resource found, an index for references, and the OperationOutcomes met on the way."""

    items: list = field(default_factory=list)
    by_ref: dict = field(default_factory=dict)
    outcomes: list = field(default_factory=list)

    def add(self, resource: dict, full_url: str | None = None) -> None:
        kind = resource.get("resourceType")
        if kind == "OperationOutcome":
            self.outcomes.append(resource)
            return
        if kind == "Bundle":
            for entry in resource.get("entry") or []:
                if not isinstance(entry, dict):
                    continue
                # Some clients drop the `resource` wrapper and put the resource in the entry itself.
                inner = entry.get("resource") if isinstance(entry.get("resource"), dict) else (
                    entry if entry.get("resourceType") else None)
                if inner is not None:
                    self.add(inner, entry.get("fullUrl"))
            return
        if not kind:
            return
        self.items.append(resource)
        if resource.get("id"):
            self.by_ref[f"{kind}/{resource['id']}"] = resource
        if full_url:
            self.by_ref[full_url] = resource

    def of_type(self, *kinds: str) -> list[dict]:
        return [r for r in self.items if r.get("resourceType") in kinds]


def collect(*values) -> Resources:
    """Resources from Bundles (any or no `type`), bare resources, lists of them, or null."""
    found = Resources()
    for value in values:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                found.add(item)
    return found


def resolve(reference: str | None, owner: dict, found: Resources) -> dict | None:
    """Resolve a contained (#id), bundled (urn:uuid / fullUrl), relative or absolute reference."""
    if not reference:
        return None
    if reference.startswith("#"):
        return next((c for c in owner.get("contained") or [] if isinstance(c, dict)
                     and c.get("id") == reference[1:]), None)
    if reference in found.by_ref:
        return found.by_ref[reference]
    parts = reference.rstrip("/").split("/")
    if "_history" in parts:
        parts = parts[:parts.index("_history")]
    if len(parts) >= 2:
        return found.by_ref.get(f"{parts[-2]}/{parts[-1]}")
    return None


def as_list(value) -> list:
    """Clients send an object where R4 wants an array (doseAndRate, coding): read both."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def codings(concept: dict | None) -> list[dict]:
    return [c for c in as_list((concept or {}).get("coding")) if isinstance(c, dict)]


def concept_text(concept: dict | None) -> str | None:
    """The text of a CodeableConcept, else the first coding's display."""
    if not concept:
        return None
    if concept.get("text"):
        return str(concept["text"])
    return next((str(c["display"]) for c in codings(concept) if c.get("display")), None)

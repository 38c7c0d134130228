"""Test keys, signed client JWTs, and validators for what we emit (fhirpathpy invariants, fhir.resources R4B)."""

import json
import time
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from fhirpathpy import evaluate

ISSUER = "https://ehr.example.org"
KID = "test-key-1"

# CDS Hooks 2.0 response invariants (HL7/cds-hooks input/fsh), each with the element it applies to.
CARD_INVARIANTS = {
    "cds-resp-1": "(selectionBehavior = 'at-most-one') implies suggestions.where(isRecommended).count() <= 1",
    "cds-resp-4": "overrideReasons.all(display.exists())",
    "cds-resp-6": "suggestions.exists() implies selectionBehavior.exists()",
}
SUGGESTION_INVARIANTS = {
    "cds-resp-5": "actions.all(description.exists())",
    "cds-resp-7": "actionSelectionBehavior.empty() or actionSelectionBehavior = 'all' or "
                  "actionSelectionBehavior = 'any' or actionSelectionBehavior = 'at-most-one'",
}
ACTION_INVARIANTS = {"cds-resp-2": "(type = 'delete') implies (resourceId.exists() and resource.empty())"}
LINK_INVARIANTS = {"cds-resp-3": "(type != 'smart') implies (appContext.empty())"}


def new_key():
    return ec.generate_private_key(ec.SECP384R1())


def jwks_for(private_key, kid=KID) -> dict:
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private_key.public_key()))
    return {"keys": [{**jwk, "kid": kid, "use": "sig", "alg": "ES384"}]}


def token(private_key, aud, iss=ISSUER, kid=KID, alg="ES384", lifetime=300, jti=None, **claims) -> str:
    now = int(time.time())
    payload = {"iss": iss, "aud": aud, "exp": now + lifetime, "iat": now, "jti": jti or str(uuid.uuid4()),
               **claims}
    return jwt.encode(payload, private_key, algorithm=alg, headers={"kid": kid, "typ": "JWT"})


def invariant_failures(card: dict) -> list[str]:
    """Every cds-resp-* invariant evaluated with fhirpathpy on the card, its suggestions, actions and links."""
    failed = []

    def check(node, rules, where):
        for name, expression in rules.items():
            if evaluate(node, expression) != [True]:
                failed.append(f"{name} at {where}")

    check(card, CARD_INVARIANTS, "card")
    for i, suggestion in enumerate(card.get("suggestions") or []):
        check(suggestion, SUGGESTION_INVARIANTS, f"suggestions[{i}]")
        for j, action in enumerate(suggestion.get("actions") or []):
            check(action, ACTION_INVARIANTS, f"suggestions[{i}].actions[{j}]")
    for i, link in enumerate(card.get("links") or []):
        check(link, LINK_INVARIANTS, f"links[{i}]")
    return failed


def assert_card_shape(card: dict) -> None:
    """The 2.0 table rules: required fields, enums, no empty optionals, summary <= 140, uuids everywhere."""
    assert card["summary"] and len(card["summary"]) <= 140, card["summary"]
    assert card["indicator"] in ("info", "warning", "critical")
    assert card["source"]["label"]
    uuid.UUID(card["uuid"])
    for key, value in card.items():
        assert value not in (None, "", [], {}), key
    topic = card["source"].get("topic")
    if topic:
        assert topic["code"].isalnum(), topic
    for suggestion in card.get("suggestions") or []:
        uuid.UUID(suggestion["uuid"])
        assert suggestion["label"] and len(suggestion["actions"]) == 1
        assert suggestion["actions"][0]["type"] in ("create", "update", "delete")
    assert not invariant_failures(card), invariant_failures(card)

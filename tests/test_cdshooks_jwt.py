"""Client JWTs (CDS Hooks 2.0 "trusting CDS clients"): keys generated here, JWKS by file or URL."""

import json
import time

import jwt
import pytest

from safetycheck.cdshooks.security import JwtRefused, Verifier

from . import cds_fixtures as f
from . import cds_helpers as h
from .conftest import BOTH_ENGINES, make_app
from .fhir_stub import StubFhir

URL = "http://localhost/cds-services/safetycheck-order-sign"
ENGINES = BOTH_ENGINES  # the replay store (seen JWT ids) on SQLite and on PostgreSQL


@pytest.fixture(scope="module")
def key():
    return h.new_key()


@pytest.fixture()
def verifier(key, tmp_path):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(h.jwks_for(key)), encoding="utf-8")
    return Verifier({h.ISSUER: {"jwks_file": str(path)}})


def bearer(token):
    return f"Bearer {token}"


def test_a_valid_token_is_accepted(verifier, key):
    claims = verifier.verify(bearer(h.token(key, URL)), URL)
    assert claims["iss"] == h.ISSUER


@pytest.mark.parametrize("make, reason", [
    (lambda k: h.token(k, "https://elsewhere.example/cds-services/x"), "(?i)audience"),
    (lambda k: h.token(k, URL, lifetime=-120), "expired"),
    (lambda k: h.token(k, URL, iss="https://unknown.example"), "issuer is not registered"),
    (lambda k: h.token(h.new_key(), URL), "Signature"),
    (lambda k: h.token(k, URL, kid="other"), "no key with kid"),
    (lambda k: jwt.encode({"iss": h.ISSUER, "aud": URL, "exp": int(time.time()) + 60, "iat": int(time.time()),
                           "jti": "x"}, "secret-secret-secret-secret-secret", algorithm="HS256"), "asymmetric"),
    (lambda k: jwt.encode({"iss": h.ISSUER, "aud": URL, "exp": int(time.time()) + 60, "iat": int(time.time())},
                          k, algorithm="ES384", headers={"kid": h.KID}), "jti"),
    (lambda k: h.token(k, URL, lifetime=7200), "longer than an hour"),
])
def test_bad_tokens_are_refused_with_the_reason(verifier, key, make, reason):
    with pytest.raises(JwtRefused, match=reason):
        verifier.verify(bearer(make(key)), URL)


def test_iat_in_the_future_is_refused(verifier, key):
    now = int(time.time())
    token = jwt.encode({"iss": h.ISSUER, "aud": URL, "exp": now + 600, "iat": now + 300, "jti": "future"}, key,
                       algorithm="ES384", headers={"kid": h.KID})
    with pytest.raises(JwtRefused, match="iat"):
        verifier.verify(bearer(token), URL)


def test_a_replayed_jti_is_refused(verifier, key):
    token = h.token(key, URL, jti="once")
    verifier.verify(bearer(token), URL)
    with pytest.raises(JwtRefused, match="replay"):
        verifier.verify(bearer(token), URL)


def test_no_token_is_refused(verifier):
    with pytest.raises(JwtRefused, match="no Authorization"):
        verifier.verify(None, URL)


def test_a_configured_audience_replaces_the_url(key):
    verifier = Verifier({h.ISSUER: {"jwks": h.jwks_for(key), "audiences": ["urn:odd-ehr-audience"]}})
    verifier.verify(bearer(h.token(key, "urn:odd-ehr-audience")), URL)
    with pytest.raises(JwtRefused):
        verifier.verify(bearer(h.token(key, URL)), URL)


def test_jwks_by_url_is_fetched_once_and_cached_then_refetched_for_a_new_kid(key):
    rotated = h.new_key()
    routes = {"/fhir/jwks.json": h.jwks_for(key)}
    with StubFhir(routes) as stub:
        verifier = Verifier({h.ISSUER: {"jwks_url": f"{stub.base}/jwks.json"}})
        verifier.verify(bearer(h.token(key, URL)), URL)
        verifier.verify(bearer(h.token(key, URL)), URL)
        assert len(stub.requests) == 1
        routes["/fhir/jwks.json"] = {"keys": h.jwks_for(key)["keys"] + h.jwks_for(rotated, "k2")["keys"]}
        verifier.verify(bearer(h.token(rotated, URL, kid="k2")), URL)
        assert len(stub.requests) == 2


def test_the_service_answers_401_without_a_valid_jwt_and_replays_are_refused_across_calls(kb, db_url, key):
    app = make_app(kb, db_url, CDS_CLIENTS={h.ISSUER: {"jwks": h.jwks_for(key)}},
                   CDS_BASE_URL="http://localhost")
    client = app.test_client()
    path = "/cds-services/safetycheck-order-sign"
    assert client.post(path, json=f.order_sign()).status_code == 401
    token = h.token(key, "http://localhost" + path)
    ok = client.post(path, json=f.order_sign(), headers={"Authorization": bearer(token)})
    assert ok.status_code == 200
    again = client.post(path, json=f.order_sign(), headers={"Authorization": bearer(token)})
    assert again.status_code == 401 and "replay" in again.json["issue"][0]["diagnostics"]
    assert client.post(path + "/feedback", json={"feedback": []}).status_code == 401

"""CDS Hooks 2.0 client JWTs: signature by the client's JWKS, iss allow-list, aud, exp, iat, jti replay."""

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

# The spec forbids symmetric and unsigned tokens; only asymmetric algorithms are accepted.
ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512")
LEEWAY_SECONDS = 60
MAX_LIFETIME_SECONDS = 3600


class JwtRefused(Exception):
    """The bearer token is missing or not acceptable (answered 401, with the reason)."""


def _fetch_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - configured https URL
        return json.loads(response.read().decode("utf-8"))


class MemoryJtiStore:
    """Seen (iss, jti) pairs until they expire; one process only (the app uses the database)."""

    def __init__(self):
        self._seen: dict = {}
        self._lock = threading.Lock()

    def remember(self, issuer: str, jti: str, expires_at: int) -> bool:
        """True the first time a pair is seen, False on a replay."""
        now = time.time()
        with self._lock:
            self._seen = {k: v for k, v in self._seen.items() if v > now}
            if (issuer, jti) in self._seen:
                return False
            self._seen[(issuer, jti)] = expires_at
            return True


class Verifier:
    """Verifies a client's JWT against its registration (clients: iss -> settings)."""

    def __init__(self, clients: dict, remember_jti: Callable[[str, str, int], bool] | None = None,
                 fetch: Callable[[str], dict] = _fetch_json, cache_seconds: int = 300):
        self.clients = clients
        self.remember_jti = remember_jti or MemoryJtiStore().remember
        self.fetch = fetch
        self.cache_seconds = cache_seconds
        self._cache: dict = {}
        self._lock = threading.Lock()

    def _jwks(self, client: dict, refresh: bool = False) -> dict:
        if client.get("jwks"):
            return client["jwks"]
        if client.get("jwks_file"):
            return json.loads(Path(client["jwks_file"]).read_text(encoding="utf-8"))
        url = client.get("jwks_url")
        if not url:
            raise JwtRefused("no JWKS is registered for this client")
        with self._lock:
            cached = self._cache.get(url)
            if cached and not refresh and cached[0] > time.monotonic():
                return cached[1]
        try:
            keys = self.fetch(url)
        except Exception as err:  # noqa: BLE001 - an unreachable JWKS means the token cannot be trusted
            raise JwtRefused(f"the client's JWKS could not be fetched ({type(err).__name__})") from err
        with self._lock:
            self._cache[url] = (time.monotonic() + self.cache_seconds, keys)
        return keys

    def _key(self, client: dict, header: dict):
        import jwt  # loaded with the first verified call, not at app start-up

        kid = header.get("kid")
        for refresh in (False, True):
            # A kid we do not know may be a rotated key: fetch the JWKS again once.
            keys = [k for k in self._jwks(client, refresh).get("keys", []) if isinstance(k, dict)]
            match = [k for k in keys if kid is None or k.get("kid") == kid]
            if kid is None and len(match) != 1:
                raise JwtRefused("the token has no kid and the client's JWKS holds more than one key")
            if match:
                return jwt.PyJWK(match[0]).key
            if not client.get("jwks_url"):
                break
        raise JwtRefused(f"no key with kid {kid!r} in the client's JWKS")

    def verify(self, authorization: str | None, service_url: str) -> dict:
        """The verified claims; JwtRefused with the reason otherwise."""
        import jwt

        if not authorization or not authorization.lower().startswith("bearer "):
            raise JwtRefused("no Authorization: Bearer JWT")
        token = authorization[7:].strip()
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as err:
            raise JwtRefused(f"not a JWT ({err})") from err
        if header.get("alg") not in ALGORITHMS:
            raise JwtRefused(f"algorithm {header.get('alg')!r} is not accepted (asymmetric only)")
        issuer = unverified.get("iss")
        client = self.clients.get(issuer) if isinstance(issuer, str) else None
        if client is None:
            raise JwtRefused("issuer is not registered")
        jku = header.get("jku")
        if jku and jku not in (client.get("jku_allow") or [client.get("jwks_url")]):
            raise JwtRefused("jku is not on the client's allow-list")
        audiences = client.get("audiences") or [service_url]
        try:
            claims = jwt.decode(token, self._key(client, header), algorithms=[header["alg"]], audience=audiences,
                                issuer=issuer, leeway=LEEWAY_SECONDS,
                                options={"require": ["iss", "aud", "exp", "iat", "jti"]})
        except jwt.PyJWTError as err:
            raise JwtRefused(str(err)) from err
        now = time.time()
        if claims["iat"] > now + LEEWAY_SECONDS:
            raise JwtRefused("iat is in the future")
        if claims["exp"] - claims["iat"] > MAX_LIFETIME_SECONDS:
            raise JwtRefused("token lifetime is longer than an hour")
        if not self.remember_jti(issuer, str(claims["jti"]), int(claims["exp"])):
            raise JwtRefused("jti was already used (replay)")
        return {**claims, "client": client}

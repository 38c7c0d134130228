"""One check for every adapter: hash once, idempotency, check id and time, run, record, fail closed.

Adapters (the JSON API, the web form, CDS Hooks) only translate: their input -> a `CheckRequest` plus
the v1 request body that is stored and hashed; the `Answer` -> their output (JSON, HTML, cards).
No Flask here; the caller hands over its audit-store connection.

    service = CheckService(checker)
    answer = service.check(db, request, body, channel="web", client="alice")
    answer.response        # the v1 JSON as stored (dict); answer.response_json is the exact bytes
    answer.result          # the typed CheckResult (None when an idempotent retry replays the stored one)
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from . import audit
from .contract import v1
from .models import CheckRequest, InputError
from .pipeline import Checker, CheckResult, run_check

log = logging.getLogger(__name__)
CHANNELS = ("api", "web", "cds-hooks", "cli")


class CheckRefused(Exception):
    """The request cannot be checked (unknown regimen, unit, ...): a 422 naming the fields; nothing stored.

    `errors` maps each field to its messages; `location` says where the field is ("body", or "headers").
    """

    def __init__(self, errors: dict, message: str = "Unprocessable request", location: str = "body"):
        self.errors = errors
        self.message = message
        self.location = location
        super().__init__(message)


class IdempotencyConflict(CheckRefused):
    """The idempotency key was used before with a different request body (422; nothing stored)."""

    def __init__(self, key: str):
        super().__init__({"Idempotency-Key": ["reused with a different body"]},
                         "Idempotency-Key was used with a different request body.", location="headers")
        self.key = key


class NotRecorded(Exception):
    """The audit store could not record the check, so no advice may be given (a 503, retry)."""

    message = "The check could not be stored in the audit log, so no advice is given. Retry."


@dataclass(frozen=True)
class Answer:
    """A recorded check: its v1 JSON exactly as stored, and the typed result when it was run now."""

    check_id: str
    created_at: str
    response: dict
    response_json: str
    result: CheckResult | None = None
    replayed: bool = False


class CheckService:
    """Runs and records checks; one instance per app, shared by every adapter."""

    def __init__(self, checker: Checker, *, clock: Callable[[], str] = audit.now,
                 new_id: Callable[[], str] = audit.new_id):
        self.checker = checker
        self.clock = clock
        self.new_id = new_id

    @property
    def kb(self):
        return self.checker.kb

    def run(self, request: CheckRequest) -> CheckResult:
        """Run the pipeline only (nothing stored: the CLI and previews); InputError -> CheckRefused."""
        try:
            return run_check(self.checker, request)
        except InputError as err:
            raise CheckRefused(err.errors) from err

    def check(self, db, request: CheckRequest, body: dict, *, channel: str, client: str,
              idempotency_key: str | None = None) -> Answer:
        """Check `request` and store it (with `body`, the validated v1 request) before returning it.

        `client` names who asked: the API key's label, or the signed-in user's name on the web.
        A retry with the same `idempotency_key` and body returns the stored answer; with another body it
        raises IdempotencyConflict. Raises CheckRefused (422) or NotRecorded (503: no advice without a row).
        """
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}")
        canonical_form = audit.canonical_request(body)  # hashed once: idempotency lookup and the stored row
        if idempotency_key:
            replay = self._replay(db, client, idempotency_key, canonical_form[1])
            if replay:
                return replay
        result = self.run(request)
        check_id, created_at = self.new_id(), self.clock()
        response = v1.response_body(result, self.kb, check_id, created_at)
        try:
            stored_json = audit.record_check(db, channel=channel, api_client=client, request=body,
                                             response=response, idempotency_key=idempotency_key,
                                             canonical_form=canonical_form)
        except Exception as err:  # noqa: BLE001 - any storage failure means no advice
            if idempotency_key and "UNIQUE" in str(err):
                replay = self._replay(db, client, idempotency_key, canonical_form[1])  # a concurrent retry won
                if replay:
                    return replay
            log.exception("audit write failed; check not answered")
            raise NotRecorded() from err
        return Answer(check_id, created_at, response, stored_json, result)

    def _replay(self, db, client: str, key: str, request_hash: str) -> Answer | None:
        try:
            stored = audit.find_idempotent(db, client, key, request_hash)
        except audit.IdempotencyConflict as err:
            raise IdempotencyConflict(key) from err
        if stored is None:
            return None
        return Answer(stored["check_id"], stored["created_at"], stored, audit.canonical(stored), replayed=True)

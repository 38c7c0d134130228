"""Fill missing prefetch from the client's FHIR server with the token it gave (never logged)."""

import json
import urllib.error
import urllib.parse
import urllib.request

MAX_PAGES = 5
TIMEOUT_SECONDS = 5


class FetchFailed(Exception):
    """The FHIR server could not give the resource (network, status, or not JSON)."""


def render(template: str, context: dict) -> str:
    """Replace {{context.x}} tokens with first-level primitive context values (URL-encoded)."""
    out = template
    for key, value in context.items():
        if isinstance(value, str | int):
            out = out.replace("{{context." + key + "}}", urllib.parse.quote(str(value), safe=""))
    if "{{" in out:
        raise FetchFailed(f"template has an unfilled token: {template}")
    return out


def _get(url: str, token: str | None) -> dict:
    headers = {"Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers),  # noqa: S310
                                    timeout=TIMEOUT_SECONDS) as response:
            return json.loads(response.read().decode("utf-8-sig"))
    except urllib.error.HTTPError as err:
        raise FetchFailed(f"HTTP {err.code}") from err
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise FetchFailed(type(err).__name__) from err


def fetch(server: str, template: str, context: dict, token: str | None):
    """One prefetch key from the server: a resource, or a searchset with its next pages merged."""
    url = server.rstrip("/") + "/" + render(template, context)
    first = _get(url, token)
    if first.get("resourceType") != "Bundle":
        return first
    entries, page, pages = list(first.get("entry") or []), first, 1
    while pages < MAX_PAGES:
        nxt = next((link.get("url") for link in page.get("link") or [] if link.get("relation") == "next"), None)
        if not nxt:
            break
        page = _get(nxt, token)
        entries += page.get("entry") or []
        pages += 1
    return {**first, "entry": entries}

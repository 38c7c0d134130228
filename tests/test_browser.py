"""End to end in a real browser: Debian's Chromium driven by Playwright, against gunicorn on 127.0.0.1.

The first users are created with the CLI; then a clinician signs in, pastes a list, fixes a bad unit and reads
the result; an auditor filters the queue, overrides (refused without a reason), exports CSV. A pharmacist fills
and submits the form with the keyboard alone (every control labelled, a focus ring at every Tab stop), and the
pages fit 768x1024 and 1280x800 without sideways scrolling. Screenshots of the main pages are kept under
test-artifacts/screenshots/ (SAFETYCHECK_SCREENSHOTS_TO=docs/screenshots refreshes the README's copies).
"""

import csv
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import BOTH_ENGINES, new_pg_database

ENGINES = BOTH_ENGINES  # the same walk-through against a SQLite file and against PostgreSQL
ENGINE_SCOPE = "module"  # one gunicorn per engine
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
SHOTS = ROOT / "test-artifacts" / "screenshots"
PASSWORD = "a long test password"
LIST = "1. Eliquis 5 mg PO BID\n2. Cipro 500 mg PO BID\n\n- metfromin 500 mg BID\n* zorbatrexine 10 mg daily\n"
TIMEOUT_MS = 30_000  # per browser action

sync_api = pytest.importorskip("playwright.sync_api")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, engine, request):
    """gunicorn in its own process group on a free port, a fresh database, two users made by the CLI."""
    work = tmp_path_factory.mktemp("browser")
    database = str(work / "audit.db") if engine == "sqlite" else new_pg_database(request.getfixturevalue("pg_server"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFETYCHECK_")}
    env.update(SAFETYCHECK_DB=database, SAFETYCHECK_INSTANCE_PATH=str(work / "instance"))
    env.update(SAFETYCHECK_API_KEYS="browser:browser-test-key-0123456789",
               SAFETYCHECK_SECRET_KEY="browser-test-secret", SAFETYCHECK_CACHE_DIR=str(ROOT / "instance" / "cache"))

    def flask(*args, stdin=None):
        done = subprocess.run([str(BIN / "flask"), "--app", "wsgi", *args], cwd=ROOT, env=env, input=stdin,
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    flask("db", "migrate")
    assert "no users yet" in flask("user", "list")
    flask("user", "create", "carla", "--role", "clinician", stdin=PASSWORD + "\n")
    flask("user", "create", "audrey", "--role", "auditor", stdin=PASSWORD + "\n")
    flask("user", "create", "kim", "--role", "pharmacist", stdin=PASSWORD + "\n")  # the keyboard/tablet tests
    port = free_port()
    log = open(work / "gunicorn.log", "w", encoding="utf-8")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen([str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2", "--timeout",
                             "60", "wsgi:app"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (work / "gunicorn.log").read_text()
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not become ready"
            time.sleep(0.3)
        yield base
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), "Chromium is missing: run scripts/install-browser.sh (make test does)"
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def new_page(browser, base, width=1280, height=800):
    context = browser.new_context(base_url=base, viewport={"width": width, "height": height}, locale="en-US")
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


def shot(page, name, readme=True):
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    target = os.environ.get("SAFETYCHECK_SCREENSHOTS_TO")
    if target and readme:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / f"{name}.png"))  # the README's copy: the first screen only
        shutil.copymode(path, Path(target) / f"{name}.png")


def sign_in(page, name, password=PASSWORD):
    page.goto("/login")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def fill_check(page, anc_unit):
    page.get_by_label("Regimen", exact=True).select_option("ipd")
    page.get_by_label("Date (dispensing / planned first dose)").fill("2026-11-22")
    page.get_by_label("Cycle").fill("2")
    page.get_by_label("Day", exact=True).fill("8")
    page.get_by_label("Age (years)").fill("67")
    page.get_by_label("Sex").select_option("female")
    page.get_by_label("Weight (kg)").fill("70")
    for key, value, unit in (("anc", "2.5", anc_unit), ("platelets", "180", "10*9/L"),
                             ("creatinine", "0.9", "mg/dL"), ("bilirubin_total", "0.6", "mg/dL")):
        page.locator(f"#lab_{key}_value").fill(value)
        page.locator(f"#lab_{key}_unit").fill(unit)
    page.locator("#lab_bilirubin_total_uln").fill("1.2")


def test_clinician_and_auditor_end_to_end(server, browser):
    page = new_page(browser, server)

    # Wrong password: refused, said so, still on the sign-in page.
    page.goto("/")
    assert "/login" in page.url
    sign_in(page, "carla", "not the password")
    assert "Wrong name or password" in page.locator("#login-error").inner_text()
    shot(page, "login")

    sign_in(page, "carla")
    page.get_by_label("Paste the list").fill(LIST)
    # The live reading (an enhancement): each line with the drug it is read as, before the check.
    preview = page.locator("#preview-table tr")
    preview.nth(3).wait_for()
    assert preview.count() == 4
    assert "apixaban" in preview.nth(0).inner_text() and "brand" in preview.nth(0).inner_text()
    assert "metformin" in preview.nth(2).inner_text() and "fuzzy" in preview.nth(2).inner_text()
    assert preview.nth(3).get_attribute("data-status") == "unmatched"

    fill_check(page, "furlongs")
    page.get_by_role("button", name="Run the check").click()
    error = page.locator("#lab_anc_unit-error")
    assert "not understood" in error.inner_text()
    assert page.locator("#lab_anc_unit").input_value() == "furlongs"  # what was entered is kept
    assert page.get_by_label("Paste the list").input_value().replace("\r\n", "\n").strip() == LIST.strip()
    shot(page, "check-form-error")

    page.locator("#lab_anc_unit").fill("10*9/L")
    page.get_by_role("button", name="Run the check").click()
    page.locator("#verdict-word").wait_for()
    assert "/checks/" in page.url
    assert page.locator("#verdict-word").inner_text().startswith("REVIEW")
    rows = page.locator("table.reading tbody tr")
    assert rows.count() == 4
    assert "ciprofloxacin" in rows.nth(1).inner_text()
    assert rows.nth(3).get_attribute("data-status") == "unmatched"
    assert "zorbatrexine" in page.locator("#unread-lines").inner_text()
    assert page.locator("li.warning[data-code=UNMATCHED_MEDICATION]").count() == 1
    shot(page, "check-result")
    check_url = page.url

    page.locator("#permalink").click()
    assert page.url == check_url and page.locator("#verdict-word").is_visible()
    page.locator("#print-link").click()
    assert page.locator("header.top").count() == 0
    shot(page, "check-print")
    page.goto(check_url)
    page.locator("#edit-link").click()
    assert "zorbatrexine" in page.get_by_label("Paste the list").input_value()

    # A clinician cannot open the review pages; a form post without its CSRF token is refused.
    refused = page.goto("/review")
    assert refused.status == 403 and "auditors" in page.content()
    assert page.request.post(server + "/", form={"regimen": "ipd", "medication_text": "ASA"}).status == 400

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, "audrey")
    page.goto("/review")
    assert page.locator("#chain-status").inner_text().startswith("Audit chain: intact")
    page.locator("select[name=verdict]").select_option("review")
    page.locator("select[name=user]").select_option("carla")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**verdict=review**", wait_until="load")  # the filtered page, not the one before it
    assert "verdict=review" in page.url
    assert page.locator("#count-review").inner_text() == "1"
    assert page.locator("table.queue tbody tr").count() == 1
    assert page.locator(".charts svg").count() == 2
    shot(page, "review-queue")

    page.locator("table.queue tbody tr a").first.click()
    assert page.locator("#check-user").inner_text() == "carla"
    page.get_by_label("override: dispense").check()
    page.get_by_role("button", name="Save review").click()
    assert "needs a reason" in page.locator("#note-error").inner_text()
    page.get_by_label("override: dispense").check()
    page.get_by_label("Reason / note").fill("Metformin confirmed by the ward; unknown line is a typo")
    page.get_by_role("button", name="Save review").click()
    history = page.locator("tr.review-row")
    assert history.count() == 1 and "audrey" in history.first.inner_text()
    assert "overridden" in history.first.inner_text()
    shot(page, "review-check")

    page.goto("/review?decision=overridden")
    csv_href = page.locator("#csv-link").get_attribute("href")
    exported = page.request.get(server + csv_href)
    rows = list(csv.DictReader(io.StringIO(exported.text())))
    assert [(r["api_client"], r["channel"], r["verdict"], r["decision"]) for r in rows] == [
        ("carla", "web", "review", "overridden")]
    assert "UNMATCHED_MEDICATION" in rows[0]["codes"]
    page.context.close()


# -- keyboard only, labels, focus, tablet ---------------------------------------------------------------------
FOCUS_STYLE = """() => { const s = getComputedStyle(document.activeElement);
  const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
  return {id: document.activeElement.id || document.activeElement.tagName, visible: outline || s.boxShadow !== 'none',
          style: `${s.outlineStyle} ${s.outlineWidth} ${s.boxShadow}`}; }"""
UNLABELLED = """() => [...document.querySelectorAll('#check-form :is(input:not([type=hidden]), select, textarea)')]
  .filter(el => !(el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
  || [...el.labels].some(l => l.textContent.trim()))).map(el => el.name || el.outerHTML)"""
NO_SIDE_SCROLL = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
TOO_WIDE = """() => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right >
  document.documentElement.clientWidth + 1).slice(0, 5).map(e => `${e.tagName}#${e.id}.${e.className}`)"""


def tab_to(page, element_id, seen, limit=250):
    """Press Tab until the element has the focus (never a click); note each stop's focus indicator on the way."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS_STYLE)
        seen.append(focus)
        if focus["id"] == element_id:
            return
    raise AssertionError(f"#{element_id} is not reachable with Tab")


def type_into(page, element_id, text, seen):
    tab_to(page, element_id, seen)
    page.keyboard.type(text)


def test_the_check_form_works_with_the_keyboard_alone_and_every_control_is_labelled(server, browser):
    page = new_page(browser, server)
    seen: list[dict] = []
    page.goto("/login")
    if page.evaluate("document.activeElement.id") != "name":  # autofocus is not applied in every run
        tab_to(page, "name", seen)
    page.keyboard.type("kim")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.locator("#check-form").wait_for()

    assert page.evaluate(UNLABELLED) == []
    for label in ("Registration date", "Screening date", "C1D1 date (start of treatment)", "HBsAg",
                  "Anti-HBc (total)", "HBV DNA", "Last eye exam", "Ocular grade (KVA 0-4)"):
        assert page.get_by_label(label, exact=True).count() == 1, label
    for group in ("On dialysis", "Smoker", "Wears contact lenses", "With pain on clinical exam"):
        fieldset = page.get_by_role("group", name=group, exact=True)
        assert fieldset.get_by_role("radio").count() == 3 and fieldset.get_by_label("not answered").is_checked()

    type_into(page, "medication_text", "1. Cipro 500 mg PO BID\n- metfromin 500 mg BID\n", seen)
    tab_to(page, "regimen", seen)
    page.keyboard.type("Isatuximab")  # typing picks the option in a closed select
    assert page.locator("#regimen").input_value() == "isa-bela-pom-dex"
    tab_to(page, "protocol", seen)
    page.keyboard.type("nct")
    assert page.locator("#protocol").input_value() == "nct05922501"
    tab_to(page, "mode-dispensing", seen)
    page.keyboard.press("ArrowDown")  # -> screening (eligibility, washout windows)
    assert page.locator("#mode-screening").is_checked()
    tab_to(page, "date", seen)
    page.keyboard.type("11222026")  # mm dd yyyy segments in the en-US locale
    assert page.locator("#date").input_value() == "2026-11-22"
    type_into(page, "c1d1_date", "12012026", seen)
    assert page.locator("#c1d1_date").input_value() == "2026-12-01"
    type_into(page, "age_years", "67", seen)
    tab_to(page, "sex", seen)
    page.keyboard.type("f")
    type_into(page, "weight_kg", "70", seen)
    tab_to(page, "on_dialysis-unknown", seen)  # Tab enters a radio group at its checked choice
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")  # arrows move and choose: not answered -> yes -> no
    tab_to(page, "contact_lens_use-unknown", seen)
    page.keyboard.press("ArrowRight")
    tab_to(page, "serology_hbsag", seen)
    page.keyboard.type("n")
    for key, value in (("anc", "2.5"), ("platelets", "180"), ("creatinine", "0.9"), ("bilirubin_total", "0.6")):
        type_into(page, f"lab_{key}_value", value, seen)
    type_into(page, "lab_bilirubin_total_uln", "1.2", seen)
    tab_to(page, "tox_febrile_neutropenia", seen)
    page.keyboard.press("Space")
    assert page.locator("#tox_febrile_neutropenia").is_checked()
    page.keyboard.press("Space")  # and off again: not reported
    assert not page.locator("#tox_febrile_neutropenia").is_checked()
    tab_to(page, "run-check", seen)
    page.keyboard.press("Enter")

    page.locator("#verdict-word").wait_for()
    assert "/checks/" in page.url
    assert page.locator("#verdict-word").inner_text().startswith("BLOCK")  # contact lenses: ineligible
    assert page.locator("li.warning[data-code=PROTOCOL_INELIGIBLE]", has_text="isa-contact-lenses").count() == 1
    assert page.locator("#entered-on_dialysis").inner_text() == "no"
    assert page.locator("#entered-contact_lens_use").inner_text() == "yes"
    assert page.locator("#entered-serology_hbsag").inner_text() == "negative"
    assert page.locator("#entered-c1d1_date").inner_text() == "2026-12-01"
    assert page.locator("#entered-smoker").inner_text() == "not given"

    stops = [f for f in seen if f["id"] not in ("BODY", "HTML")]
    assert len(stops) > 30
    assert [f for f in stops if not f["visible"]] == []  # every stop shows where the focus is
    shot(page, "check-result-keyboard", readme=False)
    page.context.close()


@pytest.mark.parametrize(("width", "height"), [(768, 1024), (1280, 800)])
def test_the_pages_fit_a_tablet_and_a_small_laptop_screen(server, browser, width, height):
    page = new_page(browser, server, width, height)
    sign_in(page, "kim")
    page.locator("#check-form").wait_for()
    page.wait_for_load_state("load")  # the stylesheet applied: measured before it, the form once looked too wide
    assert page.evaluate(NO_SIDE_SCROLL), f"the form scrolls sideways at {width}px: {page.evaluate(TOO_WIDE)}"
    shot(page, f"check-form-{width}x{height}", readme=width < 1000)  # the README shows the tablet
    page.get_by_label("Paste the list").fill(LIST)
    fill_check(page, "10*9/L")
    page.get_by_label("Registration date").fill("2026-11-25")
    page.get_by_label("HBsAg").select_option("negative")
    page.get_by_role("group", name="On dialysis", exact=True).get_by_label("no", exact=True).check()
    page.get_by_role("button", name="Run the check").click()
    verdict = page.locator("#verdict-word")
    verdict.wait_for()
    assert verdict.is_visible()
    assert page.evaluate(NO_SIDE_SCROLL), f"the result scrolls sideways at {width}px: {page.evaluate(TOO_WIDE)}"
    box = page.locator("section.verdict").bounding_box()
    assert box["y"] + box["height"] <= height  # the verdict is on the first screen, without scrolling
    shot(page, f"check-result-{width}x{height}", readme=width < 1000)
    check_id = page.url.rsplit("/", 1)[1]
    page.locator("#edit-link").click()
    assert page.get_by_label("Registration date").input_value() == "2026-11-25"
    page.locator("#preview-table").wait_for()  # the live reading of the refilled list, drawn by the script
    assert page.evaluate(NO_SIDE_SCROLL), f"the refilled form scrolls sideways at {width}px: {page.evaluate(TOO_WIDE)}"

    page.get_by_role("button", name="Sign out").click()  # the auditor's pages on the same screen
    sign_in(page, "audrey")
    for path, name in (("/review", "review-queue"), (f"/review/{check_id}", "review-check")):
        page.goto(path)
        assert page.evaluate(NO_SIDE_SCROLL), f"{path} scrolls sideways at {width}px: {page.evaluate(TOO_WIDE)}"
        shot(page, f"{name}-{width}x{height}", readme=False)
    page.context.close()

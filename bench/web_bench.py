"""`make bench`: the time to render the clinician's result page (in-process, Flask test client, real SQLite)."""

import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import MISSPELT, WELL_SPELT  # noqa: E402  (bench/bench.py, this folder)
from safetycheck import create_app, users  # noqa: E402
from safetycheck.db import apply_migrations, connect  # noqa: E402

PASSWORD = "bench password 123"


def timed(fn, repeat):
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    ordered = sorted(samples)
    return statistics.median(samples), ordered[int(round(0.99 * (len(ordered) - 1)))]


def main():
    with tempfile.TemporaryDirectory() as work:
        db_path = str(Path(work) / "audit.db")
        apply_migrations(db_path, str(ROOT / "migrations" / "migrations.py"))
        db = connect(db_path)
        users.create(db, "bench", "clinician", PASSWORD)
        db.conn.close()
        app = create_app({"TESTING": True, "DATABASE": db_path, "API_KEYS": "b:bench-key-0123456789"})
        client = app.test_client()
        token = lambda page: re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)  # noqa: E731
        client.post("/login", data={"name": "bench", "password": PASSWORD, "csrf_token": token(client.get("/login"))})
        form = {"csrf_token": token(client.get("/")), "regimen": "ipd", "mode": "dispensing", "date": "2026-11-22",
                "cycle": "2", "day": "1", "age_years": "67", "sex": "female", "weight_kg": "70",
                "lab_anc_value": "0.9", "lab_anc_unit": "10*9/L", "lab_platelets_value": "48000",
                "lab_platelets_unit": "/uL", "lab_creatinine_value": "1.4", "lab_creatinine_unit": "mg/dL",
                "lab_bilirubin_total_value": "1.1", "lab_bilirubin_total_unit": "mg/dL",
                "lab_bilirubin_total_uln": "1.2", "dose_pomalidomide": "4", "dose_ixazomib": "4",
                "dose_dexamethasone": "20", "medication_text": "\n".join(WELL_SPELT + MISSPELT)}
        location = client.post("/", data=form).headers["Location"]
        assert client.get(location).status_code == 200
        median, p99 = timed(lambda: client.get(location), 200)
        print("web result page, GET /checks/<id> in-process, 20 medications (ms):")
        print(f"  {'render stored check':<24} median {median:7.3f}   p99 {p99:7.3f}")
        median, p99 = timed(lambda: client.post("/", data=form), 50)
        print(f"  {'submit form (check+store)':<24} median {median:7.3f}   p99 {p99:7.3f}")


if __name__ == "__main__":
    main()

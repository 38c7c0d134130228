"""`make bench`: the figures the issues name, as medians and p99s (measured, never asserted)."""

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from safetycheck.knowledge import load_knowledge_base  # noqa: E402
from safetycheck.models import CheckRequest, MedicationInput  # noqa: E402
from safetycheck.pipeline import Checker, run_check  # noqa: E402

WELL_SPELT = [
    "Eliquis 5 mg PO BID", "ASA 81mg daily", "1. omeprazole 20mg cap DR qAM",
    "Ondansetron 8 mg q8h prn nausea", "acyclovir 400 mg BID", "Bactrim DS 1 tab MWF",
    "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet", "lisinopril 10 mg daily",
    "Carbamazepine[Tegretol]", "Paxlovid 300/100 mg", "Cipro 500 mg PO BID",
    "levothyroxine 75 mcg qAM", "atorvastatin 40 mg qhs", "Lovenox 40 mg SC daily",
    "pomalidomide 4 mg days 1-21",
]
MISSPELT = ["dexamethason 40 mg weekly", "lisinoprl 10 mg", "metfromin 500 mg BID",
            "fluvoxamin 50 mg", "amlodipin 5 mg daily"]


def distinct_lines(lines, count):
    """`count` different medication lines: the list again with its first number raised (5 mg, 6 mg, ...)."""
    out, step = [], 0
    while len(out) < count:
        for line in lines:
            varied = re.sub(r"\d+", lambda m, step=step: str(int(m.group()) + step), line, count=1) if step else line
            if varied not in out:
                out.append(varied)
        step += 1
    return out[:count]


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def timed(fn, repeat, before=None):
    """(median, p99) in ms of fn(); `before` runs ahead of each call, outside the timing."""
    samples = []
    for _ in range(repeat):
        if before is not None:
            before()
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), percentile(samples, 0.99)


def startup_seconds(cache_dir, runs=5):
    """create_app() in fresh processes; cache_dir None gives each run its own empty (cold) cache."""
    code = ("import time; t=time.perf_counter(); from safetycheck import create_app; "
            "create_app(); print(time.perf_counter()-t)")
    samples = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as cold:
            env = {**os.environ, "SAFETYCHECK_CACHE_DIR": cold if cache_dir is None else cache_dir,
                   "SAFETYCHECK_SECRET_KEY": os.environ.get("SAFETYCHECK_SECRET_KEY", "bench-secret")}
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 cwd=ROOT, env=env, check=True)
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(samples), max(samples)


def check_request(lines):
    """A dispensing check of the IPD regimen with a full set of labs and patient data."""
    return CheckRequest(
        regimen="ipd", mode="dispensing", protocol="pix-emd-pcl", date=date(2026, 11, 22), cycle=2, day=1,
        patient={"age_years": 67, "sex": "female", "weight_kg": 70, "on_dialysis": False, "smoker": False},
        medications=tuple(MedicationInput(text=line) for line in lines),
        labs={"anc": {"value": 0.9, "unit": "10*9/L"}, "platelets": {"value": 48000, "unit": "/uL"},
              "hemoglobin": {"value": 10.1, "unit": "g/dL"}, "creatinine": {"value": 1.4, "unit": "mg/dL"},
              "bilirubin_total": {"value": 1.1, "unit": "mg/dL", "uln": 1.2}},
        current_doses={"ixazomib": 4, "pomalidomide": 4, "dexamethasone": 20},
    )


def machine_load() -> str:
    """Cores and load averages: a shared machine's figures are only comparable within one quiet run."""
    one, five, _ = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {one:.2f} (1 min) {five:.2f} (5 min)"


def main():
    print(f"machine: {machine_load()}")
    checker = Checker(load_knowledge_base(ROOT / "data"))
    lines20 = WELL_SPELT + MISSPELT
    lines100 = distinct_lines(lines20, 100)
    for lines in (lines20, lines100):
        checker.match_texts(lines)  # warm-up
    print("parse + match, in-process, lines never seen (the reading cache cleared before each run) (ms):")
    for label, lines in (("20 lines, 5 misspelt", lines20), ("100 distinct lines", lines100)):
        median, p99 = timed(lambda lines=lines: checker.match_texts(lines), 300, before=checker.clear_caches)
        print(f"  {label:<24} median {median:7.3f}   p99 {p99:7.3f}")
    print("full check in-process, no audit write (ms); 'new' = every line read afresh, 'seen' = lines read before:")
    for label, lines in (("20 medications + labs", lines20), ("100 distinct medications", lines100)):
        request = check_request(lines)
        run_check(checker, request)  # warm-up
        for cache, before in (("new", checker.clear_caches), ("seen", None)):
            median, p99 = timed(lambda request=request: run_check(checker, request), 300, before=before)
            print(f"  {label:<24} {cache:<5} median {median:7.3f}   p99 {p99:7.3f}")
    print("start-up, create_app() in a fresh process (s):")
    with tempfile.TemporaryDirectory() as warm:
        # A temporary cache, so the figures never depend on (or disturb) instance/cache.
        startup_seconds(warm, runs=1)
        for label, cache_dir in (("cache off", ""), ("cold cache", None), ("warm cache", warm)):
            median, worst = startup_seconds(cache_dir)
            print(f"  {label:<24} median {median:7.2f}   max {worst:7.2f}")
    print(f"machine: {machine_load()}")


if __name__ == "__main__":
    main()

"""HTTP throughput of the real server: gunicorn (2 workers) on 127.0.0.1, a temporary database, an API key.

`python bench/http_bench.py` starts the server, warms it up, then runs a bounded closed loop (N client threads,
each sending its next request as soon as the last one is answered, over http.client) for GET /healthz and for
POST /api/v1/checks (20 medications with labs; every answer includes the audit write), and the in-process rate
of as many processes, in rounds: each round takes every figure in turn, and each ratio is the median of the
rounds' ratios. It prints requests/s, median and p99 latency, server and client CPU per request, the ratios
against the in-process rate and against /healthz, and RSS per worker, then stops the server. Measured, never
asserted. Loopback only.
"""

import argparse
import http.client
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-key-0123456789abcdef"
BIN = Path(sys.executable).parent
if not (BIN / "gunicorn").exists() and (ROOT / ".venv" / "bin" / "gunicorn").exists():
    BIN = ROOT / ".venv" / "bin"

MEDICATIONS = [
    "Eliquis 5 mg PO BID", "ASA 81mg daily", "1. omeprazole 20mg cap DR qAM", "Ondansetron 8 mg q8h prn nausea",
    "acyclovir 400 mg BID", "Bactrim DS 1 tab MWF", "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet",
    "lisinopril 10 mg daily", "Carbamazepine[Tegretol]", "Paxlovid 300/100 mg", "Cipro 500 mg PO BID",
    "levothyroxine 75 mcg qAM", "atorvastatin 40 mg qhs", "Lovenox 40 mg SC daily", "pomalidomide 4 mg days 1-21",
    "dexamethason 40 mg weekly", "lisinoprl 10 mg", "metfromin 500 mg BID", "fluvoxamin 50 mg", "amlodipin 5 mg daily",
]
CHECK_BODY = {
    "regimen": "ipd", "protocol": "ipd-2l-3l", "mode": "dispensing", "date": "2026-11-22", "cycle": 2, "day": 1,
    "patient": {"id": "bench-001", "age_years": 67, "sex": "female", "weight_kg": 70, "height_cm": 165,
                "on_dialysis": False, "smoker": False},
    "medications": [{"text": line} for line in MEDICATIONS],
    "labs": {
        "anc": {"value": 1.8, "unit": "10*9/L"}, "platelets": {"value": 150000, "unit": "/uL"},
        "hemoglobin": {"value": 11.2, "unit": "g/dL"}, "creatinine": {"value": 1.1, "unit": "mg/dL"},
        "bilirubin_total": {"value": 0.8, "unit": "mg/dL", "uln": 1.2}, "ast": {"value": 30, "unit": "U/L"},
        "alt": {"value": 28, "unit": "U/L"}, "calcium": {"value": 9.4, "unit": "mg/dL"},
        "albumin": {"value": 3.9, "unit": "g/dL"},
    },
    "current_doses": {"ixazomib": 4, "pomalidomide": 4, "dexamethasone": 20},
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class Server:
    def __init__(self, workdir: Path, workers: int):
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SAFETYCHECK_")}
        self.env.update(SAFETYCHECK_DB=str(workdir / "audit.db"), SAFETYCHECK_API_KEYS=f"bench:{KEY}",
                        SAFETYCHECK_SECRET_KEY="bench-secret",
                        SAFETYCHECK_CACHE_DIR=str(ROOT / "instance" / "cache"))
        self.workers = workers
        self.log_path = workdir / "gunicorn.log"
        self.port = free_port()
        self.proc = None

    def start(self, timeout=90):
        subprocess.run([str(BIN / "flask"), "--app", "wsgi", "db", "migrate"], cwd=ROOT, env=self.env, check=True,
                       capture_output=True, timeout=120)
        with open(self.log_path, "w", encoding="utf-8") as log:
            self.proc = subprocess.Popen(
                [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers),
                 "wsgi:app"], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn exited:\n{self.log_path.read_text(errors='replace')[-3000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
                conn.close()
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"gunicorn did not become ready in {timeout} s")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server's processes (its session: master and workers)."""
        return process_group_cpu(self.proc.pid)

    def stop(self):
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        except ProcessLookupError:
            pass


def proc_files(name: str):
    """(pid, text of /proc/<pid>/<name>) for every live process (Linux only)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                yield int(entry), Path(f"/proc/{entry}/{name}").read_text(encoding="ascii", errors="replace")
            except OSError:
                continue  # ended while we looked


def process_group_cpu(pgid: int) -> float:
    """Seconds of CPU the live processes of one process group have used."""
    total = 0
    for _pid, stat in proc_files("stat"):
        fields = stat.rsplit(")", 1)[1].split()  # after "(comm)": state ppid pgrp ... utime(11) stime(12)
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def worker_rss_mib(master_pid: int) -> list[float]:
    """Resident memory of each gunicorn worker (the master's children), MiB."""
    sizes = []
    for _pid, status in proc_files("status"):
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields.get("PPid", "0").strip()) == master_pid:
            sizes.append(int(fields["VmRSS"].split()[0]) / 1024)
    return sorted(sizes)


# One "worker" of the in-process rate: the same app and database, the same body, everything an adapter asks
# of the core (schema validation, the pipeline, the durable audit write) without HTTP, Flask or gunicorn.
IN_PROCESS = """
import json, sys, time
from safetycheck import create_app
from safetycheck.contract import v1
from safetycheck.db import get_db
from safetycheck.pipeline import run_check
body, seconds, pipeline_only = json.loads(sys.argv[1]), float(sys.argv[2]), sys.argv[3] == "pipeline"
app = create_app()
with app.app_context():
    service, db, count = app.extensions["safetycheck_service"], get_db(), 0
    request = v1.to_request(v1.load_body(body, service.kb))
    def once():
        if pipeline_only:  # the check alone, as bench.py times it: no validation, no audit write
            run_check(service.checker, request)
            return
        loaded = v1.load_body(body, service.kb)
        service.check(db, v1.to_request(loaded), loaded, channel="api", client="bench")
    for _ in range(20):
        once()
    print("ready", flush=True)
    sys.stdin.readline()  # every process starts at once
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        once()
        count += 1
    print(count / (time.perf_counter() - began), flush=True)
"""


def in_process_rate(server: "Server", workers: int, seconds: float, what: str = "core") -> float:
    """Checks/s of `workers` processes running the core in a loop at once (the rate HTTP is compared with);
    what="pipeline": the check alone (run_check), without validation or the audit write."""
    procs = [subprocess.Popen([sys.executable, "-c", IN_PROCESS, json.dumps(CHECK_BODY), str(seconds), what], cwd=ROOT,
                              env=server.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(workers)]
    for proc in procs:
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit("an in-process bench worker failed to start")
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    return sum(float(proc.communicate(timeout=seconds + 120)[0].strip().splitlines()[-1]) for proc in procs)


def client_cpu_seconds() -> float:
    """CPU used so far by this process, the load generator, which shares the machine's cores with the server."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def closed_loop(port: int, method: str, path: str, body, clients: int, seconds: float, max_requests: int):
    """`clients` threads, each with its own connection, for `seconds` (or max_requests each): (rps, latencies, errs)."""
    payload = json.dumps(body).encode() if body is not None else None
    headers = {"X-API-Key": KEY}
    if payload is not None:
        headers["Content-Type"] = "application/json"
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start_gate = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(i):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        start_gate.wait(timeout=30)
        try:
            for _ in range(max_requests):
                if time.perf_counter() >= stop_at[0]:
                    break
                t0 = time.perf_counter()
                try:
                    conn.request(method, path, body=payload, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    ok = response.status == 200
                except (OSError, http.client.HTTPException):
                    ok = False
                    conn.close()
                latencies[i].append((time.perf_counter() - t0) * 1000)
                errors[i] += not ok
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    start_gate.wait(timeout=30)
    for thread in threads:
        thread.join(timeout=seconds + 60)
    elapsed = time.perf_counter() - began
    flat = [x for per in latencies for x in per]
    return len(flat) / elapsed, flat, sum(errors)


def measure(server: Server, method: str, path: str, body, clients: int, seconds: float) -> dict:
    """One closed-loop figure: rate, latencies, errors, and the server's and the client's CPU per request."""
    cpu_before, client_before = server.cpu_seconds(), client_cpu_seconds()
    rps, lat, errors = closed_loop(server.port, method, path, body, clients, seconds, 100_000)
    count = max(1, len(lat))
    return {"rps": rps, "lat": lat, "errors": errors,
            "cpu_ms": (server.cpu_seconds() - cpu_before) * 1000 / count,
            "client_ms": (client_cpu_seconds() - client_before) * 1000 / count}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0, help="per figure and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--http-only", action="store_true", help="skip the in-process rate (to bench an old tree)")
    args = parser.parse_args()
    figures = (("GET /healthz", "GET", "/healthz", None), ("POST /api/v1/checks", "POST", "/api/v1/checks", CHECK_BODY))

    with tempfile.TemporaryDirectory(prefix="safetycheck-http-bench-") as work:
        server = Server(Path(work), args.workers)
        server.start()
        try:
            for _label, method, path, body in figures:
                closed_loop(server.port, method, path, body, args.clients, 1.0, 1000)  # warm-up
            print(f"HTTP (gunicorn, {args.workers} workers, 127.0.0.1), {args.clients} closed-loop clients, "
                  f"{args.rounds} rounds of {args.seconds:g} s per figure, the figures of a round taken in turn:")
            # The machine is shared and its speed drifts by tens of per cent within a minute: a ratio is
            # taken within each round, seconds apart, and the median of the rounds' ratios is printed.
            runs: dict[str, list[dict]] = {label: [] for label, *_ in figures}
            core, alone = [], []
            for number in range(1, args.rounds + 1):
                for label, method, path, body in figures:
                    runs[label].append(measure(server, method, path, body, args.clients, args.seconds))
                line = (f"  round {number}: /healthz {runs['GET /healthz'][-1]['rps']:7.1f} req/s, checks "
                        f"{runs['POST /api/v1/checks'][-1]['rps']:6.1f} req/s")
                if not args.http_only:
                    core.append(in_process_rate(server, args.workers, args.seconds))
                    alone.append(in_process_rate(server, args.workers, args.seconds, "pipeline"))
                    line += f", in-process {core[-1]:7.1f} checks/s, pipeline alone {alone[-1]:7.1f} checks/s"
                print(line, flush=True)
            print("  medians of the rounds:")
            cpu = {}
            for label, *_ in figures:
                done = runs[label]
                lat = [x for run in done for x in run["lat"]]
                rps, cpu_ms, client_ms = (statistics.median(run[k] for run in done) for k in ("rps", "cpu_ms",
                                                                                               "client_ms"))
                cpu[label] = cpu_ms
                print(f"  {label:<22} {rps:8.1f} req/s   median {statistics.median(lat):7.2f} ms   "
                      f"p99 {percentile(lat, 0.99):7.2f} ms   server CPU {cpu_ms:6.2f} ms/request   "
                      f"client CPU {client_ms:5.2f} ms/request   cores busy {(cpu_ms + client_ms) * rps / 1000:4.2f} "
                      f"of {os.cpu_count()}   ({len(lat)} requests, {sum(run['errors'] for run in done)} errors)")
            checks = [run["rps"] for run in runs["POST /api/v1/checks"]]
            healthz = [run["rps"] for run in runs["GET /healthz"]]

            def ratio(over):
                per_round = [c / o for c, o in zip(checks, over, strict=True)]
                return f"{statistics.median(per_round):6.1%}   (rounds: {', '.join(f'{r:.1%}' for r in per_round)})"

            rss = worker_rss_mib(server.proc.pid)
            if not args.http_only:
                print(f"  in-process, {args.workers} processes  {statistics.median(core):8.1f} checks/s   "
                      "(validation, pipeline and durable audit write; no HTTP)")
                print(f"  HTTP checks/s / in-process checks/s  {ratio(core)}   target >= 60 %, the in-process "
                      "rate read as everything but HTTP")
                print(f"  in-process, {args.workers} processes  {statistics.median(alone):8.1f} checks/s   (the "
                      "pipeline alone: no validation, no audit write; lines seen before, as the server reads this "
                      "body)")
                print(f"  HTTP checks/s / pipeline checks/s    {ratio(alone)}   the same target read literally")
            print(f"  HTTP checks/s / healthz/s            {ratio(healthz)}   target >= 25 %")
            print(f"  server CPU per check / per healthz   {cpu['POST /api/v1/checks'] / cpu['GET /healthz']:6.1f} x")
            print(f"  RSS per worker: {', '.join(f'{r:.0f}' for r in rss)} MiB   ({args.clients} clients, "
                  f"{args.workers} gunicorn workers, 20 medications + 9 labs per check, audit write included)")
        finally:
            server.stop()


if __name__ == "__main__":
    main()

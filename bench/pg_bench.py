"""Checks/s with the durable audit write: SQLite (one server) next to PostgreSQL (one and two servers).

Each server is gunicorn with --workers on 127.0.0.1; PostgreSQL is a throwaway cluster (scripts/pg_cluster.py)
with fsync and synchronous_commit on, so every answered check is on disk as with SQLite's synchronous=FULL.
Two servers share the clients half and half (what a round-robin load balancer does) and one database.
"""

import argparse
import statistics
import sys
import tempfile
import threading
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import pg_cluster  # noqa: E402
from http_bench import CHECK_BODY, Server, closed_loop  # noqa: E402

AUDIT_KEY = "bench-audit-key-0123456789abcdef-0123456789abcdef"


def server(workdir: Path, workers: int, db: str) -> Server:
    workdir.mkdir(parents=True, exist_ok=True)
    made = Server(workdir, workers)
    made.env.update(SAFETYCHECK_DB=db, SAFETYCHECK_AUDIT_KEY=AUDIT_KEY, SAFETYCHECK_INSTANCE_PATH=str(workdir))
    return made


def load(servers: list[Server], clients: int, seconds: float) -> tuple[float, list[float], int]:
    """Closed-loop clients spread over the servers at once: (total checks/s, latencies, errors)."""
    results = [None] * len(servers)

    def run(i):
        results[i] = closed_loop(servers[i].port, "POST", "/api/v1/checks", CHECK_BODY,
                                 max(1, clients // len(servers)), seconds, 100_000)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(servers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return (sum(r[0] for r in results), [x for r in results for x in r[1]], sum(r[2] for r in results))


def measure(label: str, servers: list[Server], clients: int, seconds: float) -> float:
    for made in servers:
        made.start()
    try:
        load(servers, clients, 1.0)  # warm-up
        rps, lat, errors = load(servers, clients, seconds)
    finally:
        for made in servers:
            made.stop()
    print(f"  {label:<32} {rps:8.1f} checks/s   median {statistics.median(lat):7.2f} ms   "
          f"({len(lat)} checks, {errors} errors)")
    return rps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="safetycheck-pg-bench-") as work:
        work = Path(work)
        cluster = tempfile.mkdtemp(prefix="safetycheck-pg-bench-cluster-")
        try:
            url = pg_cluster.start(cluster, fsync=True)
            with psycopg.connect(url, autocommit=True) as conn:
                for name in ("bench1", "bench2"):
                    conn.execute(f"CREATE DATABASE {name}")
            base = url.rsplit("/", 1)[0]
            print(f"Audit engines (gunicorn, {args.workers} workers per server, {args.clients} closed-loop clients, "
                  f"{args.seconds:g} s per figure, durable commits):")
            sqlite = measure("SQLite, 1 server", [server(work / "s", args.workers, str(work / "s" / "audit.db"))],
                             args.clients, args.seconds)
            one = measure("PostgreSQL, 1 server", [server(work / "p1", args.workers, f"{base}/bench1")],
                          args.clients, args.seconds)
            two = measure("PostgreSQL, 2 servers (1 database)",
                          [server(work / f"p2{i}", args.workers, f"{base}/bench2") for i in "ab"],
                          args.clients, args.seconds)
            print(f"  PostgreSQL 1 server / SQLite   {one / sqlite:8.1%}")
            print(f"  PostgreSQL 2 servers / 1       {two / one:8.1%}   (on this 2-core machine both servers share "
                  "the same cores and the database: scale-out shows on separate hosts)")
        finally:
            pg_cluster.stop(cluster)


if __name__ == "__main__":
    main()

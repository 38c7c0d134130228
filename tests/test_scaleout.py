"""Two gunicorn servers on different ports sharing one PostgreSQL: one chain, every answered check stored once,
even when one server is killed (-9) under load."""

import http.client
import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg

from .conftest import new_pg_database
from .test_server import CHECK_BODY, KEY, Server, call, flask_cli

AUDIT_KEY = "scale-out-audit-key-0123456789abcdef-shared-by-all-servers"
CLIENTS_PER_SERVER = 4
CHECKS_PER_CLIENT = 15


def _server(url: str, folder, name: str) -> Server:
    server = Server(url, folder / f"{name}.log")
    server.env.update(SAFETYCHECK_AUDIT_KEY=AUDIT_KEY, SAFETYCHECK_INSTANCE_PATH=str(folder / name))
    return server


def test_two_servers_one_chain_and_a_kill9_loses_no_answered_check(pg_server, tmp_path):
    url = new_pg_database(pg_server)
    first, second = _server(url, tmp_path, "a"), _server(url, tmp_path, "b")
    first.migrate()
    second.migrate()  # the second server's migrate finds nothing to do (one migration set, applied once)
    answered, lock, killed = [], threading.Lock(), threading.Event()

    def client(server: Server, index: int) -> None:
        conn = server.connection()
        try:
            for n in range(CHECKS_PER_CLIENT):
                if server is first and index == 0 and n == CHECKS_PER_CLIENT // 2:
                    first.kill9()  # mid-load: the other clients of this server are in flight
                    killed.set()
                try:
                    status, body = call(conn, "POST", "/api/v1/checks", CHECK_BODY, {"X-API-Key": KEY})
                except (OSError, http.client.HTTPException):  # cut off, even after the headers (IncompleteRead)
                    conn.close()
                    conn = server.connection()
                    continue  # not answered: nothing is promised for it
                assert status == 200, (status, body)
                if status == 200:
                    with lock:
                        answered.append(body["check_id"])
        finally:
            conn.close()

    try:
        first.start()
        second.start()
        with ThreadPoolExecutor(2 * CLIENTS_PER_SERVER) as pool:
            jobs = [pool.submit(client, server, i) for server in (first, second) for i in range(CLIENTS_PER_SERVER)]
            for job in jobs:
                job.result()
        assert killed.is_set()
        with psycopg.connect(url) as conn:
            stored = [r[0] for r in conn.execute("SELECT check_id FROM checks ORDER BY seq")]
            seqs = [r[0] for r in conn.execute("SELECT seq FROM checks ORDER BY seq")]
        assert len(answered) > CLIENTS_PER_SERVER * CHECKS_PER_CLIENT  # both servers answered
        assert sorted(stored.count(c) for c in set(answered)) == [1] * len(set(answered)) == [1] * len(answered)
        assert seqs == list(range(1, len(seqs) + 1))  # one chain: no gaps, no forks (seq is the primary key)
        for server in (first, second):  # each server's own anchor vouches for the shared chain
            verified = flask_cli(server.env, "audit", "verify")
            assert verified.returncode == 0, verified.stdout + verified.stderr
            assert f"{len(stored)} checks" in verified.stdout
    finally:
        first.stop()
        second.stop()

"""The real thing: gunicorn (2 workers) on 127.0.0.1, spoken to over HTTP with the standard library only.

Concurrent clients, kill -9 mid-load and a restart on the same database, tampering behind the application's
back, and the API keys. Every wait is bounded, every server is killed at teardown.
"""

import gc
import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
KEY = "server-test-key-0123456789abcdef"
REQUEST_TIMEOUT = 30  # seconds, per HTTP request
START_TIMEOUT = 180  # seconds, for gunicorn to answer /readyz (a fresh clone on a loaded 2-core machine is slow)
POLL_TIMEOUT = 2  # seconds, per readiness poll (a slow poll is retried, never an error)
CLI_TIMEOUT = 60  # seconds, per flask CLI command
CHECK_BODY = json.loads(next((ROOT / "tests" / "cases").glob("001-*.json")).read_text(encoding="utf-8"))["request"]

pytestmark = pytest.mark.skipif(not (BIN / "gunicorn").exists() or not (BIN / "flask").exists(),
                                reason="needs the venv's gunicorn and flask")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(db_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFETYCHECK_")}
    env.update(SAFETYCHECK_DB=str(db_path), SAFETYCHECK_API_KEYS=f"test:{KEY}",
               SAFETYCHECK_CACHE_DIR=str(ROOT / "instance" / "cache"), PYTHONUNBUFFERED="1")
    return env


def flask_cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "flask"), "--app", "wsgi", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=CLI_TIMEOUT, check=False)


def call(conn: http.client.HTTPConnection, method: str, path: str, body=None, headers=None):
    """One request; returns (status, JSON or text). The connection reopens itself if the server closed it."""
    headers = dict(headers or {})
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=payload, headers=headers)
    response = conn.getresponse()
    raw = response.read().decode("utf-8", "replace")
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, raw


def wait_until_ready(port: int, proc=None, timeout: float = START_TIMEOUT) -> bool:
    """Poll GET /readyz until 200 (True) or the deadline or the process's exit (False); every socket is closed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=POLL_TIMEOUT)
        try:
            conn.request("GET", "/readyz")
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                return True
        except (OSError, http.client.HTTPException):
            pass  # not listening yet, or too slow to answer this poll: try again
        finally:
            conn.close()
        time.sleep(0.2)
    return False


class Server:
    """gunicorn in a process group of its own (start_new_session), so the master and workers die together."""

    def __init__(self, db_path: Path, log_path: Path):
        self.env = server_env(db_path)
        self.db_path = db_path
        self.log_path = log_path
        self.proc = None
        self.port = None

    def migrate(self) -> None:
        done = flask_cli(self.env, "db", "migrate")
        assert done.returncode == 0, done.stdout + done.stderr

    def start(self) -> None:
        self.port = free_port()
        with open(self.log_path, "a", encoding="utf-8") as log:
            self.proc = subprocess.Popen(
                [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{self.port}", "--workers", "2",
                 "--timeout", "60", "--access-logfile", "-", "wsgi:app"],  # the rest from gunicorn.conf.py
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        if wait_until_ready(self.port, self.proc):
            return
        if self.proc.poll() is not None:
            pytest.fail(f"gunicorn exited with {self.proc.returncode}:\n{self.log()}")
        self.stop()
        pytest.fail(f"gunicorn did not answer /readyz within {START_TIMEOUT} s:\n{self.log()}")

    def connection(self, timeout: float = REQUEST_TIMEOUT) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def kill9(self) -> None:
        """SIGKILL to master and workers at once: no shutdown code runs anywhere."""
        self._signal_group(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self._signal_group(signal.SIGKILL)  # a worker may outlive a dead master
            return
        self._signal_group(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._signal_group(signal.SIGKILL)

    def _signal_group(self, sig) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def log(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-tail:]
        except OSError:
            return ""

    def check_ids(self) -> set[str]:
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10) as conn:
            return {row[0] for row in conn.execute("SELECT check_id FROM checks")}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("server")
    srv = Server(work / "audit.db", work / "gunicorn.log")
    srv.migrate()
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


def test_readiness_wait_survives_a_server_slower_than_one_poll():
    """A server that holds the first polls longer than POLL_TIMEOUT: the wait retries, closing every socket."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve():
        held = []
        try:
            while not stop.is_set():
                listener.settimeout(0.5)
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                if len(held) < 2:  # the first two polls get no answer at all (a busy boot)
                    held.append(conn)
                    continue
                with conn:
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        finally:
            for conn in held:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        assert wait_until_ready(port, timeout=60)
    finally:
        stop.set()
        thread.join(timeout=10)
        listener.close()
    gc.collect()  # an unclosed poll socket would surface here as a ResourceWarning (an error in this suite)


def post_checks(server: Server, count: int, headers: dict) -> list[tuple[int, object]]:
    """`count` checks on one keep-alive connection (reopened whenever gunicorn's sync worker closes it)."""
    conn = server.connection()
    try:
        return [call(conn, "POST", "/api/v1/checks", CHECK_BODY, headers) for _ in range(count)]
    finally:
        conn.close()


def test_concurrent_clients_all_answered_stored_and_retrievable(server):
    before = server.check_ids()
    clients, per_client = 6, 10
    with ThreadPoolExecutor(max_workers=clients) as pool:
        futures = [pool.submit(post_checks, server, per_client, {"X-API-Key": KEY}) for _ in range(clients)]
        answers = [answer for future in futures for answer in future.result(timeout=120)]

    statuses = [status for status, _ in answers]
    assert statuses == [200] * clients * per_client, [a for a in answers if a[0] != 200][:3]
    check_ids = [body["check_id"] for _, body in answers]
    assert len(set(check_ids)) == len(check_ids)
    assert all(body["verdict"] == "pass" for _, body in answers)  # tests/cases/001 is a clean pass

    conn = server.connection()
    try:
        for check_id in check_ids:
            status, stored = call(conn, "GET", f"/api/v1/checks/{check_id}", headers={"X-API-Key": KEY})
            assert status == 200, stored
            assert stored["check_id"] == check_id and stored["response"]["check_id"] == check_id
    finally:
        conn.close()

    added = server.check_ids() - before
    assert added == set(check_ids)  # one row per 200, nothing else
    log = server.log(tail=10**7)
    assert "database is locked" not in log
    assert "Traceback" not in log, server.log()


def test_api_key_required_and_bearer_accepted(server):
    before = server.check_ids()
    conn = server.connection()
    try:
        for headers in ({}, {"X-API-Key": "wrong-key"}, {"Authorization": "Bearer wrong-key"},
                        {"Authorization": f"Basic {KEY}"}):
            status, body = call(conn, "POST", "/api/v1/checks", CHECK_BODY, headers)
            assert status == 401, (headers, body)
            assert isinstance(body, dict) and body.get("code") == 401, body
            status, _ = call(conn, "GET", "/api/v1/regimens", headers=headers)
            assert status == 401, headers
        assert server.check_ids() == before  # a refused request writes nothing

        status, body = call(conn, "POST", "/api/v1/checks", CHECK_BODY, {"Authorization": f"Bearer {KEY}"})
        assert status == 200, body
        assert server.check_ids() == before | {body["check_id"]}
        status, body = call(conn, "GET", "/api/v1/regimens", headers={"Authorization": f"Bearer {KEY}"})
        assert status == 200 and body["regimens"], body
    finally:
        conn.close()


def test_row_changed_behind_the_app_fails_verify_naming_it(server, tmp_path):
    answers = post_checks(server, 3, {"X-API-Key": KEY})
    assert [status for status, _ in answers] == [200] * 3
    victim = answers[1][1]["check_id"]

    copy = tmp_path / "copy.db"  # a consistent snapshot (WAL included); the live server is left alone
    with sqlite3.connect(server.db_path) as live, sqlite3.connect(copy) as target:
        live.backup(target)
    Path(f"{copy}.anchor").write_bytes(Path(f"{server.db_path}.anchor").read_bytes())  # the chain head, kept apart
    env = server_env(copy)
    intact = flask_cli(env, "audit", "verify")
    assert intact.returncode == 0, intact.stdout + intact.stderr

    with sqlite3.connect(copy) as conn:
        verdict = conn.execute("SELECT verdict FROM checks WHERE check_id = ?", [victim]).fetchone()[0]
        conn.execute("DROP TRIGGER checks_no_update")
        conn.execute("UPDATE checks SET verdict = ? WHERE check_id = ?", ["block" if verdict != "block" else "pass",
                                                                         victim])
    tampered = flask_cli(env, "audit", "verify")
    assert tampered.returncode != 0, tampered.stdout + tampered.stderr
    assert victim in tampered.stdout + tampered.stderr


def test_kill9_mid_load_loses_no_answered_check_and_chain_stays_intact(tmp_path):
    srv = Server(tmp_path / "audit.db", tmp_path / "gunicorn.log")
    srv.migrate()
    acknowledged: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load():
        conn = srv.connection(timeout=10)
        try:
            for _ in range(500):  # bounded; the kill ends it much sooner
                if stop.is_set():
                    return
                try:
                    status, body = call(conn, "POST", "/api/v1/checks", CHECK_BODY, {"X-API-Key": KEY})
                except (OSError, http.client.HTTPException):
                    return  # the server is gone
                with lock:
                    if status == 200:
                        acknowledged.append(body["check_id"])
                    else:
                        failures.append(f"{status} {body}")
        finally:
            conn.close()

    try:
        srv.start()
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = [pool.submit(load) for _ in range(4)]
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len(acknowledged) < 30 and not all(f.done() for f in futures):
                time.sleep(0.05)
            srv.kill9()  # in the middle of the load: every client has a request in flight or about to be
            stop.set()
            for future in futures:
                future.result(timeout=60)
        assert not failures, failures[:3]
        assert len(acknowledged) >= 10, f"only {len(acknowledged)} checks answered before the kill:\n{srv.log()}"

        srv.start()  # same database, a fresh port
        stored = srv.check_ids()
        missing = [check_id for check_id in acknowledged if check_id not in stored]
        assert not missing, f"{len(missing)} answered checks are not in the database after the restart"
        conn = srv.connection()
        try:
            for check_id in acknowledged:
                status, body = call(conn, "GET", f"/api/v1/checks/{check_id}", headers={"X-API-Key": KEY})
                assert status == 200, body
        finally:
            conn.close()
        verify = flask_cli(srv.env, "audit", "verify")
        assert verify.returncode == 0, verify.stdout + verify.stderr
        status, body = post_checks(srv, 1, {"X-API-Key": KEY})[0]
        assert status == 200, body  # and it still takes new checks after the crash
    finally:
        stop.set()
        srv.stop()


def test_concurrent_requests_with_one_idempotency_key(server):
    """Same key, different bodies at once: one 200 and one 422; same key, same body: the same bytes twice."""

    def raw_post(body, key):
        conn = server.connection()
        try:
            conn.request("POST", "/api/v1/checks", body=json.dumps(body).encode(),
                         headers={"X-API-Key": KEY, "Content-Type": "application/json", "Idempotency-Key": key})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def pair(first, second, key):
        gate = threading.Barrier(2)

        def go(body):
            gate.wait(timeout=30)
            return raw_post(body, key)

        with ThreadPoolExecutor(max_workers=2) as pool:
            return [f.result(timeout=120) for f in [pool.submit(go, first), pool.submit(go, second)]]

    other = {**CHECK_BODY, "day": (CHECK_BODY.get("day") or 1) % 28 + 1}
    for i in range(15):
        answers = pair(CHECK_BODY, other, f"race-different-{i}")
        assert sorted(status for status, _ in answers) == [200, 422], answers
        same = pair(CHECK_BODY, CHECK_BODY, f"race-same-{i}")
        assert [status for status, _ in same] == [200, 200], same
        assert same[0][1] == same[1][1]
    assert "Traceback" not in server.log(tail=10**7)


def half_a_request(server: Server) -> socket.socket:
    """A slow client: connected, half a request header sent, never finished."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=REQUEST_TIMEOUT)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    return sock


def still_open(sock: socket.socket) -> bool:
    """The server has not closed (or answered) this connection."""
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True
    finally:
        sock.setblocking(True)


def test_slow_clients_do_not_stop_healthz_or_checks(server):
    slow = [half_a_request(server) for _ in range(3)]  # more than the two workers the server has
    try:
        time.sleep(0.5)  # let them reach the workers (a wait, not a threshold: the asserts below do not time)
        conn = server.connection()
        try:
            assert call(conn, "GET", "/healthz")[0] == 200
            status, body = call(conn, "POST", "/api/v1/checks", CHECK_BODY, {"X-API-Key": KEY})
            assert status == 200, body
        finally:
            conn.close()
        assert all(still_open(sock) for sock in slow)  # answered while the slow clients still hang
    finally:
        for sock in slow:
            sock.close()


def test_a_lock_held_by_another_process_does_not_stall_liveness(server):
    holder = sqlite3.connect(server.db_path, timeout=10, isolation_level=None)
    done: list[int] = []
    try:
        holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        with ThreadPoolExecutor(max_workers=3) as pool:
            futures = [pool.submit(lambda: done.append(post_checks(server, 1, {"X-API-Key": KEY})[0][0]))
                       for _ in range(3)]
            time.sleep(0.5)  # the checks are now waiting on the lock
            conn = server.connection()
            try:
                assert call(conn, "GET", "/healthz")[0] == 200
                status, body = call(conn, "GET", "/readyz")
                assert status == 503 and "locked" in body["reason"], body
            finally:
                conn.close()
            assert done == []  # liveness and readiness answered while the checks still wait on the lock
            holder.execute("ROLLBACK")
            for future in futures:
                future.result(timeout=120)
        assert done == [200, 200, 200]  # the lock went away within their busy timeout: all stored
    finally:
        if holder.in_transaction:
            holder.execute("ROLLBACK")
        holder.close()


def test_keys_in_a_url_never_reach_the_access_log(server):
    conn = server.connection()
    try:
        status, _ = call(conn, "GET", "/api/v1/regimens?api_key=url-secret-0123&key=url-secret-4567")
        assert status == 401
    finally:
        conn.close()
    deadline = time.monotonic() + 30
    while "/api/v1/regimens" not in server.log(tail=10**7) and time.monotonic() < deadline:
        time.sleep(0.2)  # the access log line is written after the answer
    log = server.log(tail=10**7)
    assert "/api/v1/regimens" in log and "url-secret" not in log


def test_an_overlong_url_is_a_json_414(server):
    conn = server.connection()
    try:
        status, body = call(conn, "GET", "/api/v1/checks?code=" + "A" * 6000, headers={"X-API-Key": KEY})
    finally:
        conn.close()
    assert status == 414 and isinstance(body, dict) and body["code"] == 414, body


def test_a_chunked_body_over_the_limit_is_413(server):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=REQUEST_TIMEOUT)
    try:
        sock.sendall(b"POST /api/v1/checks HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: " + KEY.encode()
                     + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                       b"Connection: close\r\n\r\n")
        chunk = b'{"regimen": "ipd", "medication_text": "' + b"x" * (64 * 1024)
        try:
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            for _ in range(20):  # 1.3 MB in all, over the 1 MiB limit
                sock.sendall(b"%x\r\n%s\r\n" % (64 * 1024, b"x" * (64 * 1024)))
            sock.sendall(b'3\r\n"}\n\r\n0\r\n\r\n')
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before the whole body is sent
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = json.loads(response.read())
    finally:
        sock.close()
    assert response.status == 413 and body["code"] == 413, body

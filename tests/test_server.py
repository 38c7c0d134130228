"""The real thing: gunicorn (2 workers) on 127.0.0.1, spoken to over HTTP with the standard library only.

Concurrent clients, kill -9 mid-load and a restart on the same database, tampering behind the application's
back, and the API keys. Every wait is bounded, every server is killed at teardown.
"""

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
START_TIMEOUT = 60  # seconds, for gunicorn to answer /readyz
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
                 "--timeout", "60", "wsgi:app"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"gunicorn exited with {self.proc.returncode}:\n{self.log()}")
            probe = self.connection(timeout=2)
            try:
                status, _ = call(probe, "GET", "/readyz")
                if status == 200:
                    return
            except OSError:
                pass  # not listening yet, or a worker still booting (a loaded machine takes > 2 s)
            finally:
                probe.close()
            time.sleep(0.2)
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

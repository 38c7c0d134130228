"""A throwaway PostgreSQL cluster for tests and benchmarks: installed from Debian's packages when missing.

    python scripts/pg_cluster.py start DIR   # prints the URL; reuses a cluster already running in DIR
    python scripts/pg_cluster.py stop DIR    # stops it and removes DIR

Root cannot run postgres, so as root the cluster runs as the `postgres` user the Debian package creates.
It listens on 127.0.0.1 on a free port (and a socket in DIR), trust authentication, nothing else.
Any failure raises: a test run never goes on without PostgreSQL.
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
from pathlib import Path


class ClusterError(RuntimeError):
    """PostgreSQL could not be installed, started or stopped."""


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def ensure_installed() -> Path:
    """The PostgreSQL server binaries, installed with apt-get (as root) when missing."""
    bindir = _bindir()
    if bindir is None:
        if os.geteuid() != 0:
            raise ClusterError("PostgreSQL is not installed and this is not root: run "
                               "apt-get update && apt-get install -y postgresql")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"]):
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if done.returncode:
                raise ClusterError(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        bindir = _bindir()
        if bindir is None:
            raise ClusterError("apt-get install postgresql left no /usr/lib/postgresql/*/bin/initdb")
    return bindir


def _as_owner(cmd: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *cmd] if owner else cmd


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(cmd: list[str], what: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise ClusterError(f"{what} failed ({' '.join(cmd)}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done.stdout


def start(root: str | os.PathLike, fsync: bool = True) -> str:
    """Start (or reuse) the cluster in `root`; return its URL (database `postgres`, user `postgres`)."""
    root = Path(root)
    url_file = root / "url"
    bindir = ensure_installed()
    owner = "postgres" if os.geteuid() == 0 else None
    data = root / "data"
    if url_file.exists():
        status = subprocess.run(_as_owner([str(bindir / "pg_ctl"), "-D", str(data), "status"], owner),
                                capture_output=True, text=True)
        if status.returncode == 0:
            return url_file.read_text().strip()
        shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    if owner:
        entry = pwd.getpwnam(owner)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    os.chmod(root, 0o700)
    _run(_as_owner([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                    "--no-instructions"], owner), "initdb")
    port = _free_port()
    options = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=200 "
               f"-c fsync={'on' if fsync else 'off'} -c synchronous_commit=on")
    _run(_as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-o", options, "-w",
                    "-t", "60", "start"], owner), "pg_ctl start")
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    url_file.write_text(url + "\n")
    return url


def stop(root: str | os.PathLike) -> None:
    """Stop the cluster in `root` (if running) and remove the directory."""
    root = Path(root)
    bindir = _bindir()
    if bindir and (root / "data").exists():
        owner = "postgres" if os.geteuid() == 0 else None
        subprocess.run(_as_owner([str(bindir / "pg_ctl"), "-D", str(root / "data"), "-m", "fast", "-w", "stop"],
                                 owner), capture_output=True, text=True)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        sys.exit(__doc__)
    if sys.argv[1] == "start":
        print(start(sys.argv[2]))
    else:
        stop(sys.argv[2])

"""A PostgreSQL server of our own, for the DuckLake catalog on one machine (`spbe postgres start`) and for the
tests: Debian's PostgreSQL binaries, a cluster in a folder, reached through a Unix socket in that folder (no
TCP port is opened). As root, the server runs as the `postgres` user: initdb refuses root.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

USER = "spbe"
DATABASE = "spbe"


def postgres_bin(name: str) -> str | None:
    """The newest installed PostgreSQL's ``name`` (Debian keeps them in /usr/lib/postgresql/<major>/bin)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return found[-1] if found else shutil.which(name)


def unavailable() -> str | None:
    """Why a local server cannot be started here, or None."""
    if not postgres_bin("initdb") or not postgres_bin("pg_ctl"):
        return "PostgreSQL is not installed (Debian: `apt-get install postgresql`; `make postgres` does it)"
    if os.geteuid() == 0 and (shutil.which("runuser") is None or
                              subprocess.run(["id", "postgres"], capture_output=True).returncode):
        return "running as root without a 'postgres' user to own the server"
    return None


@dataclass(frozen=True)
class LocalPostgres:
    root: Path  # the cluster (root/cluster), its log and its socket (root/socket)

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @property
    def dsn(self) -> str:
        """libpq's connection string (what DuckDB's postgres extension and psycopg take)."""
        return f"dbname={DATABASE} user={USER} host={self.socket_dir}"

    def _as_owner(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def running(self) -> bool:
        pg_ctl = postgres_bin("pg_ctl")
        if not pg_ctl or not (self.root / "cluster").exists():
            return False
        status = subprocess.run([*self._as_owner(), pg_ctl, "-D", str(self.root / "cluster"), "status"],
                                capture_output=True)
        return status.returncode == 0

    def start(self) -> LocalPostgres:
        """Create the cluster and its database on first use; start the server unless it runs."""
        if reason := unavailable():
            raise RuntimeError(f"cannot start PostgreSQL: {reason}")
        cluster = self.root / "cluster"
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            for folder in (self.root, self.socket_dir):
                shutil.chown(folder, "postgres")
        if not cluster.exists():
            _run([*self._as_owner(), postgres_bin("initdb"), "-D", str(cluster), "-A", "trust", "-U", USER,
                  "--no-sync", "-E", "UTF8"])
        if not self.running():
            _run([*self._as_owner(), postgres_bin("pg_ctl"), "-D", str(cluster), "-l", str(self.root / "server.log"),
                  "-w", "-t", "60", "-o", f"-k {self.socket_dir} -c listen_addresses=''", "start"])
        self.create_database(DATABASE)
        return self

    def create_database(self, name: str) -> str:
        """A database of that name (kept if it exists); its connection string."""
        created = subprocess.run([*self._as_owner(), postgres_bin("createdb"), "-h", str(self.socket_dir), "-U", USER,
                                  name], capture_output=True, text=True)
        if created.returncode and "already exists" not in created.stderr:
            raise RuntimeError(f"createdb {name}: {created.stderr.strip()}")
        return self.dsn.replace(f"dbname={DATABASE} ", f"dbname={name} ", 1)

    def stop(self) -> None:
        if self.running():
            _run([*self._as_owner(), postgres_bin("pg_ctl"), "-D", str(self.root / "cluster"), "-m", "fast", "-w",
                  "stop"])


def _run(args: list[str]) -> None:
    """A PostgreSQL tool; its own words when it fails (a folder the server's user cannot enter, a port...)."""
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode:
        tool = next((Path(a).name for a in args if Path(a).name in ("initdb", "pg_ctl")), args[0])
        raise RuntimeError(f"{tool} failed: {(done.stderr or done.stdout).strip()[-1500:]}")

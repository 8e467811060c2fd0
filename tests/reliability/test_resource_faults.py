"""Promise: when the disk refuses a write (a folder that is not writable, a full disk), the run fails with
a clear error naming the cause, the published warehouse stays byte-identical, and no received file is lost.

Each case is the real `spbe ingest` in a subprocess. A folder is made read-only with chmod; as root, the
subprocess also gives up its capabilities, so that the permission bits bind it as they bind any user. A
full disk is simulated with RLIMIT_FSIZE: every write past the limit fails (EFBIG), as it would on a disk
that fills up during the build.
"""

import ctypes
import os
import resource
import signal
import stat
import subprocess
from pathlib import Path

import pytest

from dagster_project.lib.archive import file_sha256
from dagster_project.lib.ingest_log import read_lines
from tests.reliability.conftest import SPBE

PR_CAPBSET_DROP = 24
LAST_CAP = 63


def _drop_root_powers() -> None:
    """Empty the capability bounding set: after exec, uid 0 keeps no power to bypass permission bits."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in range(LAST_CAP + 1):
            libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # caps this kernel lacks fail harmlessly


def _file_size_limit(limit: int):
    def apply() -> None:
        _drop_root_powers()
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, not a signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    return apply


def _read_only(*folders: Path) -> None:
    for folder in folders:
        for d in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
            d.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)


def _writable(folder: Path) -> None:
    for d in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
        d.chmod(0o755)


CASES = {
    # name: (make the fault, preexec, what the error says, does the file land before the failure)
    "lake_not_writable": (lambda p: _read_only(p.lake), _drop_root_powers, "Permission denied", False),
    "warehouse_not_writable": (lambda p: _read_only(p.warehouse), _drop_root_powers, "Permission denied", True),
    "disk_full_during_build": (lambda p: None, _file_size_limit(3 * 2**20), "File too large", True),
}


@pytest.mark.parametrize("case", CASES)
def test_a_refused_write_fails_clearly_and_loses_nothing(case, cli_case):
    make_fault, preexec, message, lands = CASES[case]
    paths, sha = cli_case.paths, cli_case.sha256
    published = file_sha256(paths.published_db)

    make_fault(paths)
    try:
        run = subprocess.run([str(SPBE), "ingest", str(cli_case.received)], env=cli_case.env, capture_output=True,
                             text=True, timeout=300, preexec_fn=preexec)
    finally:
        _writable(paths.root)

    assert run.returncode == 1, run.stdout + run.stderr
    assert message in run.stderr, run.stderr
    assert "Traceback" not in run.stderr, run.stderr[:4000]
    assert file_sha256(paths.published_db) == published
    statuses = [line["status"] for line in read_lines(paths.ingest_log) if line["sha256"] == sha]
    if lands:
        assert statuses == ["loaded"] and (paths.archive / f"{sha}.json").read_bytes() == cli_case.content
    else:  # back in the inbox, whole, for the next run
        assert statuses == [] and (paths.inbox / cli_case.received.name).read_bytes() == cli_case.content
    assert not list(paths.published_db.parent.glob(".*.partial*"))

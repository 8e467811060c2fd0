"""Promise: a run killed with SIGKILL (an OOM kill, a pulled plug) during the dbt build or during publish
leaves the published warehouse intact and queryable, loses no received file, leaves no build lock behind,
blocks no command waiting for the build lock, and the next run completes; the killed runs are marked failed.

Each run is the real `spbe` command in its own process group, killed whole at the moment the phase is seen.
dbt runs inside the `spbe` process (in a thread), so "during the dbt build" is: the process holds the build
lock (warehouse/.build.lock names its run and pid), has the build database open for writing (only dbt opens
it so; planning and publish read it), and no publish has begun. "During publish" is: publish's partial file
is on disk.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from dagster_project import cli
from dagster_project.lib.archive import file_sha256
from dagster_project.lib.ingest_log import read_lines
from dagster_project.lib.warehouse import build_lock
from dagster_project.paths import DataPaths
from tests.events import submission
from tests.reliability.conftest import SPBE


def _lock_holder(paths: DataPaths) -> dict | None:
    """Who holds the build lock, as its holder wrote it (empty once released; left as it was by a kill)."""
    try:
        return json.loads((paths.warehouse / ".build.lock").read_text())
    except (OSError, ValueError):
        return None


def _open_for_writing(pid: int, path: Path) -> bool:
    """Whether the process has ``path`` open for writing (its fd's access mode, from /proc)."""
    target = str(path.resolve())
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(fd) != target:
                continue
            info = Path(f"/proc/{pid}/fdinfo/{fd.name}").read_text()
            flags = int(info.split("flags:")[1].split()[0], 8)
        except (OSError, IndexError, ValueError):
            continue  # closed while we looked
        if flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR):
            return True
    return False


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([str(SPBE), *args], env=env, start_new_session=True, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _wait_for(seen, proc: subprocess.Popen, what: str, timeout: float = 240) -> None:
    """Until ``seen()`` is true; fail if ``proc`` ends first."""
    deadline = time.monotonic() + timeout
    while not seen():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before {what}:\n{proc.stdout.read()}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(0.02)  # a look costs 0.5 ms of CPU; the phases watched last 0.5 s (publish) or more


def _kill_when(proc: subprocess.Popen, seen, what: str, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to the whole process group as soon as ``seen()`` is true (SIGKILL: and wait for it to end;
    SIGSTOP: it stays as it is, its locks held, until killed); fail if the run ends first."""
    _wait_for(seen, proc, what)
    os.killpg(proc.pid, sig)
    if sig == signal.SIGKILL:
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL


def _assert_intact(paths: DataPaths, sha: str, manifest: dict) -> None:
    assert file_sha256(paths.published_db) == sha
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        for table, expected in manifest["tables"].items():
            assert con.execute(f'select count(*) from "{table}"').fetchone()[0] == expected["rows"], table  # noqa: S608


def test_a_run_killed_during_dbt_and_then_during_publish_loses_nothing(cli_case, tmp_path, monkeypatch, capsys):
    paths, env, received, new_sha = cli_case.paths, cli_case.env, cli_case.received, cli_case.sha256
    waiting_file = tmp_path / "waiting.json"
    waiting_file.write_bytes(submission("12.25", level=4))
    published_sha = file_sha256(paths.published_db)
    manifest = json.loads(paths.published_manifest.read_text())
    partials = lambda: list(paths.published_db.parent.glob(f".{paths.published_db.name}.*.partial"))  # noqa: E731
    assert _lock_holder(paths) is None  # released by the run that built the copied warehouse

    # 1. Killed during the dbt build, after the new file has landed.
    run = _start(["ingest", str(received)], env)

    def in_dbt() -> bool:
        holder = _lock_holder(paths)
        return (holder is not None and holder["pid"] == run.pid and _open_for_writing(run.pid, paths.build_db)
                and not partials())

    _kill_when(run, in_dbt, "dbt build")
    first_run = _lock_holder(paths)["run_id"]
    assert not partials()  # killed before publish began
    with build_lock(paths, "probe", timeout=5):  # the build lock died with its holder: nobody waits on it
        pass
    _assert_intact(paths, published_sha, manifest)
    landed = [line for line in read_lines(paths.ingest_log) if line["sha256"] == new_sha]
    assert [line["status"] for line in landed] == ["loaded"]
    assert (paths.archive / f"{new_sha}.json").read_bytes() == cli_case.content

    # 2. The next run is stopped during publish, while its partial file is being written; a second command lands
    # a file meanwhile and waits for the build lock; the stopped run is then killed. The waiting command takes
    # the lock at once and publishes both the first file and its own (a file landed during another build was
    # once never published, and a command waiting on a killed run once waited for ever).
    run = _start(["build"], env)
    _kill_when(run, lambda: bool(partials()), "publish", signal.SIGSTOP)
    second_run = _lock_holder(paths)["run_id"]  # publish runs under the build lock
    assert second_run != first_run
    try:
        waiting = _start(["ingest", str(waiting_file)], env)
        _wait_for(lambda: any(line["original_name"] == waiting_file.name for line in read_lines(paths.ingest_log)),
                  waiting, "the waiting command's landing")
    finally:  # never leave a stopped process behind, whatever failed
        os.killpg(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
    _assert_intact(paths, published_sha, manifest)  # (the waiting command needs seconds to build before it publishes)
    out, _ = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, out
    assert f"{waiting_file.name}: loaded" in out
    assert file_sha256(paths.published_db) != published_sha
    assert json.loads(paths.published_manifest.read_text())["run_id"] not in (first_run, second_run)

    # 3. The next command marks the run killed during publish failed (the first one was marked by the second).
    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
    monkeypatch.setenv("SPBE_DATA_DIR", str(paths.root))
    monkeypatch.setenv("PATH", os.environ["PATH"])  # restored after: the command puts the venv first
    assert cli.main(["ingest", "--no-build", str(waiting_file)]) == 0  # in this process: a duplicate, landed only
    assert f"run {second_run} was left unfinished by a process that died: marked failed" in capsys.readouterr().err
    assert partials() == [] and not list(paths.inbox.rglob("*.json"))
    assert _lock_holder(paths) is None
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        rows = con.execute("select count(*) from fct_submission_revisions where institution_id = '32.11' "
                           "and year = 2023 and stage = 'final' and is_current").fetchone()[0]
        landed = con.execute("select original_name from fct_ingest_log where status = 'loaded' and original_name "
                             "in (?, ?) order by 1", [received.name, waiting_file.name]).fetchall()
    assert rows == 1 and landed == sorted([(received.name,), (waiting_file.name,)])

    import dagster as dg

    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:  # both killed runs are marked failed
        statuses = {r: instance.get_run_by_id(r).status for r in (first_run, second_run)}
    assert statuses == {first_run: dg.DagsterRunStatus.FAILURE, second_run: dg.DagsterRunStatus.FAILURE}


def test_the_sensor_fails_runs_of_dead_processes():
    import dagster as dg

    from dagster_project.defs.recovery import RUNNER_TAG, abandoned_runs_sensor
    from dagster_project.lib.processes import owner_of

    @dg.job
    def some_job():
        pass

    finished = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    dead_owner = owner_of(finished.pid)
    finished.wait()
    with dg.DagsterInstance.ephemeral() as instance:
        runs = {owner: instance.create_run_for_job(some_job, tags={RUNNER_TAG: owner},
                                                   status=dg.DagsterRunStatus.STARTED)
                for owner in (dead_owner, owner_of())}

        result = abandoned_runs_sensor(dg.build_sensor_context(instance=instance))
        assert runs[dead_owner].run_id in result.skip_message
        status = {o: instance.get_run_by_id(r.run_id).status for o, r in runs.items()}
        assert status == {dead_owner: dg.DagsterRunStatus.FAILURE, owner_of(): dg.DagsterRunStatus.STARTED}

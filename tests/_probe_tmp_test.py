import dagster as dg, duckdb
from dagster_project.lib.ingest_log import IngestLog
from tests.conftest import run_update

def test_probe(copy_of_built):
    paths = copy_of_built
    (current,) = paths.lake.glob("official_results/year=2024/*.parquet")
    bad_sha = "f" * 64
    con = duckdb.connect()
    con.read_parquet(str(current)).union(con.read_parquet(str(current))).project(
        f"* replace ('{bad_sha}' as source_sha256, now() as received_at)").write_parquet(
        str(current.with_name(f"{bad_sha}.parquet")))
    con.close()
    IngestLog(paths.ingest_log).append([({"sha256": bad_sha, "dataset": "official_results", "year": 2024,
                                          "status": "loaded", "rows": 1230, "reason": "bypassed validation",
                                          "original_name": "x.csv", "source": "local",
                                          "received_at": "2026-01-01"}, True)])
    with dg.DagsterInstance.ephemeral() as instance:
        run_update(instance, raise_on_error=False)
    rel = '"test_failures"."unique_combination_int_officia_f15dcd07da3bd2cbd8a939360a0664f1"'
    with duckdb.connect(str(paths.build_db), read_only=True) as c:
        try:
            c.execute(f"select * from {rel} limit 10").fetchall()
            print("NO_SEARCH_PATH ok")
        except duckdb.Error as e:
            print("NO_SEARCH_PATH", type(e).__name__, str(e)[:120])
        c.execute("set file_search_path = ?", [str(paths.root)])
        cur = c.execute(f"select * from {rel} limit 10")
        print("WITH_SEARCH_PATH", [d[0] for d in cur.description], cur.fetchall()[:3])

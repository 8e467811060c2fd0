"""Release sources over real HTTP on 127.0.0.1: listing, retries, conditional GET, checksums, limits."""

import hashlib
import json
import os

import pytest

from dagster_project.lib.ingest import land_release
from dagster_project.lib.sources import (
    ReleaseSourceError,
    SourceConfig,
    fetch_release,
    list_releases,
    source_config_from_env,
)
from dagster_project.paths import BUNDLED_RELEASES_DIR
from tests.local_http import LocalServer, Reply, failing_then, static

BODY = (BUNDLED_RELEASES_DIR / "spbe_results_2024.csv").read_bytes()
SHA = hashlib.sha256(BODY).hexdigest()


def manifest(sha: str | None = SHA, url: str = "files/hasil_2024.csv") -> bytes:
    return json.dumps({"releases": [{"year": 2024, "url": url, "format": "csv", "sha256": sha}]}).encode()


@pytest.fixture
def server():
    with LocalServer() as s:
        yield s


def http_cfg(server, **kw) -> SourceConfig:
    return SourceConfig(kind="http", location=f"{server.url}/manifest.json", retries=2, backoff_seconds=0.01,
                        **{"timeout_seconds": 5, **kw})


def fetch(server, data_dir, cfg=None):
    """Fetch the manifest's one release into a downloads folder, as landing does."""
    cfg = cfg or http_cfg(server)
    (entry,) = list_releases(cfg)
    return fetch_release(cfg, entry, data_dir.archive, data_dir.http_cache, data_dir.root / "downloads")


def land(server, data_dir):
    """Fetch and land (archive) the manifest's one release."""
    cfg = http_cfg(server)
    (entry,) = list_releases(cfg)
    return land_release(cfg, entry, data_dir)


def test_bundled_folder_is_the_default_source():
    cfg = source_config_from_env({})
    assert cfg.kind == "local" and [e.key for e in list_releases(cfg)] == \
        ["2023", "2024", "secondary-2019", "secondary-2021", "secondary-2022"]


def test_http_manifest_release_is_downloaded_verified_and_archived(server, data_dir):
    server.routes["/manifest.json"] = static(manifest(), content_type="application/json")
    server.routes["/files/hasil_2024.csv"] = static(BODY, etag='"v1"')
    got = fetch(server, data_dir)
    assert got.sha256 == SHA and got.path.parent == data_dir.root / "downloads"
    assert got.path.read_bytes() == BODY and not got.not_modified
    landed = land(server, data_dir)
    assert landed.status == "loaded" and (data_dir.archive / f"{SHA}.csv").read_bytes() == BODY
    assert [p.name for p in data_dir.archive.glob(".*")] == [".lock"]  # no temp file left behind


def test_unchanged_release_is_not_downloaded_again(server, data_dir):
    server.routes["/manifest.json"] = static(manifest(), content_type="application/json")
    downloads = []

    def counted(req):
        reply = static(BODY, etag='"v1"')(req)
        downloads.append(reply.status)
        return reply
    server.routes["/files/hasil_2024.csv"] = counted
    land(server, data_dir)
    again = fetch(server, data_dir)
    assert downloads == [200, 304]
    # A second name of the archived copy: evicting that copy meanwhile loses nothing.
    assert again.path.parent == data_dir.root / "downloads"
    assert os.path.samefile(again.path, data_dir.archive / f"{SHA}.csv")
    assert again.not_modified and again.sha256 == SHA


def test_server_errors_and_resets_are_retried_then_succeed(server, data_dir):
    server.routes["/manifest.json"] = static(manifest(), content_type="application/json")
    server.routes["/files/hasil_2024.csv"] = failing_then(
        static(BODY), [Reply(503, b"busy"), Reply(drop_connection=True)])
    assert fetch(server, data_dir).sha256 == SHA
    assert server.hits["/files/hasil_2024.csv"] == 3


def test_a_server_that_answers_too_late_is_retried_then_loads_once(server, data_dir):
    server.routes["/manifest.json"] = static(manifest(), content_type="application/json")
    server.routes["/files/hasil_2024.csv"] = failing_then(static(BODY), [Reply(200, BODY, delay=1.5)])
    got = fetch(server, data_dir, http_cfg(server, timeout_seconds=0.3))
    assert got.sha256 == SHA and server.hits["/files/hasil_2024.csv"] == 2
    assert list((data_dir.root / "downloads").iterdir()) == [got.path]  # one download kept, no partial one


def test_a_server_that_never_answers_in_time_loads_nothing(server, data_dir):
    server.routes["/manifest.json"] = static(manifest(), content_type="application/json")
    server.routes["/files/hasil_2024.csv"] = lambda req: Reply(200, BODY, delay=1.0)
    with pytest.raises(ReleaseSourceError, match="Timeout|timed out"):
        fetch(server, data_dir, http_cfg(server, timeout_seconds=0.2))
    assert server.hits["/files/hasil_2024.csv"] == 3  # the first try and 2 retries
    assert list(data_dir.archive.iterdir()) == []


def test_persistent_server_errors_fail_and_land_nothing(server, data_dir):
    server.routes["/manifest.json"] = static(manifest(), content_type="application/json")
    server.routes["/files/hasil_2024.csv"] = lambda req: Reply(500, b"down")
    with pytest.raises(ReleaseSourceError, match="500"):
        fetch(server, data_dir)
    assert server.hits["/files/hasil_2024.csv"] == 3  # one try and two retries
    assert list(data_dir.archive.iterdir()) == []


def test_not_found_is_a_clear_error(server, data_dir):
    server.routes["/manifest.json"] = static(manifest(), content_type="application/json")
    with pytest.raises(ReleaseSourceError, match="HTTP 404"):
        fetch(server, data_dir)
    assert server.hits["/files/hasil_2024.csv"] == 1  # 4xx is not retried


def test_checksum_mismatch_loads_nothing(server, data_dir):
    server.routes["/manifest.json"] = static(manifest(sha="0" * 64), content_type="application/json")
    server.routes["/files/hasil_2024.csv"] = static(BODY)
    with pytest.raises(ReleaseSourceError, match="sha256 mismatch"):
        fetch(server, data_dir)
    assert list(data_dir.archive.iterdir()) == []


def test_truncated_body_loads_nothing(server, data_dir):
    server.routes["/manifest.json"] = static(manifest(sha=None), content_type="application/json")
    server.routes["/files/hasil_2024.csv"] = lambda req: Reply(200, BODY[:1000], declared_length=len(BODY))
    with pytest.raises(ReleaseSourceError, match="interrupted"):
        fetch(server, data_dir)
    assert list(data_dir.archive.iterdir()) == []


def test_body_over_the_size_limit_is_refused(server, data_dir):
    server.routes["/manifest.json"] = static(manifest(sha=None), content_type="application/json")
    server.routes["/files/hasil_2024.csv"] = static(BODY)
    with pytest.raises(ReleaseSourceError, match="limit"):
        fetch(server, data_dir, http_cfg(server, max_bytes=len(BODY) - 1))
    assert list(data_dir.archive.iterdir()) == []


def test_redirect_to_an_unconfigured_host_is_refused(server, data_dir):
    server.routes["/manifest.json"] = static(manifest(), content_type="application/json")
    server.routes["/files/hasil_2024.csv"] = lambda req: Reply(302, headers={"Location": "http://example.com/x.csv"})
    with pytest.raises(ReleaseSourceError, match="not a configured release host"):
        fetch(server, data_dir)


def test_redirect_within_the_configured_host_is_followed(server, data_dir):
    server.routes["/manifest.json"] = static(manifest(), content_type="application/json")
    server.routes["/files/hasil_2024.csv"] = lambda req: Reply(301, headers={"Location": "/mirror/2024.csv"})
    server.routes["/mirror/2024.csv"] = static(BODY)
    assert fetch(server, data_dir).sha256 == SHA


@pytest.mark.parametrize("body", [b"{not json", b'{"releases": {"year": 2024}}', b'[{"year": "next"}]',
                                  manifest(sha="xyz")])
def test_malformed_manifests_are_clear_errors(server, body):
    server.routes["/manifest.json"] = static(body, content_type="application/json")
    with pytest.raises(ReleaseSourceError, match="manifest|JSON"):
        list_releases(http_cfg(server))


def test_ckan_package_show_resources_become_releases(server, data_dir):
    package = {"success": True, "result": {"name": "hasil-evaluasi-spbe", "resources": [
        {"name": "Hasil Evaluasi SPBE 2024", "format": "CSV", "url": f"{server.url}/dl/2024.csv",
         "hash": SHA, "last_modified": "2025-01-02T03:04:05"},
        {"name": "Infografis 2024", "format": "PDF", "url": f"{server.url}/dl/infografis.pdf"},
    ]}}
    server.routes["/api/3/action/package_show"] = static(json.dumps(package).encode(), content_type="application/json")
    server.routes["/dl/2024.csv"] = static(BODY)
    cfg = SourceConfig(kind="ckan", location=server.url, package_id="hasil-evaluasi-spbe", retries=0)
    (entry,) = list_releases(cfg)
    assert (entry.year, entry.sha256, entry.version) == (2024, SHA, "2025-01-02T03:04:05")
    assert land_release(cfg, entry, data_dir).sha256 == SHA


def test_failed_ckan_answer_is_a_clear_error(server):
    server.routes["/api/3/action/package_show"] = static(b'{"success": false, "error": {"message": "Not found"}}')
    with pytest.raises(ReleaseSourceError, match="did not succeed"):
        list_releases(SourceConfig(kind="ckan", location=server.url, package_id="nope", retries=0))


@pytest.mark.parametrize("body", [b"<html>portal down</html>", b'{"success": true}',
                                  b'{"success": true, "result": {"resources": "none"}}', b"[1, 2]"])
def test_malformed_ckan_answers_are_clear_errors(server, body):
    server.routes["/api/3/action/package_show"] = static(body, content_type="application/json")
    with pytest.raises(ReleaseSourceError):
        list_releases(SourceConfig(kind="ckan", location=server.url, package_id="spbe", retries=0))


def test_a_local_release_is_copied_as_it_is_hashed(tmp_path, data_dir):
    """What is checked against the manifest's sha256 is what lands, even if the file is rewritten later."""
    (tmp_path / "releases").mkdir()
    (tmp_path / "releases" / "r.csv").write_bytes(BODY)
    (tmp_path / "releases" / "manifest.json").write_text(json.dumps([{"year": 2024, "url": "r.csv", "sha256": SHA}]))
    cfg = SourceConfig(kind="local", location=str(tmp_path / "releases"))
    (entry,) = list_releases(cfg)
    got = fetch_release(cfg, entry, data_dir.archive, data_dir.http_cache, tmp_path / "downloads")
    (tmp_path / "releases" / "r.csv").write_bytes(b"rewritten")
    assert got.path.parent == tmp_path / "downloads" and got.path.read_bytes() == BODY and got.sha256 == SHA


def test_local_manifest_cannot_point_outside_its_folder(tmp_path, data_dir):
    (tmp_path / "releases").mkdir()
    (tmp_path / "secret.csv").write_text("x")
    (tmp_path / "releases" / "manifest.json").write_text(json.dumps([{"year": 2024, "url": "../secret.csv"}]))
    cfg = SourceConfig(kind="local", location=str(tmp_path / "releases"))
    (entry,) = list_releases(cfg)
    with pytest.raises(ReleaseSourceError, match="not a file inside"):
        fetch_release(cfg, entry, data_dir.archive, data_dir.http_cache, data_dir.root / "downloads")


def test_a_304_never_returns_content_the_manifest_no_longer_names(server, data_dir):
    """A stale cache or CDN answers 304 to any conditional request; the new manifest sha must still win."""
    new_body = BODY.replace(b"Pemerintah Kab. Banyuwangi", b"Pemerintah Kabupaten Banyuwangi")
    current = {"manifest": manifest(), "body": BODY}

    def stale_cdn(req):
        if req.headers.get("If-None-Match"):
            return Reply(304)
        return Reply(200, current["body"], {"ETag": '"always-the-same"'})
    server.routes["/manifest.json"] = lambda req: Reply(200, current["manifest"])
    server.routes["/files/hasil_2024.csv"] = stale_cdn
    assert land(server, data_dir).sha256 == SHA
    current.update(manifest=manifest(sha=hashlib.sha256(new_body).hexdigest()), body=new_body)
    got = fetch(server, data_dir)
    assert got.sha256 == hashlib.sha256(new_body).hexdigest() and not got.not_modified


def test_a_trickling_download_stops_at_the_overall_limit(server, data_dir):
    server.routes["/manifest.json"] = static(manifest(sha=None), content_type="application/json")
    server.routes["/files/hasil_2024.csv"] = lambda req: Reply(200, BODY, chunk_delay=0.3)
    with pytest.raises(ReleaseSourceError, match="longer than"):
        fetch(server, data_dir, http_cfg(server, max_seconds=0.5))
    assert list(data_dir.archive.iterdir()) == []


def test_a_year_listed_twice_keeps_the_newest_version(server):
    package = {"success": True, "result": {"resources": [
        {"name": "Hasil 2024 (revisi)", "format": "CSV", "url": "/b.csv", "last_modified": "2025-03-01T00:00:00"},
        {"name": "Hasil 2024", "format": "CSV", "url": "/a.csv", "last_modified": "2025-01-01T00:00:00"},
    ]}}
    server.routes["/api/3/action/package_show"] = static(json.dumps(package).encode())
    (entry,) = list_releases(SourceConfig(kind="ckan", location=server.url, package_id="p", retries=0))
    assert entry.url.endswith("/b.csv")

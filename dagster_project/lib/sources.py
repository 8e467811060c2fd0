"""Where official releases come from, and how they are fetched with ``requests``.

Three kinds of release source (README, "Release sources"): the bundled folder ``data/releases/`` with its
``manifest.json``, an HTTP manifest (the same JSON at a URL), or a CKAN portal (``package_show`` and its
resources). Every download is bounded in time and size, retried with backoff on connection errors and
5xx, conditional (ETag / Last-Modified), restricted to configured hosts (redirects included), checked
against the manifest's sha256, and archived by hash before anyone parses it. A failed or partial
download leaves nothing behind but its error.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from dagster_project.lib.archive import archive_path, write_atomically
from dagster_project.paths import BUNDLED_RELEASES_DIR

SOURCE_KINDS = ("local", "http", "ckan")
# What a release is evidence of: the decree's results (official), or results quoted by news, regional and
# ministry pages (secondary). Each tier has one release per year; lib/datasets.py maps a tier to its dataset.
RELEASE_TIERS = ("official", "secondary")
RELEASE_FORMATS = frozenset({"csv"})
MAX_REDIRECTS = 5
CHUNK = 64 * 1024


class ReleaseSourceError(RuntimeError):
    """A release could not be listed or fetched; nothing was loaded."""


@dataclass(frozen=True)
class SourceConfig:
    kind: str = "local"
    location: str = ""  # folder (local), manifest URL (http) or portal base URL (ckan)
    package_id: str = ""  # CKAN dataset id or name
    allowed_hosts: tuple[str, ...] = ()  # empty: the location's own host only
    timeout_seconds: float = 30.0  # per connect and per read
    max_seconds: float = 300.0  # a whole download, however slowly the bytes trickle
    max_bytes: int = 20 * 1024 * 1024
    retries: int = 3
    backoff_seconds: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ReleaseSourceError(f"release source kind {self.kind!r} is not one of {SOURCE_KINDS}")
        if self.kind != "local" and urlparse(self.location).scheme not in ("http", "https"):
            raise ReleaseSourceError(f"{self.kind} release source needs an http(s) URL, got {self.location!r}")
        if self.kind == "ckan" and not self.package_id:
            raise ReleaseSourceError("ckan release source needs a package_id")

    @property
    def hosts(self) -> frozenset[str]:
        own = {urlparse(self.location).hostname} if self.kind != "local" else set()
        return frozenset({h.lower() for h in self.allowed_hosts} | {h for h in own if h})


def source_config_from_env(env: Mapping[str, str] | None = None) -> SourceConfig:
    """Release source settings from SPBE_RELEASE_* variables; the default is the bundled folder."""
    env = os.environ if env is None else env
    defaults = SourceConfig(location=str(BUNDLED_RELEASES_DIR))
    return SourceConfig(
        kind=env.get("SPBE_RELEASE_SOURCE_KIND", defaults.kind),
        location=env.get("SPBE_RELEASE_SOURCE", defaults.location),
        package_id=env.get("SPBE_RELEASE_CKAN_PACKAGE", defaults.package_id),
        allowed_hosts=tuple(h.strip() for h in env.get("SPBE_RELEASE_ALLOWED_HOSTS", "").split(",") if h.strip()),
        timeout_seconds=float(env.get("SPBE_RELEASE_TIMEOUT_SECONDS", defaults.timeout_seconds)),
        max_seconds=float(env.get("SPBE_RELEASE_MAX_SECONDS", defaults.max_seconds)),
        max_bytes=int(env.get("SPBE_RELEASE_MAX_BYTES", defaults.max_bytes)),
        retries=int(env.get("SPBE_RELEASE_RETRIES", defaults.retries)),
        backoff_seconds=float(env.get("SPBE_RELEASE_BACKOFF_SECONDS", defaults.backoff_seconds)),
    )


@dataclass(frozen=True)
class ReleaseEntry:
    year: int
    url: str  # absolute URL, or a file name inside the local folder
    format: str = "csv"
    sha256: str | None = None
    title: str | None = None
    version: str | None = None  # CKAN last_modified / hash: changes when the resource changes
    tier: str = "official"  # one of RELEASE_TIERS
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> str:
        """The release's place in the source, one per tier and year: "2024", "secondary-2021"."""
        return str(self.year) if self.tier == "official" else f"{self.tier}-{self.year}"

    @property
    def fingerprint(self) -> str:
        """What identifies this content without downloading it: a changed fingerprint is a new release."""
        return self.sha256 or self.version or self.url


@dataclass(frozen=True)
class FetchedRelease:
    entry: ReleaseEntry
    sha256: str
    path: Path  # in the download folder: a download, a copy of a local file, or a link to the archived copy
    size: int
    not_modified: bool  # True when the server answered 304 and the archived copy was used


def make_session(cfg: SourceConfig) -> requests.Session:
    """A session that retries connection errors and 5xx with exponential backoff (urllib3 Retry)."""
    retry = Retry(total=cfg.retries, connect=cfg.retries, read=cfg.retries, status=cfg.retries,
                  status_forcelist=(500, 502, 503, 504), allowed_methods=frozenset({"GET"}),
                  backoff_factor=cfg.backoff_seconds, redirect=False, raise_on_status=False,
                  respect_retry_after_header=False)
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "spbe-monitor/0.1 (+release fetcher)"
    return session


# ---------------------------------------------------------------- listing


def list_releases(cfg: SourceConfig, session: requests.Session | None = None) -> list[ReleaseEntry]:
    """The releases the source offers now, one per tier and year (the newest entry wins when one repeats)."""
    if cfg.kind == "local":
        entries = _manifest_entries(_read_local_manifest(cfg), base=None)
    elif cfg.kind == "http":
        body = _get_bounded(session or make_session(cfg), cfg, cfg.location, headers={})[1]
        entries = _manifest_entries(_parse_json(body, cfg.location), base=cfg.location)
    else:
        entries = _ckan_entries(cfg, session or make_session(cfg))
    by_key: dict[tuple[str, int], ReleaseEntry] = {}
    for e in entries:  # a year listed twice: the newer version (CKAN last_modified) wins, else the later entry
        kept = by_key.get((e.tier, e.year))
        if kept is None or (e.version or "") >= (kept.version or ""):
            by_key[(e.tier, e.year)] = e
    return [by_key[k] for k in sorted(by_key, key=lambda k: (RELEASE_TIERS.index(k[0]), k[1]))]


def _read_local_manifest(cfg: SourceConfig) -> Any:
    path = Path(cfg.location) / "manifest.json"
    if not path.is_file():
        raise ReleaseSourceError(f"{path}: release manifest not found")
    if path.stat().st_size > cfg.max_bytes:
        raise ReleaseSourceError(f"{path}: manifest larger than {cfg.max_bytes} bytes")
    return _parse_json(path.read_bytes(), str(path))


def _parse_json(body: bytes, where: str) -> Any:
    try:
        return json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ReleaseSourceError(f"{where}: not valid JSON ({e})") from e


def _manifest_entries(doc: Any, base: str | None) -> list[ReleaseEntry]:
    releases = doc.get("releases") if isinstance(doc, dict) else doc
    if not isinstance(releases, list):
        raise ReleaseSourceError("release manifest: expected a list of releases or {'releases': [...]}")
    out = []
    for i, r in enumerate(releases):
        if not isinstance(r, dict) or "year" not in r or "url" not in r:
            raise ReleaseSourceError(f"release manifest entry {i}: needs 'year' and 'url'")
        out.append(ReleaseEntry(
            year=_year(r["year"], f"release manifest entry {i}"),
            url=urljoin(base, str(r["url"])) if base else str(r["url"]),
            format=_format(r.get("format", "csv"), f"release manifest entry {i}"),
            sha256=_sha256_or_none(r.get("sha256"), f"release manifest entry {i}"),
            title=r.get("title") if isinstance(r.get("title"), str) else None,
            tier=_tier(r.get("tier", "official"), f"release manifest entry {i}"),
            extra={k: v for k, v in r.items() if k in ("decree", "source") and isinstance(v, str)},
        ))
    return out


def _ckan_entries(cfg: SourceConfig, session: requests.Session) -> list[ReleaseEntry]:
    url = urljoin(cfg.location.rstrip("/") + "/", "api/3/action/package_show")
    resp, body = _get_bounded(session, cfg, url, headers={}, params={"id": cfg.package_id})
    doc = _parse_json(body, url)
    if not isinstance(doc, dict) or doc.get("success") is not True or not isinstance(doc.get("result"), dict):
        raise ReleaseSourceError(f"{url}: CKAN package_show did not succeed")
    resources = doc["result"].get("resources")
    if not isinstance(resources, list):
        raise ReleaseSourceError(f"{url}: CKAN package has no resources list")
    out = []
    for i, r in enumerate(resources):
        if not isinstance(r, dict) or str(r.get("format", "")).lower() not in RELEASE_FORMATS:
            continue
        where = f"CKAN resource {i}"
        year = r.get("year") or _year_in(str(r.get("name", ""))) or _year_in(str(r.get("url", "")))
        if not year or not isinstance(r.get("url"), str):
            raise ReleaseSourceError(f"{where}: needs a url and a year (a 'year' field or a year in its name)")
        digest = str(r.get("hash") or "").removeprefix("sha256:")
        out.append(ReleaseEntry(
            year=_year(year, where), url=urljoin(url, r["url"]), format="csv",
            sha256=digest.lower() if re.fullmatch(r"[0-9a-fA-F]{64}", digest) else None,
            title=r.get("name") if isinstance(r.get("name"), str) else None,
            version=str(r.get("last_modified") or r.get("metadata_modified") or "") or None,
            tier=_tier(r.get("tier") or "official", where),
        ))
    return out


def _year(value: Any, where: str) -> int:
    try:
        year = int(str(value))
    except ValueError as e:
        raise ReleaseSourceError(f"{where}: year {value!r} is not a number") from e
    if not 2000 <= year <= 2100:
        raise ReleaseSourceError(f"{where}: year {year} is out of range")
    return year


def _year_in(text: str) -> int | None:
    m = re.search(r"(?<!\d)(20\d\d)(?!\d)", text)
    return int(m.group(1)) if m else None


def _tier(value: Any, where: str) -> str:
    if value not in RELEASE_TIERS:
        raise ReleaseSourceError(f"{where}: tier {value!r} is not one of {list(RELEASE_TIERS)}")
    return value


def _format(value: Any, where: str) -> str:
    fmt = str(value).lower()
    if fmt not in RELEASE_FORMATS:
        raise ReleaseSourceError(f"{where}: format {value!r} is not one of {sorted(RELEASE_FORMATS)}")
    return fmt


def _sha256_or_none(value: Any, where: str) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise ReleaseSourceError(f"{where}: sha256 {value!r} is not a hex digest")
    return value.lower()


# ---------------------------------------------------------------- fetching


def fetch_release(cfg: SourceConfig, entry: ReleaseEntry, archive_dir: Path, cache_path: Path,
                  download_dir: Path, session: requests.Session | None = None) -> FetchedRelease:
    """Get one release, verified, into ``download_dir`` (a private folder the caller removes): a download, a
    copy of a local source's file, or, when the server answers 304, a second name of the archived copy (so
    that evicting that copy meanwhile loses nothing). Landing archives it."""
    download_dir.mkdir(parents=True, exist_ok=True)
    if cfg.kind == "local":
        return _fetch_local(cfg, entry, download_dir)
    return _fetch_http(cfg, entry, archive_dir, cache_path, download_dir, session or make_session(cfg))


def _fetch_local(cfg: SourceConfig, entry: ReleaseEntry, download_dir: Path) -> FetchedRelease:
    """The file copied and hashed in one read: what is verified is what lands, even if the file is
    rewritten meanwhile."""
    folder = Path(cfg.location).resolve()
    path = (folder / entry.url).resolve()
    if not path.is_relative_to(folder) or not path.is_file():
        raise ReleaseSourceError(f"release {entry.year}: {entry.url!r} is not a file inside {folder}")
    target = download_dir / f"local.{entry.format}"
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as source, open(target, "wb") as sink:
        for chunk in iter(lambda: source.read(CHUNK), b""):
            size += len(chunk)
            if size > cfg.max_bytes:
                raise ReleaseSourceError(f"release {entry.year}: {path.name} is over {cfg.max_bytes} bytes")
            digest.update(chunk)
            sink.write(chunk)
    _check_sha256(entry, digest.hexdigest())
    return FetchedRelease(entry, digest.hexdigest(), target, size, not_modified=False)


def _fetch_http(cfg: SourceConfig, entry: ReleaseEntry, archive_dir: Path, cache_path: Path, download_dir: Path,
                session: requests.Session) -> FetchedRelease:
    cache = _load_cache(cache_path)
    cached = cache.get(entry.url)
    if cached and entry.sha256 and cached.get("sha256") != entry.sha256:
        cached = None  # the manifest names other content: a 304 must not hand back the old copy
    headers = {}
    if cached and archive_path(archive_dir, cached["sha256"], entry.format).exists():
        if cached.get("etag"):
            headers["If-None-Match"] = cached["etag"]
        if cached.get("last_modified"):
            headers["If-Modified-Since"] = cached["last_modified"]

    fd, tmp_name = tempfile.mkstemp(dir=download_dir, prefix="download.", suffix=f".{entry.format}")
    target = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as sink:
            resp, digest, size = _download(session, cfg, entry.url, headers, sink)
        if resp.status_code == 304:
            target.unlink()
            if not cached:
                raise ReleaseSourceError(f"release {entry.year}: 304 Not Modified without a cached copy")
            _check_sha256(entry, cached["sha256"])
            kept = download_dir / f"not_modified.{entry.format}"
            os.link(archive_path(archive_dir, cached["sha256"], entry.format), kept)  # same file system
            return FetchedRelease(entry, cached["sha256"], kept, kept.stat().st_size, not_modified=True)
        _check_sha256(entry, digest)
    except BaseException:
        target.unlink(missing_ok=True)
        raise

    cache[entry.url] = {"sha256": digest, "etag": resp.headers.get("ETag"),
                        "last_modified": resp.headers.get("Last-Modified")}
    write_atomically(cache_path, json.dumps(cache, indent=2, sort_keys=True).encode())
    return FetchedRelease(entry, digest, target, size, not_modified=False)


def _check_sha256(entry: ReleaseEntry, digest: str) -> None:
    if entry.sha256 and entry.sha256 != digest:
        raise ReleaseSourceError(
            f"release {entry.year}: sha256 mismatch for {entry.url} (manifest {entry.sha256}, received {digest})")


def _load_cache(path: Path) -> dict[str, dict[str, Any]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return doc if isinstance(doc, dict) else {}
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _check_host(cfg: SourceConfig, url: str) -> None:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or (parsed.hostname or "").lower() not in cfg.hosts:
        raise ReleaseSourceError(f"{url}: host is not a configured release host {sorted(cfg.hosts)}")


def _open(session: requests.Session, cfg: SourceConfig, url: str, headers: dict[str, str],
          params: dict[str, str] | None = None) -> requests.Response:
    """GET with redirects followed by hand, so that every hop is checked against the allowed hosts."""
    for _ in range(MAX_REDIRECTS + 1):
        _check_host(cfg, url)
        try:
            resp = session.get(url, headers=headers, params=params, timeout=cfg.timeout_seconds,
                               stream=True, allow_redirects=False)
        except requests.RequestException as e:
            raise ReleaseSourceError(
                f"{url}: request failed after {cfg.retries} retries ({e.__class__.__name__}: {e})") from e
        if resp.is_redirect and "Location" in resp.headers:
            url, params = urljoin(url, resp.headers["Location"]), None
            resp.close()
            continue
        if resp.status_code == 304 or 200 <= resp.status_code < 300:
            return resp
        resp.close()
        raise ReleaseSourceError(f"{url}: HTTP {resp.status_code} {resp.reason}")
    raise ReleaseSourceError(f"{url}: more than {MAX_REDIRECTS} redirects")


def _past(deadline: float, cfg: SourceConfig, url: str) -> None:
    if time.monotonic() > deadline:
        raise ReleaseSourceError(f"{url}: took longer than {cfg.max_seconds:.0f} s in all")


def _download(session, cfg, url, headers, sink) -> tuple[requests.Response, str, int]:
    deadline = time.monotonic() + cfg.max_seconds
    resp = _open(session, cfg, url, headers)
    digest, size = hashlib.sha256(), 0
    with resp:
        if resp.status_code == 304:
            return resp, "", 0
        declared = resp.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > cfg.max_bytes:
            raise ReleaseSourceError(f"{url}: {declared} bytes declared, over the limit of {cfg.max_bytes}")
        try:
            for chunk in resp.iter_content(CHUNK):
                _past(deadline, cfg, url)
                size += len(chunk)
                if size > cfg.max_bytes:
                    raise ReleaseSourceError(f"{url}: body exceeds the limit of {cfg.max_bytes} bytes")
                digest.update(chunk)
                sink.write(chunk)
        except requests.RequestException as e:
            raise ReleaseSourceError(f"{url}: download interrupted after {size} bytes ({e.__class__.__name__})") from e
        sink.flush()
        os.fsync(sink.fileno())
    return resp, digest.hexdigest(), size


def _get_bounded(session, cfg, url, headers, params=None) -> tuple[requests.Response, bytes]:
    """A small bounded GET for manifests and CKAN API answers."""
    deadline = time.monotonic() + cfg.max_seconds
    resp = _open(session, cfg, url, headers, params)
    body = bytearray()
    with resp:
        try:
            for chunk in resp.iter_content(CHUNK):
                _past(deadline, cfg, url)
                body += chunk
                if len(body) > cfg.max_bytes:
                    raise ReleaseSourceError(f"{url}: answer exceeds the limit of {cfg.max_bytes} bytes")
        except requests.RequestException as e:
            raise ReleaseSourceError(f"{url}: download interrupted ({e.__class__.__name__})") from e
    return resp, bytes(body)

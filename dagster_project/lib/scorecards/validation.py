"""The GX validation results as a page: every landed file's verdict from the ingest log, and for each file with
failed expectations the rules, counts and sample rows from its JSON report. data/reports/validation.html."""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path

from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup

from dagster_project.lib.archive import utc_now, write_atomically
from dagster_project.lib.ingest import report_file
from dagster_project.lib.ingest_log import read_lines
from dagster_project.lib.scorecards import inline
from dagster_project.paths import DataPaths

HERE = Path(__file__).parent
MAX_LISTED = 1000  # files with failures listed in full; the summary counts every file


def _report(paths: DataPaths, entry: dict) -> dict | None:
    sha = entry["sha256"]
    ext = Path(entry.get("original_name") or "").suffix.lstrip(".").lower()
    for candidate in (paths.quarantine / f"{sha}.report.json", report_file(paths, sha, ext), report_file(paths, sha)):
        try:
            return json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    return None


def _json_text(value) -> Markup:
    """Rows as JSON in HTML text: escaped for HTML (Jinja's tojson escapes for a <script>, and the page would show
    a name's "<" as \\u003c)."""
    return Markup(html.escape(json.dumps(value, sort_keys=True, ensure_ascii=False, default=str), quote=False))


def render_validation(paths: DataPaths) -> tuple[Path, dict[str, int]]:
    log = read_lines(paths.ingest_log)
    counts = Counter((e.get("dataset"), e.get("status")) for e in log)
    flagged = [e for e in log
               if e.get("status") in ("quarantined", "rejected") or "warning:" in (e.get("reason") or "")]
    listed = []
    for entry in reversed(flagged[-MAX_LISTED:]):  # newest first
        report = _report(paths, entry) or {}
        listed.append({**entry, "failed": report.get("failed", []), "evaluated": report.get("evaluated")})
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)
    env.filters["json_text"] = _json_text
    html = env.get_template("validation.html").render(
        generated_at=utc_now(), css=inline((HERE / "assets" / "report.css").read_text(encoding="utf-8"), "style"),
        summary=[{"dataset": d, "status": s, "files": n} for (d, s), n in sorted(counts.items(), key=str)],
        n_files=len(log), n_flagged=len(flagged), listed=listed, max_listed=MAX_LISTED)
    target = paths.reports / "validation.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(target, html.encode("utf-8"))
    return target, {"files": len(log), "flagged": len(flagged),
                    "quarantined": sum(n for (_, s), n in counts.items() if s == "quarantined")}

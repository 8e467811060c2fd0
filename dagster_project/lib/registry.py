"""The institution registry: stable ids, and the names each institution was published under.

Regional governments are identified by their Kemendagri code; central institutions by a slug id in
``institutions.csv``, with every published name variant in ``institution_aliases.csv``.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from dagster_project.paths import REFERENCE_DIR


def normalize_name(name: str) -> str:
    """Case-, space- and punctuation-insensitive form used to match published names."""
    return re.sub(r"[^0-9a-z]+", " ", name.casefold()).strip()


@dataclass(frozen=True)
class Registry:
    ids: frozenset[str]
    kemendagri_codes: frozenset[str]
    alias_to_id: dict[str, str]

    def resolve_code(self, code: str | None) -> str | None:
        """A submission's institution_code: a Kemendagri code or a central institution's registry id."""
        code = (code or "").strip()
        return code if code in self.ids else None

    def match(self, name: str | None, kemendagri_code: str | None) -> str | None:
        """The institution id of a published row: by Kemendagri code when it has one, else by name."""
        code = (kemendagri_code or "").strip()
        if code:
            return code if code in self.kemendagri_codes else None
        return self.alias_to_id.get(normalize_name(name or ""))


def load_registry(reference_dir: Path | None = None) -> Registry:
    ref = reference_dir or REFERENCE_DIR
    with open(ref / "institutions.csv", newline="", encoding="utf-8") as f:
        institutions = list(csv.DictReader(f))
    with open(ref / "institution_aliases.csv", newline="", encoding="utf-8") as f:
        aliases = list(csv.DictReader(f))
    alias_to_id = {normalize_name(r["name"]): r["institution_id"]
                   for r in institutions if r["government_level"] == "pusat"}
    alias_to_id.update({normalize_name(a["alias"]): a["institution_id"] for a in aliases})
    return Registry(
        ids=frozenset(r["institution_id"] for r in institutions),
        kemendagri_codes=frozenset(r["kemendagri_code"] for r in institutions if r["kemendagri_code"]),
        alias_to_id=alias_to_id,
    )

"""The institution registry: stable ids, and the names each institution was published under.

Regional governments are identified by their Kemendagri code; central institutions by a slug id in
``institutions.csv``, with every published name variant in ``institution_aliases.csv``.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from dagster_project.paths import REFERENCE_DIR


def normalize_name(name: str) -> str:
    """Case-, space- and punctuation-insensitive form used to match published names."""
    return re.sub(r"[^0-9a-z]+", " ", name.casefold()).strip()


# Words news pages and regional sites write for the words the registry spells out. Whole words only.
QUOTED_WORDS = {
    "kab": "kabupaten", "pemkab": "kabupaten", "pemerintah kabupaten": "kabupaten",
    "pemkot": "kota", "pemerintah kota": "kota",
    "prov": "provinsi", "pemprov": "provinsi", "pemerintah provinsi": "provinsi",
    "dki": "daerah khusus ibukota", "diy": "daerah istimewa yogyakarta",
}
_QUOTED = re.compile(r"\b(" + "|".join(sorted(map(re.escape, QUOTED_WORDS), key=len, reverse=True)) + r")\b")


def normalize_quoted_name(name: str) -> str:
    """A name as a secondary source writes it, in the registry's words: a trailing abbreviation in brackets
    dropped ("Badan Pusat Statistik (BPS)"), then case, spaces and punctuation as in ``normalize_name``, and
    the short forms of QUOTED_WORDS spelled out ("Pemkab Sumedang", "Kab. Sumedang" -> "kabupaten sumedang";
    "Provinsi DKI Jakarta" -> "provinsi daerah khusus ibukota jakarta")."""
    plain = normalize_name(re.sub(r"\s*\([^()]*\)\s*$", "", name))
    return _QUOTED.sub(lambda m: QUOTED_WORDS[m.group(1)], plain)


@dataclass(frozen=True)
class Registry:
    ids: frozenset[str]
    kemendagri_codes: frozenset[str]
    alias_to_id: dict[str, str]
    # Every institution's name and alias, central and regional, as normalize_quoted_name writes it; a name two
    # institutions share maps to None (never guessed).
    quoted_to_id: dict[str, str | None] = field(default_factory=dict)

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

    def match_quoted(self, name: str | None, institution_id: str | None = None) -> tuple[str | None, str]:
        """The institution a secondary source names: (id, how) where how is ``id`` (the row gave a registry
        id), ``name`` (its name or a registry alias, normalised), or why nothing matched."""
        given = (institution_id or "").strip()
        if given:
            return (given, "id") if given in self.ids else (None, f"unknown registry id {given!r}")
        key = normalize_quoted_name(name or "")
        if not key:
            return None, "no institution name"
        if key not in self.quoted_to_id:
            return None, "name not in the registry or its aliases"
        found = self.quoted_to_id[key]
        return (found, "name") if found else (None, "name shared by several institutions")


def load_registry(reference_dir: Path | None = None) -> Registry:
    ref = reference_dir or REFERENCE_DIR
    with open(ref / "institutions.csv", newline="", encoding="utf-8") as f:
        institutions = list(csv.DictReader(f))
    with open(ref / "institution_aliases.csv", newline="", encoding="utf-8") as f:
        aliases = list(csv.DictReader(f))
    alias_to_id = {normalize_name(r["name"]): r["institution_id"]
                   for r in institutions if r["government_level"] == "pusat"}
    alias_to_id.update({normalize_name(a["alias"]): a["institution_id"] for a in aliases})
    quoted: dict[str, str | None] = {}
    for key, institution_id in [*((normalize_quoted_name(r["name"]), r["institution_id"]) for r in institutions),
                                *((normalize_quoted_name(a["alias"]), a["institution_id"]) for a in aliases)]:
        quoted[key] = institution_id if quoted.get(key, institution_id) == institution_id else None
    return Registry(
        ids=frozenset(r["institution_id"] for r in institutions),
        kemendagri_codes=frozenset(r["kemendagri_code"] for r in institutions if r["kemendagri_code"]),
        alias_to_id=alias_to_id,
        quoted_to_id=quoted,
    )

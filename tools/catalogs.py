"""Extract every message id from the code and templates and compare with the catalogs.

``python -m tools.catalogs`` prints what is missing or unused; ``--update`` adds missing ids
(empty, for a translator) and drops unused ones; ``--add ID ZH EN`` sets one id's texts.
``tests/unit/test_catalogs.py`` runs the same comparison in CI, so no id is missing from a
catalog and none is left unused.

Babel's extractors find calls with a literal first argument: ``t``/``say``/``translate``/
``_`` for page and command text, the service error classes for error sentences. Keys used
through a variable count as used when they appear as a literal anywhere (``("auto.group",
…)``) or when the code builds them from a literal prefix (``'status.' ~ code``,
``f"role.{role}"``).
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract
from babel.messages.pofile import read_po, write_po

from qunyun.i18n import LANGUAGES, locale_of, po_path

SRC = Path(__file__).resolve().parents[1] / "src" / "qunyun"
TEXT_CALLS = ("say", "translate", "_", "gettext", "fill", "N_", "Phrase", "saying")
TEMPLATE_CALLS = ("t", "_", "gettext")  # ``t`` is also a loop variable in Python code
ERROR_CALLS = ("ServiceError", "InvalidInput", "NotFound", "Conflict", "AccessDenied",
               "TooManyAttempts", "Refused", "InvalidValue", "SegmentError", "SettingsError",
               "ContentError", "FissionError", "LifecycleError", "PlanError")
KEY = re.compile(r"""["']([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)["']""")
PREFIX = re.compile(r"""(?:f["']([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*\.)\{"""
                    r"""|["']([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*\.)["']\s*[~+])""")
# a Term's family: its codes are read as ``{family}.{code}`` (i18n.Term)
TERM = re.compile(r"""\bTerm\(\s*["']([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*)["']""")
SLOT = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)[^{}]*\}")


def is_key(msgid: str) -> bool:
    """A page/command key (``nav.dashboard``) rather than an English sentence."""
    return KEY.fullmatch(f'"{msgid}"') is not None


@dataclass
class Found:
    ids: dict[str, str] = field(default_factory=dict)  # id → where it was first seen
    mentioned: set[str] = field(default_factory=set)
    prefixes: set[str] = field(default_factory=set)

    def used(self, msgid: str) -> bool:
        return (msgid in self.ids or msgid in self.mentioned
                or any(msgid.startswith(p) for p in self.prefixes))


def _files() -> list[tuple[Path, str]]:
    py = [(p, "python") for p in sorted(SRC.rglob("*.py"))]
    html = [(p, "jinja2.ext:babel_extract") for p in sorted((SRC / "web/templates").glob("*"))]
    return py + html


def scan() -> Found:
    found = Found()
    in_python = {name: None for name in (*TEXT_CALLS, *ERROR_CALLS)}
    in_templates = {name: None for name in TEMPLATE_CALLS}
    for path, method in _files():
        keywords = in_python if method == "python" else in_templates
        text = path.read_text(encoding="utf-8")
        found.mentioned.update(KEY.findall(text))
        found.prefixes.update(a or b for a, b in PREFIX.findall(text))
        found.prefixes.update(f"{family}." for family in TERM.findall(text))
        # Babel warns on stderr about f-strings: those build keys from a prefix, counted above
        with path.open("rb") as f, contextlib.redirect_stderr(io.StringIO()):
            for lineno, message, _comments, _context in extract(
                    method, f, keywords=keywords, options={"extensions": "jinja2.ext.i18n"}):
                msgid = message if isinstance(message, str) else message[0]
                if msgid:
                    found.ids.setdefault(msgid, f"{path.relative_to(SRC)}:{lineno}")
    return found


def load(language: str) -> Catalog:
    with po_path(language).open("rb") as f:
        return read_po(f, locale=locale_of(language))


def problems(found: Found | None = None) -> list[str]:
    """Every way the catalogs and the code disagree, one line each."""
    found = found or scan()
    out: list[str] = []
    catalogs = {lang: load(lang) for lang in LANGUAGES}
    for lang, cat in catalogs.items():
        texts = {m.id: m.string for m in cat if m.id}
        for msgid, where in sorted(found.ids.items()):
            if msgid not in texts:
                out.append(f"{lang}: missing {msgid!r} (used at {where})")
            elif not texts[msgid] and (is_key(msgid) or lang != "en"):
                out.append(f"{lang}: untranslated {msgid!r}")
        for msgid, text in texts.items():
            if not found.used(msgid):
                out.append(f"{lang}: unused {msgid!r}")
            slots, wanted = set(SLOT.findall(text or "")), set(SLOT.findall(msgid))
            if not is_key(msgid) and not slots <= wanted:
                out.append(f"{lang}: {msgid!r} translated with slots {sorted(slots - wanted)} "
                           "the code does not fill")
    ids = [{m.id for m in c if m.id} for c in catalogs.values()]
    for extra in sorted(ids[0] ^ ids[1]):
        out.append(f"the catalogs differ on {extra!r}")
    return out


def update() -> None:
    """Add missing ids (empty texts) and drop unused ones, in every catalog."""
    found = scan()
    for lang in LANGUAGES:
        cat = load(lang)
        for msgid in [m.id for m in cat if m.id and not found.used(str(m.id))]:
            del cat[msgid]
        for msgid in found.ids:
            if msgid not in cat:
                cat.add(msgid, "")
        with po_path(lang).open("wb") as f:
            write_po(f, cat, width=0, no_location=True, omit_header=False)


def add(msgid: str, texts: dict[str, str]) -> None:
    """Put ``msgid`` with its text per language into the catalogs (replacing old texts)."""
    for lang in LANGUAGES:
        cat = load(lang)
        cat.delete(msgid)
        cat.add(msgid, texts.get(lang, ""))
        with po_path(lang).open("wb") as f:
            write_po(f, cat, width=0, no_location=True, omit_header=False)


def main() -> int:
    if "--add" in sys.argv:  # --add ID ZH EN
        i = sys.argv.index("--add")
        msgid, zh, en = sys.argv[i + 1:i + 4]
        add(msgid, {"zh-CN": zh, "en": en})
    if "--update" in sys.argv:
        update()
    out = problems()
    print("\n".join(out) or "catalogs match the code")
    return 1 if out else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What people read, in the team's language: message catalogs and translatable errors.

The catalogs are gettext ``.po`` files under ``qunyun/locale`` (zh-CN first, English),
read with Babel once per process. Two kinds of message ids live in them:

- keys such as ``nav.dashboard`` for page and command text, translated in both files;
- English sentences with ``{name}`` slots for errors (``InvalidInput("group {name}: not
  found", name=…)``): the English file may leave them empty (the id is the English text),
  the Chinese file translates them.

``tests/unit/test_catalogs.py`` extracts every id from the code and templates with Babel and
fails when one is missing from a catalog or a catalog holds one nothing uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

LANGUAGES = ("zh-CN", "en")
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"

def N_(msgid: str) -> str:
    """Mark a message id for extraction where it is not passed straight to an error or to
    ``translate`` (the catalog check would otherwise miss it)."""
    return msgid


def locale_of(language: str) -> str:
    """``zh-CN`` → ``zh_CN``: the name of the language's catalog folder."""
    return language.replace("-", "_")


def po_path(language: str) -> Path:
    return LOCALE_DIR / locale_of(language) / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def catalog(language: str) -> dict[str, str]:
    """The language's translations (id → text); empty texts are left out so the id
    (English) stands."""
    from babel.messages.pofile import read_po  # Babel only when text is first needed

    with po_path(language).open("rb") as f:
        po = read_po(f, locale=locale_of(language), domain=DOMAIN)
    return {str(m.id): str(m.string) for m in po if m.id and m.string}


def translate(key: str, language: str) -> str:
    """The text for ``key`` in ``language``; an unknown language reads zh-CN, an unknown
    key reads as itself (an English error sentence is its own English text)."""
    lang = language if language in LANGUAGES else LANGUAGES[0]
    return catalog(lang).get(key, key)


class Term(str):
    """A code inside a message (a status, a kind) that a person reads as a word.

    ``str()`` is the code, so the English sentence reads as before ("decision 3 is already
    overturned"); :func:`fill` puts the catalog's word for ``{family}.{code}`` in its place
    in other languages ("处理记录 3 已是“已撤销”状态")."""

    family: str

    def __new__(cls, family: str, code: str) -> Term:
        term = super().__new__(cls, code)
        term.family = family
        return term

    def in_language(self, language: str) -> str:
        if language == "en":  # the codes are English words already
            return str(self)
        return translate(f"{self.family}.{self}", language)


class Terms(str):
    """Several codes of one family read as a list: ``str()`` is ``a, b`` (the English
    sentence, the API); other languages get their words joined their way (``冷却中、解散中``)."""

    family: str
    codes: tuple[str, ...]

    def __new__(cls, family: str, codes: Iterable[str]) -> Terms:
        kept = tuple(codes)
        terms = super().__new__(cls, ", ".join(kept))
        terms.family, terms.codes = family, kept
        return terms

    def in_language(self, language: str) -> str:
        if language == "en":
            return str(self)
        return "、".join(Term(self.family, c).in_language(language) for c in self.codes)


class Phrase(str):
    """A sentence code makes for people (a broadcast's target: "3 groups"). ``str()`` is the
    English sentence (the API, logs); :meth:`in_language` is the reader's."""

    template: str
    values: dict[str, Any]

    def __new__(cls, template: str, /, **values: Any) -> Phrase:
        phrase = super().__new__(cls, template.format(**values) if values else template)
        phrase.template = template
        phrase.values = values
        return phrase

    def in_language(self, language: str) -> str:
        return fill(self.template, self.values, language)


def saying(template: str, /, **values: Any) -> dict[str, Any]:
    """A sentence to store now and show later in the reader's language (a task's title, a
    health alert): the catalog id and its values, JSON-safe; a value may be words too."""
    return {"say": template, "with": values}


def spoken(stored: Any, language: str) -> str:
    """Stored ``words`` in ``language`` (nested words first); anything else as text, so
    rows written before a sentence was stored as words still read as they were."""
    if isinstance(stored, dict) and isinstance(stored.get("say"), str):
        values = {k: spoken(v, language) if isinstance(v, dict) else v
                  for k, v in (stored.get("with") or {}).items()}
        return fill(stored["say"], values, language)
    return "" if stored is None else str(stored)


def said(value: Any, language: str) -> Any:
    """``value`` in ``language`` when it is a phrase, a term or a translatable error (the
    values inside a message, a target on a page), else as it is."""
    if isinstance(value, Phrase | Term | Terms | Translatable):
        return value.in_language(language)
    return value


def fill(template: str, values: dict[str, Any], language: str) -> str:
    """``template`` translated, its ``{name}`` slots filled from ``values`` (terms in the
    reader's words)."""
    text = translate(template, language)
    if not values:
        return text
    return text.format(**{k: said(v, language) for k, v in values.items()})


def refusal(role: str, permission: str, language: str) -> str:
    """A refusal by role in the reader's words (pages and commands say it alike): the role
    and what it may not do, never their codes."""
    return translate("error.forbidden_as", language).format(
        role=translate(f"role.{role}", language),
        what=translate(f"permission.{permission}", language))


class Translatable(Exception):
    """An error whose message is a catalog template plus values.

    ``str()`` is the English sentence (logs, API ``error`` fields and programs read it);
    :meth:`in_language` is what a person reads on a page or in a terminal."""

    def __init__(self, message: str = "", /, **values: Any) -> None:
        self.template = message
        self.values = values
        super().__init__(message.format(**values) if values else message)

    def in_language(self, language: str) -> str:
        return fill(self.template, self.values, language)


class InvalidValue(Translatable, ValueError):
    """A value a person gave that cannot be used (parsing, checking): a ``ValueError`` the
    callers already catch, whose message is translated like a service error's."""


def money(yuan: float | int | None, language: str) -> str:
    """An amount in yuan as the reader's locale writes it (¥1,234.50 / CN¥1,234.50)."""
    from babel.numbers import format_currency

    return "" if yuan is None else format_currency(yuan, "CNY", locale=locale_of(language))


def number(value: float | int | None, language: str, digits: int = 0) -> str:
    """A number with the locale's grouping, ``digits`` decimals."""
    from babel.numbers import format_decimal

    if value is None:
        return ""
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern, locale=locale_of(language))


def percent(share: float | None, language: str, digits: int = 0) -> str:
    """A share (0.25) as the locale writes a percentage (25%)."""
    from babel.numbers import format_percent

    if share is None:
        return ""
    pattern = "#,##0" + ("." + "0" * digits if digits else "") + "%"
    return format_percent(share, format=pattern, locale=locale_of(language))

"""Text normalisation shared by moderation and FAQ matching.

Spammers write 微信 as 微 信, ｖｘ, 薇.信 or in traditional characters; operators write word
lists in simplified. Normalising first (full-width → half-width with NFKC, traditional →
simplified one character at a time, lower case) lets one list match every spelling. The
character table is read from OpenCC's ``TSCharacters`` (Apache-2.0, via
opencc-python-reimplemented) once, then applied with ``str.translate`` (C speed: the phrase
converter costs ~30 µs a message, the table ~1 µs).
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache, lru_cache
from importlib import resources

# zero-width and joiner characters used to split words past a filter
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
# everything that is not a letter, digit or CJK ideograph, for the compact form
_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


@cache
def _t2s_table() -> dict[int, str]:
    table: dict[int, str] = {}
    text = (resources.files("opencc") / "dictionary" / "TSCharacters.txt").read_text("utf-8")
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 2 and len(parts[0]) == 1:
            target = parts[1].split(" ")[0]
            if len(target) == 1 and target != parts[0]:
                table[ord(parts[0])] = target
    table.update(_INVISIBLE)  # type: ignore[arg-type]
    return table


# The rules of one message normalise its text several times (moderation, the FAQ, its
# words): remembering the last few texts makes that once per message. Kept tiny on purpose,
# so it never stands in for work on other messages.
_RECENT = 8


@lru_cache(maxsize=_RECENT)
def normalize(text: str) -> str:
    """NFKC (full-width → half-width, ① → 1), simplified characters, lower case."""
    return unicodedata.normalize("NFKC", text).translate(_t2s_table()).lower()


def compact(normalized: str) -> str:
    """Drop spaces, punctuation and symbols: ``微 信.号`` → ``微信号``."""
    return _NOT_WORD.sub("", normalized)


@lru_cache(maxsize=_RECENT)
def flat(text: str) -> str:
    """``compact(normalize(text))``: the form word lists and FAQ keys are matched on."""
    return compact(normalize(text))

"""Every destructive or irreversible form asks first (``data-confirm``, handled by
``static/app.js``), with a sentence from the catalogs that names what will happen."""

from __future__ import annotations

import re
from pathlib import Path

import qunyun.web

TEMPLATES = Path(qunyun.web.__file__).parent / "templates"
# deletes, cancellations, settling, blacklisting, merges and their undo, pausing a
# playbook, drawing winners, archiving a script
DESTRUCTIVE = re.compile(r'action="[^"]*(/delete|/cancel|/settle|/blacklist|/unblacklist|'
                         r'/merge|/undo|/playbooks/\{\{ pb\.id \}\}/status|/automation/draws"|'
                         r'/content/scripts/\{\{ s\.id \}\}" class="inline")')


def test_every_destructive_form_asks_first_in_catalog_words() -> None:
    forms = [(path.name, m.group(0)) for path in sorted(TEMPLATES.glob("*.html"))
             for m in re.finditer(r"<form\b[^>]*>", path.read_text(encoding="utf-8"))]
    destructive = [(name, tag) for name, tag in forms if DESTRUCTIVE.search(tag)]
    assert len(destructive) >= 14
    missing = [(name, tag) for name, tag in destructive if "data-confirm=" not in tag]
    assert missing == []
    for _name, tag in destructive:
        assert re.search(r"data-confirm=\"\{\{ t\('confirm\.", tag), tag


def test_one_way_to_ask_first() -> None:
    """No inline ``onsubmit="return confirm('…')"``: a translation with a quote broke it,
    and the page's policy would have to allow inline script for it."""
    inline = [path.name for path in TEMPLATES.glob("*.html")
              if re.search(r"\bon(submit|click)=", path.read_text(encoding="utf-8"))]
    assert inline == []

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

from qunyun.adapters.platforms.exports import formats
from qunyun.adapters.platforms.exports.formats import (
    ExportRow,
    Occurrences,
    detect_format,
    read_memotrace,
)

FIXTURES = Path(formats.__file__).parent / "fixtures"


def test_identical_rows_in_one_second_keep_distinct_keys_and_memory_stays_flat() -> None:
    occ = Occurrences()
    t1, t2 = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert [occ.key(t1, "a"), occ.key(t1, "a"), occ.key(t1, "b")] == [
        "01735689600.a:1", "01735689600.a:2", "01735689600.b:1"]
    assert occ.key(t2, "a") == "01735689601.a:1"
    assert len(occ._seen) == 1  # only the current second is remembered


def test_repeated_lines_in_a_memotrace_file() -> None:
    header = (FIXTURES / "memotrace__group.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    row = "1,9@chatroom,1,0,0,1763640000,2,+1,,,甲,wxid_a"
    text = "\n".join([header, row, row, row.replace("+1", "+2")]) + "\n"
    rows = [r for r in read_memotrace(Path("g_utf8.csv"), io.StringIO(text), None)
            if isinstance(r, ExportRow)]
    assert len({r.key for r in rows}) == 3 and rows[0].chat_name == "g"


def test_detect_every_fixture() -> None:
    expected = {"memotrace": "memotrace", "telegram": "telegram", "chatlog": None,
                "irc": "irc", "pywxdump": "pywxdump", "qq": "qq-txt"}
    for path in FIXTURES.iterdir():
        stem = path.stem.split("__")[0]
        if stem == "snapshot":
            continue
        want = expected[stem] or ("chatlog-json" if path.suffix == ".json" else "chatlog-csv")
        assert detect_format(path) == want, path.name

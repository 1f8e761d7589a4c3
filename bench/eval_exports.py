"""Parse rates of the export importers on the real data in ../shared/data (issue 3).

- WeChat system notices: the wechaty captures (real_system_messages_zh.jsonl) — share parsed
  and share whose names match the expected parse; and every template row of catalog.tsv
  instantiated with sample names.
- IRC: every line of irc_ubuntu/dev/*.raw.txt — share read as a message, action or
  join/leave/nick notice, and the counts of each.

    .venv/bin/python bench/eval_exports.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import io
import json
import re
from collections import Counter
from pathlib import Path

from qunyun.adapters.platforms.exports.formats import (
    IRC_JOIN,
    IRC_LEAVE,
    IRC_NICK,
    RowError,
    read_irc,
)
from qunyun.adapters.platforms.exports.sysmsg import YOU, parse_notice


def wechat(data: Path) -> None:
    path = data / "wechat_system_messages" / "real_system_messages_zh.jsonl"
    records = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x]
    parsed = exact = 0
    for r in records:
        notice = parse_notice(r["content"])
        if notice is None:
            continue
        parsed += 1
        expected = r["expected_event_ts_literal"] or ""
        wanted = [re.sub(r"<[^>]+>", "", w)
                  for w in re.findall(r"'([^']*)'", expected.split("roomId")[0])]
        if "YOU" in expected:
            wanted.append(YOU)
        got = [p.name for p in notice.subjects] + ([notice.actor.name] if notice.actor else [])
        exact += int(not wanted or sorted(wanted) == sorted(got))
    print(f"wechat real notices: {parsed}/{len(records)} parsed, "
          f"{exact}/{len(records)} with the expected names")
    catalog = (data / "wechat_system_messages" / "catalog.tsv").read_text(encoding="utf-8")
    rows = [line.split("\t") for line in catalog.splitlines()[1:] if line.strip()]
    fill = {"inviter": "张三", "invitee": "李四", "m1": "王五", "m2": "赵六", "other": "钱七",
            "sharer": "孙八", "member": "周九", "owner": "吴十", "new_name": "新群名",
            "a": "Ann", "b": "Bob", "nick": "郑一", "A": "甲", "B": "乙", "claimer": "冯二",
            "sender": "陈三", "group": "业主群"}
    tried = ok = 0
    misses = []
    for row in rows:
        category, template = row[0], row[3].split("   ")[0].split("  (")[0].strip()
        if not template or template.startswith(("(", "<", "[", "appmsg")) or \
                category.startswith(("qq:", "transfer", "red_packet:envelope", "invite_card",
                                     "leave:voluntary", "leave:delchatroommember")):
            continue
        text = re.sub(r"\{(\w+)\}", lambda m: fill.get(m[1], m[1]), template)
        text = text.replace("…", "").replace("$revoke$", "").strip()
        tried += 1
        if parse_notice(text) is not None:
            ok += 1
        else:
            misses.append(f"{category}: {text}")
    print(f"wechat catalog templates (plain text, zh+en): {ok}/{tried} parsed")
    for miss in misses:
        print(f"  not parsed: {miss}")


def irc(data: Path) -> None:
    counts: Counter[str] = Counter()
    lines = 0
    for path in sorted((data / "irc_ubuntu" / "dev").glob("*.raw.txt")):
        text = path.read_text(encoding="utf-8", errors="replace")
        lines += sum(1 for line in text.splitlines() if line.strip())
        for row in read_irc(path, io.StringIO(text), "#ubuntu"):
            if isinstance(row, RowError):
                counts["unreadable"] += 1
            elif row.message_type == "system":
                kind = ("join" if IRC_JOIN.match(row.text) else
                        "leave" if IRC_LEAVE.match(row.text) else
                        "nick" if IRC_NICK.match(row.text) else "other notice")
                counts[kind] += 1
            else:
                counts[row.message_type] += 1
    read = lines - counts["unreadable"]
    print(f"irc lines: {read}/{lines} read ({read / lines:.2%}); {dict(counts)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path(__file__).parents[2] / "shared" /
                        "data")
    args = parser.parse_args()
    if not args.data.exists():
        raise SystemExit(f"{args.data} not found: the evaluation data lives beside the project")
    wechat(args.data)
    irc(args.data)


if __name__ == "__main__":
    main()

"""``qunyun entry apply|invite|screenshot``: an application recorded for a group whose gate
then decides it, a member's invitation code that lets a friend through an invitation-only
gate, a screenshot attached to a request — and clear refusals that leave the database as
it was."""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image

from qunyun.adapters.storage.tables import join_requests
from tests.cli.test_cli import count, env, run  # noqa: F401  # the runner and its data dir
from tests.factories import raw_join


def test_apply_invite_and_attach(env: Path, fresh_db_url: str,  # noqa: F811
                                 tmp_path: Path) -> None:
    db = fresh_db_url
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(raw_join("e0", "g1", "u0", name="老会员"),
                                 ensure_ascii=False))
    assert run(db, "ingest", str(events)).exit_code == 0
    groups = json.loads(run(db, "groups", "list", "--json").stdout)
    gid = str(groups[0]["id"])
    set_gate = run(db, "automation", "set", "entry", "gate=invitation", "--group", gid)
    assert set_gate.exit_code == 0, set_gate.output

    code = run(db, "entry", "invite", gid, "--member", "10001", "--account", "demo", "--json")
    assert code.exit_code == 0, code.output
    channel = json.loads(code.stdout)["code"]
    friend = run(db, "entry", "apply", gid, "--user", "u5", "--name", "朋友",
                 "--channel", channel, "--json")
    assert friend.exit_code == 0, friend.output
    assert json.loads(friend.stdout)["status"] == "approved"
    stranger = run(db, "entry", "apply", gid, "--user", "u6", "--name", "路人")
    assert stranger.exit_code == 0 and "已拒绝" in stranger.output

    # a share gate: the applicant sent the screenshot privately, staff attach it
    assert run(db, "automation", "set", "entry", "gate=share", "--group", gid).exit_code == 0
    shared = json.loads(run(db, "entry", "apply", gid, "--user", "u7", "--json").stdout)
    assert shared["status"] == "asked"
    picture = tmp_path / "shot.png"
    buf = io.BytesIO()
    Image.new("RGB", (20, 40), (0, 0, 200)).save(buf, "PNG")
    picture.write_bytes(buf.getvalue())
    attached = run(db, "entry", "screenshot", str(shared["id"]), "--file", str(picture),
                   "--json")
    assert attached.exit_code == 0 and json.loads(attached.stdout)["status"] == "answered"
    assert "已上传分享截图" in run(db, "entry", "show", str(shared["id"])).output

    before = count(db, join_requests)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"GIF89a nope")
    bad = run(db, "entry", "screenshot", str(shared["id"]), "--file", str(broken))
    assert bad.exit_code != 0 and "PNG" in bad.output
    assert run(db, "entry", "apply", gid).exit_code == 2
    assert run(db, "entry", "apply", "99999", "--user", "x").exit_code != 0
    not_in = run(db, "entry", "invite", gid, "--member", "10002", "--account", "demo")
    assert not_in.exit_code != 0 and "不在群" in not_in.output
    assert count(db, join_requests) == before

"""Chat-export import over HTTP: the upload page and POST /api/v1/imports, both databases."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Connection, func, select

from qunyun.adapters.platforms.exports import formats
from qunyun.adapters.storage.tables import audit_log, messages
from qunyun.bootstrap import Runtime
from qunyun.web.app import create_app
from tests.dbhelpers import snapshot
from tests.web.conftest import login

FIXTURES = Path(formats.__file__).parent / "fixtures"
GROUP = (FIXTURES / "memotrace__group.csv").read_bytes()


def test_upload_page_imports_and_reports_in_chinese(client: TestClient, conn: Connection,
                                                    staff: dict[str, str]) -> None:
    token = login(client, staff["operator"])
    page = client.get("/health/import")
    assert page.status_code == 200 and "导入聊天记录" in page.text
    assert 'href="/health/import"' in client.get("/health").text
    r = client.post("/health/import", data={"csrf_token": token, "format": "auto"},
                    files={"file": ("memotrace__group.csv", GROUP, "text/csv")})
    assert r.status_code == 200, r.text
    assert "导入结果" in r.text and 'id="imp-messages">7<' in r.text
    assert 'id="imp-joins">5<' in r.text and "memotrace__group.csv (memotrace)" in r.text
    assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == 7
    who = conn.execute(select(audit_log.c.actor).where(audit_log.c.action == "import.file")
                       ).scalar_one()
    assert who.endswith(staff["operator"])


def test_api_import_is_idempotent_and_names_the_file(client: TestClient, conn: Connection,
                                                     staff: dict[str, str]) -> None:
    headers = {"x-csrf-token": login(client, staff["operator"])}
    first = client.post("/api/v1/imports?name=C:\\exports\\memotrace__group.csv",
                        content=GROUP, headers=headers)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["file"] == "memotrace__group.csv" and body["format"] == "memotrace"
    assert (body["messages"], body["joins"], body["kicks"], body["renames"]) == (7, 5, 1, 1)
    again = client.post("/api/v1/imports?name=memotrace__group.csv", content=GROUP,
                        headers=headers).json()
    assert (again["messages"], again["duplicate_messages"], again["joins"]) == (0, 7, 0)


def test_bad_files_are_refused_with_the_line_and_store_nothing(
        client: TestClient, conn: Connection, staff: dict[str, str]) -> None:
    headers = {"x-csrf-token": login(client, staff["operator"])}
    before = snapshot(conn)
    bad = client.post("/api/v1/imports?name=memotrace__bad_time.csv",
                      content=(FIXTURES / "memotrace__bad_time.csv").read_bytes(),
                      headers=headers)
    assert bad.status_code == 422
    assert bad.json()["error"].startswith("memotrace__bad_time.csv:")
    assert "nothing of this file was imported" in bad.json()["error"]
    for name, content, says in (("", GROUP, "name:"), ("x.csv", b"", "empty"),
                                ("x.csv", GROUP, "format:")):
        query = {"name": name, **({"format": "excel"} if says == "format:" else {})}
        r = client.post("/api/v1/imports", params=query, content=content, headers=headers)
        assert r.status_code == 422 and says in r.json()["error"], (name, r.text)
    assert snapshot(conn) == before


def test_viewers_cannot_import(client: TestClient, conn: Connection,
                               staff: dict[str, str]) -> None:
    headers = {"x-csrf-token": login(client, staff["viewer"])}
    before = snapshot(conn)
    r = client.post("/api/v1/imports?name=memotrace__group.csv", content=GROUP,
                    headers=headers)
    assert r.status_code == 403 and snapshot(conn) == before


def test_the_import_path_has_its_own_size_limit(runtime: Runtime, conn: Connection,
                                                staff: dict[str, str]) -> None:
    """Exports are far larger than forms: 3 MB passes the 2 MB body limit on the import path
    (and is refused as a file, not as a body); past ``max_import_bytes`` it is a 413."""
    big = b"not, an, export\n" * 200_000
    runtime.settings = runtime.settings.model_copy(update={"max_import_bytes": 4_000_000})
    with TestClient(create_app(runtime), follow_redirects=False) as client:
        headers = {"x-csrf-token": login(client, staff["operator"])}
        assert len(big) > runtime.settings.max_body_bytes
        r = client.post("/api/v1/imports?name=big.txt", content=big, headers=headers)
        assert r.status_code == 422 and r.json()["error"].startswith("big.txt:")
        too_big = client.post("/api/v1/imports?name=big.txt", content=big * 2,
                              headers=headers)
        assert too_big.status_code == 413
        elsewhere = client.post("/api/v1/faqs/import", content=big, headers=headers)
        assert elsewhere.status_code == 413
        # a viewer's upload is refused before its body is read: 403, not streamed into a 413
        viewer = TestClient(client.app, follow_redirects=False)
        viewer_headers = {"x-csrf-token": login(viewer, staff["viewer"])}
        refused = viewer.post("/api/v1/imports?name=big.txt",  # chunked: no length declared
                              content=iter([big, big]), headers=viewer_headers)
        assert refused.status_code == 403
        form = (b'--b\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
                + viewer_headers["x-csrf-token"].encode() + b'\r\n--b\r\nContent-Disposition:'
                b' form-data; name="file"; filename="big.txt"\r\n\r\n')
        page = viewer.post("/health/import", content=iter([form, big, big, b"\r\n--b--\r\n"]),
                           headers={"content-type": "multipart/form-data; boundary=b"})
        assert page.status_code == 403
        for name, says in (("a\x00b.csv", "NUL"), ("长" * 90 + ".csv", "255")):
            bad = client.post("/api/v1/imports", params={"name": name},
                              content=iter([big, big]), headers=headers)
            assert bad.status_code == 422 and says in bad.json()["error"], bad.text


def test_an_irc_log_takes_its_day_from_the_request(client: TestClient, conn: Connection,
                                                   staff: dict[str, str]) -> None:
    """An IRC log's lines carry only times: without a day in its name it needs ``date``;
    a day that is not one is a 422 naming the field, and nothing is stored."""
    headers = {"x-csrf-token": login(client, staff["operator"])}
    log = (FIXTURES / "irc__channel.txt").read_bytes()
    before = snapshot(conn)
    for day in ("", "14/03/2025"):
        r = client.post(f"/api/v1/imports?name=channel.txt&date={day}", content=log,
                        headers=headers)
        assert r.status_code == 422 and ("date" in r.json()["error"]), r.text
    assert snapshot(conn) == before
    r = client.post("/api/v1/imports?name=channel.txt&date=2025-03-14", content=log,
                    headers=headers)
    assert r.status_code == 200 and r.json()["messages"] == 3, r.text
    assert conn.execute(select(func.min(messages.c.sent_at))).scalar_one().date().isoformat() \
        == "2025-03-14"

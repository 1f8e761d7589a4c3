"""CRM pages and API: what each role may do, the segment builder's live count, lead exports
with masking, attribute uploads, merges, all over HTTP against real databases."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import audit_log, member_attributes, members
from qunyun.bootstrap import Runtime
from qunyun.services import attributes, users
from qunyun.services.users import SYSTEM
from tests import crm_scenario
from tests.web.conftest import login


def bearer(conn: Connection, username: str) -> dict[str, str]:
    token = users.do_create_api_token(conn, actor=SYSTEM, username=username)
    return {"Authorization": f"Bearer {token}"}


def _seed(conn: Connection, runtime: Runtime, tmp_path: Path) -> dict[str, int]:
    ids = crm_scenario.build(conn, runtime)
    attributes.do_import_attributes(conn, actor=SYSTEM,
                                    path=crm_scenario.sheet_csv(conn, ids, tmp_path / "s.csv"))
    crm_scenario.mark_not_personal(conn)
    return ids


def test_api_segments_leads_and_masking(client: TestClient, staff: dict[str, str],
                                        conn: Connection, runtime: Runtime,
                                        tmp_path: Path) -> None:
    ids = _seed(conn, runtime, tmp_path)
    op, viewer = bearer(conn, staff["operator"]), bearer(conn, staff["viewer"])
    counted = client.post("/api/v1/segments/count", headers=viewer,
                          json={"expression": crm_scenario.SEED_SEGMENT})
    assert counted.status_code == 200 and counted.json()["members"] == 3
    bad = client.post("/api/v1/segments/count", headers=viewer, json={"expression": "tag >"})
    assert bad.status_code == 422 and "segment: column" in bad.json()["error"]
    assert client.post("/api/v1/segments", headers=viewer, json={
        "name": "x", "expression": "has_phone"}).status_code == 403
    made = client.post("/api/v1/segments", headers=op, json={
        "name": "种子分组", "expression": crm_scenario.SEED_SEGMENT})
    assert made.status_code == 201
    seg_id = made.json()["id"]
    assert client.get(f"/api/v1/segments/{seg_id}", headers=viewer).json()["members"] == 3
    members = client.get(f"/api/v1/segments/{seg_id}/members", headers=viewer).json()
    assert {m["id"] for m in members} == {ids["u1"], ids["u2"], ids["u7"]}

    scored = client.post("/api/v1/leads/score", headers=viewer, json={
        "segment_id": seg_id, "formula": crm_scenario.SEED_FORMULA}).json()
    assert [r["member_id"] for r in scored["rows"]] == [ids["u2"], ids["u1"], ids["u7"]]
    assert scored["rows"][1]["phone"] == "138****5678"
    sales = bearer(conn, staff["sales"])
    export = client.post("/api/v1/leads/export", headers=sales, json={
        "segment_id": seg_id, "formula": crm_scenario.SEED_FORMULA, "format": "csv"})
    assert export.status_code == 200 and "attachment" in export.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert table[2][5] == "13812345678"
    assert conn.execute(select(audit_log.c.actor).where(
        audit_log.c.action == "leads.export")).scalars().all() == ["user:sales1"]


def test_api_profile_tags_records_blacklist_merge(client: TestClient, staff: dict[str, str],
                                                  conn: Connection, runtime: Runtime,
                                                  tmp_path: Path) -> None:
    ids = _seed(conn, runtime, tmp_path)
    op, sales = bearer(conn, staff["operator"]), bearer(conn, staff["sales"])
    u1 = ids["u1"]
    assert client.post(f"/api/v1/members/{u1}/tags", headers=op,
                       json={"tag": "意向/高", "reason": "x"}).json() == {"added": True}
    assert client.post(f"/api/v1/members/{u1}/tags", headers=sales,
                       json={"tag": "意向/高"}).status_code == 403
    rec = client.post(f"/api/v1/members/{u1}/records", headers=sales, json={
        "kind": "follow_up", "body": "周五回访", "due_at": "2026-12-01T10:00:00"})
    assert rec.status_code == 201
    assert [f["body"] for f in client.get("/api/v1/follow-ups", headers=sales).json()] == [
        "周五回访"]
    assert client.post(f"/api/v1/members/{ids['u4']}/blacklist", headers=op,
                       json={"reason": "广告"}).status_code == 201
    assert [b["member_id"] for b in client.get("/api/v1/blacklist", headers=op).json()] == [
        ids["u4"]]
    profile = client.get(f"/api/v1/members/{u1}/profile", headers=sales).json()
    assert [t["name"] for t in profile["tags"]] == ["高"]
    assert profile["records"][0]["due_at"].startswith("2026-12-01T02:00")  # Shanghai → UTC
    merged = client.post("/api/v1/members/merge", headers=op, json={
        "source_id": ids["u3"], "target_id": u1, "reason": "同一人"})
    assert merged.status_code == 201
    assert client.post(f"/api/v1/merges/{merged.json()['merge']}/undo",
                       headers=op).status_code == 204
    upload = client.post("/api/v1/members/attributes/import?filename=x.csv", headers=op,
                         content="会员编号,城市\n10001,上海\n".encode())
    assert upload.status_code == 200 and upload.json()["matched"] == 1


def test_pages_for_operator(client: TestClient, staff: dict[str, str], conn: Connection,
                            runtime: Runtime, tmp_path: Path) -> None:
    ids = _seed(conn, runtime, tmp_path)
    token = login(client, staff["operator"])
    for path in ("/members", "/tags", "/segments", "/leads", "/members/suggestions",
                 "/members/blacklist", f"/members/{ids['u1']}"):
        page = client.get(path)
        assert page.status_code == 200, path
    assert "群运" in client.get("/segments").text
    preview = client.post("/segments/preview", data={
        "expression": crm_scenario.SEED_SEGMENT, "csrf_token": token})
    assert 'id="segment-count">3<' in preview.text
    broken = client.post("/segments/preview", data={"expression": "tag >",
                                                    "csrf_token": token})
    assert 'id="segment-error"' in broken.text
    saved = client.post("/segments", data={"name": "种子", "expression":
                                           crm_scenario.SEED_SEGMENT, "csrf_token": token})
    assert saved.status_code == 303
    listed = client.get("/segments").text
    seg_id = listed.split('hx-get="/segments/')[1].split("/count")[0]
    assert 'id="segment-count-' + seg_id + '">3<' in client.get(f"/segments/{seg_id}/count").text
    leads = client.get("/leads", params={"expression": crm_scenario.SEED_SEGMENT,
                                         "formula": crm_scenario.SEED_FORMULA})
    assert 'id="leads-total">3<' in leads.text and "1 * attr.spend" in leads.text
    export = client.post("/leads/export", data={
        "expression": crm_scenario.SEED_SEGMENT, "formula": crm_scenario.SEED_FORMULA,
        "format": "xlsx", "csrf_token": token})
    assert export.status_code == 200 and export.content[:2] == b"PK"
    tagged = client.post(f"/members/{ids['u2']}/tags", data={"tag": "意向/高",
                                                            "csrf_token": token})
    assert tagged.status_code == 303
    assert "意向/高" in client.get(f"/members/{ids['u2']}").text
    upload = client.post("/members/attributes/import", data={"csrf_token": token}, files={
        "file": ("城市.csv", "会员编号,城市\n10001,上海\n99999,北京\n".encode(), "text/csv")})
    assert upload.status_code == 200 and 'id="attributes-report"' in upload.text
    assert conn.execute(select(member_attributes.c.value_text).where(
        member_attributes.c.name == "城市")).scalars().all() == ["上海"]
    no_csrf = client.post(f"/members/{ids['u2']}/blacklist", data={"reason": "x"})
    assert no_csrf.status_code == 403
    # what the suggestions page's merge button posts (it used to land on /members/{id}/merge)
    merged = client.post("/members/suggestions/merge", data={
        "csrf_token": token, "source": str(ids["u6"]), "target": str(ids["u5"])})
    assert merged.status_code == 303 and merged.headers["location"] == "/members/suggestions"
    assert conn.execute(select(members.c.merged_into_id).where(
        members.c.id == ids["u6"])).scalar_one() == ids["u5"]
    assert client.get("/members/99999999999999999999999").status_code == 422


def test_viewer_sees_masked_profile_and_no_forms(client: TestClient, staff: dict[str, str],
                                                 conn: Connection, runtime: Runtime,
                                                 tmp_path: Path) -> None:
    ids = _seed(conn, runtime, tmp_path)
    token = login(client, staff["viewer"])
    page = client.get(f"/members/{ids['u1']}").text
    assert "138****5678" in page and "13812345678" not in page
    assert 'id="tag-form"' not in page and 'id="blacklist-form"' not in page
    refused = client.post(f"/members/{ids['u1']}/tags", data={"tag": "x",
                                                             "csrf_token": token})
    assert refused.status_code == 403


def test_personal_attributes_are_masked_and_not_filterable_for_viewers(
        client: TestClient, staff: dict[str, str], conn: Connection, runtime: Runtime,
        tmp_path: Path) -> None:
    """A spreadsheet with 姓名, 身份证号, 联系电话 and 家庭住址: phone and address fill the
    member's masked fields; the rest are personal attributes — masked for a viewer in the
    profile and the page, refused in segments and formulas (a count over ``~`` would recover
    an ID number digit by digit), clear for sales; an admin marks what is not personal."""
    ids = _seed(conn, runtime, tmp_path)
    number = conn.execute(select(members.c.number).where(members.c.id == ids["u1"])
                          ).scalar_one()
    sheet = tmp_path / "people.csv"
    sheet.write_text(f"会员编号,姓名,身份证号,联系电话,家庭住址,学员邮箱,年级\n"
                     f"{number},王小明,110101200801011234,13900001111,北京市海淀区某路1号,"
                     f"xm@example.com,初二\n", encoding="utf-8")
    report = attributes.do_import_attributes(conn, actor=SYSTEM, path=sheet)
    assert report.matched == 1 and set(report.columns) == {
        "姓名", "身份证号", "phone", "address", "学员邮箱", "年级"}
    viewer, sales = bearer(conn, staff["viewer"]), bearer(conn, staff["sales"])
    seen = {a["name"]: a["value_text"] for a in client.get(
        f"/api/v1/members/{ids['u1']}/profile", headers=viewer).json()["attributes"]}
    assert seen["姓名"] == "王**" and seen["身份证号"] == "110***********1234"
    assert seen["学员邮箱"] == "x***@example.com" and seen["年级"] == "●●●"
    profile = client.get(f"/api/v1/members/{ids['u1']}/profile", headers=viewer).json()
    assert profile["phone"] == "139****1111" and "海淀" not in profile["address"]
    clear = {a["name"]: a["value_text"] for a in client.get(
        f"/api/v1/members/{ids['u1']}/profile", headers=sales).json()["attributes"]}
    assert clear["身份证号"] == "110101200801011234" and clear["姓名"] == "王小明"
    for expression in ('attr.身份证号 ~ "1101"', "attr.身份证号 > 110000000000000000",
                       'not (attr.姓名 = "王小明")'):
        refused = client.post("/api/v1/segments/count", headers=viewer,
                              json={"expression": expression})
        assert refused.status_code == 403 and "personal attribute" in refused.json()["error"]
        assert client.post("/api/v1/segments/count", headers=sales,
                           json={"expression": expression}).status_code == 200
    ranked = client.post("/api/v1/leads/score", headers=viewer, json={
        "expression": "messages >= 0", "formula": "1 * attr.身份证号"})
    assert ranked.status_code == 403
    fields = {f["name"]: f for f in client.get("/api/v1/attributes", headers=viewer).json()}
    assert (fields["身份证号"]["kind"], fields["年级"]["kind"]) == ("id_number", "")
    assert fields["spend"]["personal"] is False and fields["年级"]["personal"] is True
    assert client.patch("/api/v1/attributes/年级", headers=sales,
                        json={"personal": False}).status_code == 403
    admin = bearer(conn, staff["admin"])
    marked = client.patch("/api/v1/attributes/年级", headers=admin, json={"personal": False})
    assert marked.status_code == 200 and marked.json()["personal"] is False
    assert client.patch("/api/v1/attributes/nothing", headers=admin,
                        json={"personal": False}).status_code == 404
    assert client.post("/api/v1/segments/count", headers=viewer, json={
        "expression": 'attr.年级 = "初二"'}).json()["members"] == 1
    # the page a viewer sees: masked values, the privacy tab, no mark buttons
    csrf = login(client, staff["viewer"])
    page = client.get(f"/members/{ids['u1']}").text
    assert "110***********1234" in page and "110101200801011234" not in page
    fields_page = client.get("/members/attributes")
    assert fields_page.status_code == 200 and "证件号" in fields_page.text
    assert "/mark" not in fields_page.text  # no mark buttons for a viewer
    assert client.post("/members/attributes/身份证号/mark",
                       data={"csrf_token": csrf, "personal": "0"}).status_code == 403


def test_the_member_list_shows_groups_tags_and_channel(client: TestClient, conn: Connection,
                                                       runtime: Runtime,
                                                       staff: dict[str, str]) -> None:
    """What an operator scans a member list for, on the page and in the API."""
    from qunyun.services import tags as tags_service
    from qunyun.services.members import member_id_by_number
    from qunyun.services.users import SYSTEM
    from tests.integration.test_join_codes import join

    join(conn, runtime, "j1", "g1", "u1", channel="海报A")
    join(conn, runtime, "j2", "g2", "u1")
    tags_service.do_tag_member(conn, actor=SYSTEM, member_id=member_id_by_number(conn, 10001),
                               tag="意向/高", create=True)
    login(client, staff["viewer"])
    page = client.get("/members").text
    assert "群g1、群g2" in page and "高" in page and "海报A" in page
    listed = client.get("/api/v1/members").json()
    assert listed[0]["groups"] == ["群g1", "群g2"] and listed[0]["tags"] == ["高"]
    assert listed[0]["channel"] == "海报A"

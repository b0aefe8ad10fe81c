"""WeCom and WeChat callback XML → CallbackEvent; safe XML; the full encrypted path."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from datetime import UTC, datetime
from xml.sax.saxutils import escape

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medscrm.ingest.protocol.tencent_crypto import TencentCrypto
from medscrm.ingest.protocol.wechat import parse_wechat_event
from medscrm.ingest.protocol.wecom import (
    parse_encrypted_envelope,
    parse_wecom_event,
    parse_xml_fields,
    snake_case,
)

CORP_ID = "ww4asffe99e54c0f4c"


def wecom_xml(body: str, *, create_time: int = 1403610513, to_user: str = CORP_ID) -> str:
    return (
        "<xml>"
        f"<ToUserName><![CDATA[{to_user}]]></ToUserName>"
        "<FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime>"
        "<MsgType><![CDATA[event]]></MsgType>"
        f"{body}"
        "</xml>"
    )


def contact_xml(change_type: str, extra: str = "") -> str:
    return wecom_xml(
        "<Event><![CDATA[change_external_contact]]></Event>"
        f"<ChangeType><![CDATA[{change_type}]]></ChangeType>"
        "<UserID><![CDATA[zhangsan]]></UserID>"
        "<ExternalUserID><![CDATA[woAJ2GCAAAXtWyujaWJHDDGi0mAAAA]]></ExternalUserID>"
        f"{extra}"
    )


ADD_CONTACT = contact_xml(
    "add_external_contact",
    "<State><![CDATA[teststate]]></State><WelcomeCode><![CDATA[WELCOMECODE]]></WelcomeCode>",
)


# -- WeCom external contacts ------------------------------------------------------------------------
def test_add_external_contact() -> None:
    ev = parse_wecom_event(ADD_CONTACT)
    assert ev.type == "track"
    assert ev.event == "WeCom External Contact Added"
    assert ev.timestamp == datetime(2014, 6, 24, 11, 48, 33, tzinfo=UTC)
    assert ev.user_id is None
    assert ev.identities == [
        ("wecom_external_userid", "woAJ2GCAAAXtWyujaWJHDDGi0mAAAA"),
        ("wecom_user", "zhangsan"),
    ]
    p = ev.properties
    assert p["change_type"] == "add_external_contact"
    assert p["user_id"] == "zhangsan"
    assert p["external_user_id"] == "woAJ2GCAAAXtWyujaWJHDDGi0mAAAA"
    assert p["state"] == "teststate"
    assert p["welcome_code"] == "WELCOMECODE"
    assert p["event"] == "change_external_contact"
    assert p["create_time"] == "1403610513"
    assert p["corp_id"] == CORP_ID


def test_message_id_is_deterministic_and_distinguishes_events() -> None:
    a = parse_wecom_event(ADD_CONTACT)
    # a retry re-sends the same body, possibly formatted differently
    retry = ADD_CONTACT.replace("><", ">\n  <")
    assert parse_wecom_event(retry).message_id == a.message_id
    assert a.message_id.startswith("wecom-")
    later = parse_wecom_event(
        contact_xml("add_external_contact", "<State><![CDATA[teststate]]></State>").replace(
            "1403610513", "1403610514"
        )
    )
    deleted = parse_wecom_event(contact_xml("del_external_contact"))
    assert len({a.message_id, later.message_id, deleted.message_id}) == 3


@pytest.mark.parametrize(
    ("change_type", "extra", "event", "checks"),
    [
        (
            "edit_external_contact",
            "",
            "WeCom External Contact Edited",
            {},
        ),
        (
            "add_half_external_contact",
            "<State><![CDATA[campaign-42]]></State><WelcomeCode><![CDATA[WC]]></WelcomeCode>",
            "WeCom External Contact Added",
            {"change_type": "add_half_external_contact", "state": "campaign-42"},
        ),
        (
            "del_external_contact",
            "<Source><![CDATA[DELETE_BY_TRANSFER]]></Source>",
            "WeCom External Contact Deleted",
            {"source": "DELETE_BY_TRANSFER"},
        ),
        ("del_follow_user", "", "WeCom Follow User Deleted", {}),
        (
            "transfer_fail",
            "<FailReason><![CDATA[customer_refused]]></FailReason>",
            "WeCom Transfer Failed",
            {"fail_reason": "customer_refused"},
        ),
    ],
)
def test_contact_change_types(change_type: str, extra: str, event: str, checks: dict) -> None:
    ev = parse_wecom_event(contact_xml(change_type, extra))
    assert ev.event == event
    assert ("wecom_external_userid", "woAJ2GCAAAXtWyujaWJHDDGi0mAAAA") in ev.identities
    assert ("wecom_user", "zhangsan") in ev.identities
    for key, value in checks.items():
        assert ev.properties[key] == value


def test_missing_external_user_id_is_named() -> None:
    xml = wecom_xml(
        "<Event><![CDATA[change_external_contact]]></Event>"
        "<ChangeType><![CDATA[add_external_contact]]></ChangeType>"
        "<UserID><![CDATA[zhangsan]]></UserID>"
    )
    with pytest.raises(ValueError, match="ExternalUserID"):
        parse_wecom_event(xml)


def test_missing_create_time_is_named() -> None:
    xml = "<xml><MsgType>event</MsgType><Event>change_external_chat</Event></xml>"
    with pytest.raises(ValueError, match="CreateTime"):
        parse_wecom_event(xml)


def test_bad_create_time() -> None:
    with pytest.raises(ValueError, match="CreateTime"):
        parse_wecom_event(ADD_CONTACT.replace("1403610513", "yesterday"))


def test_suite_command_callback_shape() -> None:
    """Third-party suite callbacks use SuiteId/AuthCorpId/InfoType/TimeStamp."""
    xml = (
        "<xml>"
        "<SuiteId><![CDATA[ww4asffe99e54c0f4c]]></SuiteId>"
        "<AuthCorpId><![CDATA[wxf8b4f85f3a794e77]]></AuthCorpId>"
        "<InfoType><![CDATA[change_external_contact]]></InfoType>"
        "<TimeStamp>1403610513</TimeStamp>"
        "<ChangeType><![CDATA[add_external_contact]]></ChangeType>"
        "<UserID><![CDATA[zhangsan]]></UserID>"
        "<ExternalUserID><![CDATA[woAJ2GCAAAXtWyujaWJHDDGi0mACH71w]]></ExternalUserID>"
        "<State><![CDATA[teststate]]></State>"
        "<WelcomeCode><![CDATA[WELCOMECODE]]></WelcomeCode>"
        "</xml>"
    )
    ev = parse_wecom_event(xml)
    assert ev.event == "WeCom External Contact Added"
    assert ev.timestamp == datetime.fromtimestamp(1403610513, tz=UTC)
    assert ev.properties["corp_id"] == "wxf8b4f85f3a794e77"
    assert ev.properties["state"] == "teststate"


# -- WeCom group chats and tags ---------------------------------------------------------------------
def test_group_chat_create() -> None:
    ev = parse_wecom_event(
        wecom_xml(
            "<Event><![CDATA[change_external_chat]]></Event>"
            "<ChatId><![CDATA[wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA]]></ChatId>"
            "<ChangeType><![CDATA[create]]></ChangeType>"
        )
    )
    assert ev.event == "WeCom Group Chat Changed"
    assert ev.properties["chat_id"] == "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"
    assert ev.properties["change_type"] == "create"
    assert ev.identities == []


def test_group_chat_update_add_member() -> None:
    ev = parse_wecom_event(
        wecom_xml(
            "<Event><![CDATA[change_external_chat]]></Event>"
            "<ChatId><![CDATA[CHAT_ID]]></ChatId>"
            "<ChangeType><![CDATA[update]]></ChangeType>"
            "<UpdateDetail><![CDATA[add_member]]></UpdateDetail>"
            "<JoinScene>1</JoinScene>"
            "<QuitScene>0</QuitScene>"
            "<MemChangeCnt>2</MemChangeCnt>"
            "<MemChangeList><Item>Jack</Item><Item>wmRose</Item></MemChangeList>"
            "<LastMemVer>9c3f97c2ada667dfb5f6d03308d963e1</LastMemVer>"
            "<CurMemVer>71217227bbd112ecfe3a49c482195cb4</CurMemVer>"
        )
    )
    p = ev.properties
    assert ev.event == "WeCom Group Chat Changed"
    assert p["update_detail"] == "add_member"
    assert p["join_scene"] == "1"
    assert p["quit_scene"] == "0"
    assert p["mem_change_cnt"] == "2"
    assert p["mem_change_list"] == ["Jack", "wmRose"]
    assert p["cur_mem_ver"] == "71217227bbd112ecfe3a49c482195cb4"


def test_group_chat_single_item_list_and_dismiss() -> None:
    upd = parse_wecom_event(
        wecom_xml(
            "<Event>change_external_chat</Event><ChatId>C</ChatId><ChangeType>update</ChangeType>"
            "<UpdateDetail>del_member</UpdateDetail><QuitScene>1</QuitScene>"
            "<MemChangeList><Item>wmOnly</Item></MemChangeList>"
        )
    )
    assert upd.properties["mem_change_list"] == ["wmOnly"]
    assert upd.properties["quit_scene"] == "1"
    dismiss = parse_wecom_event(
        wecom_xml("<Event>change_external_chat</Event><ChatId>C</ChatId><ChangeType>dismiss</ChangeType>")
    )
    assert dismiss.properties["change_type"] == "dismiss"
    assert dismiss.message_id != upd.message_id


def test_group_chat_requires_chat_id() -> None:
    with pytest.raises(ValueError, match="ChatId"):
        parse_wecom_event(wecom_xml("<Event>change_external_chat</Event><ChangeType>create</ChangeType>"))


def test_tag_changed() -> None:
    ev = parse_wecom_event(
        wecom_xml(
            "<Event><![CDATA[change_external_tag]]></Event>"
            "<Id><![CDATA[etXXXXXXXXX]]></Id>"
            "<TagType><![CDATA[tag]]></TagType>"
            "<ChangeType><![CDATA[create]]></ChangeType>"
            "<StrategyId>1</StrategyId>"
        )
    )
    assert ev.event == "WeCom Tag Changed"
    assert ev.properties["id"] == "etXXXXXXXXX"
    assert ev.properties["tag_type"] == "tag"
    assert ev.properties["strategy_id"] == "1"


def test_unknown_wecom_event_is_kept() -> None:
    ev = parse_wecom_event(
        wecom_xml("<Event><![CDATA[change_contact]]></Event><ChangeType>create_user</ChangeType>")
    )
    assert ev.event == "WeCom Callback"
    assert ev.properties["event"] == "change_contact"
    assert ev.properties["change_type"] == "create_user"
    unknown_change = parse_wecom_event(contact_xml("some_future_change"))
    assert unknown_change.event == "WeCom Callback"
    assert ("wecom_external_userid", "woAJ2GCAAAXtWyujaWJHDDGi0mAAAA") in unknown_change.identities


def test_wecom_text_message_from_member() -> None:
    """Tencent's own sample message (decrypted vector): a member texting the app."""
    xml = (
        "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n"
        "<FromUserName><![CDATA[mycreate]]></FromUserName>\n<CreateTime>1409659813</CreateTime>\n"
        "<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[hello]]></Content>\n"
        "<MsgId>4561255354251345929</MsgId>\n<AgentID>218</AgentID>\n</xml>"
    )
    ev = parse_wecom_event(xml)
    assert ev.event == "WeCom Callback"
    assert ev.identities == [("wecom_user", "mycreate")]
    assert ev.properties["content"] == "hello"
    assert ev.properties["agent_id"] == "218"


# -- WeChat official account ------------------------------------------------------------------------
OPENID = "oBfD-1q2w3e4r5t6y7u8i9o0p"
GH = "gh_3d4f5e6a7b8c"


def wechat_xml(body: str, *, create_time: int = 1700000000) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{GH}]]></ToUserName>"
        f"<FromUserName><![CDATA[{OPENID}]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime>{body}</xml>"
    )


def event_xml(event: str, extra: str = "") -> str:
    return wechat_xml(f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>{extra}")


def test_wechat_subscribe_plain() -> None:
    ev = parse_wechat_event(event_xml("subscribe"))
    assert ev.event == "WeChat Subscribed"
    assert ev.user_id == OPENID
    assert ev.identities == [("wechat_openid", OPENID)]
    assert ev.timestamp == datetime.fromtimestamp(1700000000, tz=UTC)
    assert "scene" not in ev.properties
    assert ev.properties["to_user_name"] == GH
    assert ev.message_id.startswith("wechat-")


def test_wechat_subscribe_empty_event_key() -> None:
    ev = parse_wechat_event(event_xml("subscribe", "<EventKey><![CDATA[]]></EventKey>"))
    assert ev.event == "WeChat Subscribed"
    assert "scene" not in ev.properties
    assert ev.properties["event_key"] == ""


def test_wechat_subscribe_via_qr() -> None:
    ev = parse_wechat_event(
        event_xml(
            "subscribe",
            "<EventKey><![CDATA[qrscene_123]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket>",
        )
    )
    assert ev.event == "WeChat Subscribed"
    assert ev.properties["scene"] == "123"
    assert ev.properties["event_key"] == "qrscene_123"
    assert ev.properties["ticket"] == "TICKET"


def test_wechat_subscribe_via_string_scene_qr() -> None:
    ev = parse_wechat_event(event_xml("subscribe", "<EventKey>qrscene_cardio_congress_2025</EventKey>"))
    assert ev.properties["scene"] == "cardio_congress_2025"


def test_wechat_unsubscribe() -> None:
    ev = parse_wechat_event(event_xml("unsubscribe", "<EventKey><![CDATA[]]></EventKey>"))
    assert ev.event == "WeChat Unsubscribed"
    assert ev.user_id == OPENID


def test_wechat_scan() -> None:
    ev = parse_wechat_event(
        event_xml("SCAN", "<EventKey><![CDATA[123]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket>")
    )
    assert ev.event == "WeChat QR Scanned"
    assert ev.properties["scene"] == "123"


def test_wechat_click_and_view() -> None:
    click = parse_wechat_event(event_xml("CLICK", "<EventKey><![CDATA[MENU_DRUG_INFO]]></EventKey>"))
    assert click.event == "WeChat Menu Clicked"
    assert click.properties["event_key"] == "MENU_DRUG_INFO"
    view = parse_wechat_event(
        event_xml(
            "VIEW",
            "<EventKey><![CDATA[https://example.com/webinar?id=7&utm=menu]]></EventKey><MenuId>3</MenuId>",
        )
    )
    assert view.event == "WeChat Menu Link Viewed"
    assert view.properties["event_key"] == "https://example.com/webinar?id=7&utm=menu"
    assert view.properties["menu_id"] == "3"


def test_wechat_template_send_finished() -> None:
    ev = parse_wechat_event(
        event_xml(
            "TEMPLATESENDJOBFINISH",
            "<MsgID>200163836</MsgID><Status><![CDATA[failed:user block]]></Status>",
        )
    )
    assert ev.event == "WeChat Template Send Finished"
    assert ev.properties["msg_id"] == "200163836"
    assert ev.properties["status"] == "failed:user block"


def test_wechat_text_message_keeps_content() -> None:
    ev = parse_wechat_event(
        wechat_xml(
            "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[请问 <b>剂量</b> & 用法?]]></Content>"
            "<MsgId>1234567890123456</MsgId>"
        )
    )
    assert ev.event == "WeChat Message Received"
    assert ev.properties["content"] == "请问 <b>剂量</b> & 用法?"
    assert ev.properties["msg_type"] == "text"
    assert ev.properties["msg_id"] == "1234567890123456"
    assert ev.user_id == OPENID


def test_wechat_unknown_event_is_kept() -> None:
    ev = parse_wechat_event(
        event_xml("LOCATION", "<Latitude>23.137466</Latitude><Longitude>113.352425</Longitude>")
    )
    assert ev.event == "WeChat Callback"
    assert ev.properties["latitude"] == "23.137466"


def test_wechat_nested_fields() -> None:
    ev = parse_wechat_event(
        event_xml(
            "scancode_push",
            "<EventKey>6</EventKey><ScanCodeInfo><ScanType>qrcode</ScanType>"
            "<ScanResult>1</ScanResult></ScanCodeInfo>",
        )
    )
    assert ev.event == "WeChat Callback"
    assert ev.properties["scan_code_info"] == {"scan_type": "qrcode", "scan_result": "1"}


@pytest.mark.parametrize(
    ("xml", "missing"),
    [
        ("<xml><FromUserName>o</FromUserName><MsgType>event</MsgType></xml>", "CreateTime"),
        ("<xml><CreateTime>1</CreateTime><MsgType>event</MsgType></xml>", "FromUserName"),
        ("<xml><CreateTime>1</CreateTime><FromUserName>o</FromUserName></xml>", "MsgType"),
        (
            "<xml><CreateTime>1</CreateTime><FromUserName>o</FromUserName><MsgType>event</MsgType></xml>",
            "Event",
        ),
    ],
)
def test_wechat_missing_elements_are_named(xml: str, missing: str) -> None:
    with pytest.raises(ValueError, match=missing):
        parse_wechat_event(xml)


# -- XML safety and helpers -------------------------------------------------------------------------
BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<xml><CreateTime>1</CreateTime><FromUserName>&lol3;</FromUserName><MsgType>text</MsgType></xml>"""

XXE = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><CreateTime>1</CreateTime><FromUserName>o</FromUserName><MsgType>text</MsgType>
<Content>&xxe;</Content></xml>"""


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, XXE, '<!DOCTYPE xml SYSTEM "http://x/d.dtd"><xml/>'])
def test_dtd_is_refused(xml: str) -> None:
    with pytest.raises(ValueError, match="DTD"):
        parse_wechat_event(xml)
    with pytest.raises(ValueError, match="DTD"):
        parse_wecom_event(xml)


@pytest.mark.parametrize("xml", ["", "<xml>", "not xml", "<xml><a></b></xml>", "<xml>&undefined;</xml>"])
def test_malformed_xml(xml: str) -> None:
    with pytest.raises(ValueError):
        parse_xml_fields(xml)


def test_oversized_xml() -> None:
    with pytest.raises(ValueError, match="larger"):
        parse_xml_fields("<xml><Content>" + "x" * (1024 * 1024) + "</Content></xml>")


def test_doctype_text_inside_cdata_is_fine() -> None:
    ev = parse_wechat_event(
        wechat_xml("<MsgType>text</MsgType><Content><![CDATA[<!DOCTYPE x [<!ENTITY a 'b'>]>]]></Content>")
    )
    assert ev.properties["content"] == "<!DOCTYPE x [<!ENTITY a 'b'>]>"


@pytest.mark.parametrize(
    ("name", "snake"),
    [
        ("ExternalUserID", "external_user_id"),
        ("UserID", "user_id"),
        ("ChatId", "chat_id"),
        ("MsgID", "msg_id"),
        ("MsgId", "msg_id"),
        ("AgentID", "agent_id"),
        ("ToUserName", "to_user_name"),
        ("MemChangeCnt", "mem_change_cnt"),
        ("EventKey", "event_key"),
        ("openid", "openid"),
    ],
)
def test_snake_case(name: str, snake: str) -> None:
    assert snake_case(name) == snake


def test_envelope() -> None:
    env = parse_encrypted_envelope(
        "<xml><ToUserName><![CDATA[ww1]]></ToUserName><Encrypt><![CDATA[abc==]]></Encrypt>"
        "<AgentID><![CDATA[1000002]]></AgentID></xml>"
    )
    assert env == {"to_user_name": "ww1", "encrypt": "abc==", "agent_id": "1000002"}
    official = parse_encrypted_envelope(
        "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[abc==]]></Encrypt></xml>"
    )
    assert official == {"to_user_name": "gh_1", "encrypt": "abc==", "agent_id": None}
    with pytest.raises(ValueError, match="Encrypt"):
        parse_encrypted_envelope("<xml><ToUserName>ww1</ToUserName></xml>")


# -- the full path ----------------------------------------------------------------------------------
def test_full_encrypted_wecom_path() -> None:
    token, key = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
    server_side = TencentCrypto(token, key, CORP_ID)
    encrypted, signature = server_side.encrypt(ADD_CONTACT, nonce="1372623149", timestamp="1409659813")
    envelope_xml = (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypted}]]></Encrypt>"
        "<AgentID><![CDATA[1000002]]></AgentID></xml>"
    )

    receiver = TencentCrypto(token, key, CORP_ID)
    envelope = parse_encrypted_envelope(envelope_xml)
    assert envelope["to_user_name"] == CORP_ID
    plaintext = receiver.decrypt(signature, "1409659813", "1372623149", envelope["encrypt"])
    ev = parse_wecom_event(plaintext)
    assert ev.event == "WeCom External Contact Added"
    assert ev.identities == [
        ("wecom_external_userid", "woAJ2GCAAAXtWyujaWJHDDGi0mAAAA"),
        ("wecom_user", "zhangsan"),
    ]
    assert ev.properties["state"] == "teststate"
    assert ev.message_id == parse_wecom_event(ADD_CONTACT).message_id


def test_protocol_modules_import_without_web_or_db_frameworks() -> None:
    code = (
        "import sys, medscrm.ingest.protocol.segment, medscrm.ingest.protocol.wecom, "
        "medscrm.ingest.protocol.wechat, medscrm.ingest.protocol.tencent_crypto; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi','starlette','sqlalchemy')); "
        "assert not bad, bad"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# -- robustness -------------------------------------------------------------------------------------
_tags = st.sampled_from(
    [
        "ToUserName",
        "FromUserName",
        "CreateTime",
        "MsgType",
        "Event",
        "ChangeType",
        "UserID",
        "ExternalUserID",
        "ChatId",
        "Id",
        "EventKey",
        "InfoType",
        "TimeStamp",
        "Item",
        "MemChangeList",
    ]
)
_values = st.sampled_from(
    [
        "event",
        "change_external_contact",
        "change_external_chat",
        "change_external_tag",
        "add_external_contact",
        "subscribe",
        "SCAN",
        "qrscene_",
        "qrscene_1",
        "1403610513",
        "-1",
        "99999999999999999999",
        "",
        " ",
    ]
) | st.text(max_size=12)


@st.composite
def _callback_xml(draw: st.DrawFn) -> str:
    parts = []
    for tag, value in draw(st.lists(st.tuples(_tags, _values), max_size=10)):
        parts.append(f"<{tag}>{escape(value)}</{tag}>")
    return "<xml>" + "".join(parts) + "</xml>"


@settings(max_examples=300, deadline=None)
@given(xml=_callback_xml() | st.text(max_size=60))
def test_parsers_only_raise_value_error(xml: str) -> None:
    for parser in (parse_wecom_event, parse_wechat_event, parse_encrypted_envelope):
        with contextlib.suppress(ValueError):
            parser(xml)

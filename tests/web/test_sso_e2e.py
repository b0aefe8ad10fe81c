"""Single sign-on in the browser through a real OpenID provider process (``oidc-provider-mock``, started
on a free port by tests/sso_support.py): a user of the marketing group signs in as a marketer and sees a
marketer's pages, a user of no mapped group is refused, in Chinese and in English. An admin sets SSO up
on the console page. A second provider process issuing already-expired ID tokens is refused and audited.
"""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from medscrm.accounts import service as accounts
from medscrm.accounts import sso
from medscrm.db.schema import audit_log
from sso_support import oidc_provider_mock, set_user
from web.conftest import login

ROLE_MAP = {"pharma-marketing": "marketer", "pharma-dpo": "compliance"}


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    with oidc_provider_mock(tmp_path_factory.mktemp("idp")) as url:
        set_user(url, "wang.fang", preferred_username="wang.fang", name="王芳", groups=["pharma-marketing"])
        set_user(url, "zhao.lei", preferred_username="zhao.lei", name="赵磊", groups=["finance"])
        yield url


def _configure(demo, issuer: str) -> None:
    with demo.engine.begin() as conn:
        sso.configure(
            conn,
            demo.tenant_id,
            actor="test",
            issuer=issuer,
            client_id="medscrm-console",
            client_secret="provider-mock-accepts-any",
            display_name="Pharma AD",
            role_map=ROLE_MAP,
        )


def _sso_page(browser, base_url, demo, lang: str):
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    ctx.add_cookies([{"name": "medscrm_lang", "value": lang, "url": base_url}])
    page = ctx.new_page()
    page.goto(f"{base_url}/login?tenant={demo.slug}")
    return page


def _authorize(page, subject: str) -> None:
    page.get_by_label("Subject").fill(subject)
    page.get_by_role("button", name="Authorize", exact=True).click()


@pytest.mark.parametrize(
    ("lang", "button", "refused"),
    [
        ("zh", "使用 Pharma AD 登录", "没有对应的 medscrm 角色"),
        ("en", "Sign in with Pharma AD", "None of your groups maps to a medscrm role"),
    ],
)
def test_sign_in_through_the_provider_as_a_marketer_and_refusal_without_a_group(
    browser, base_url, demo, provider, lang, button, refused
):
    _configure(demo, provider)
    page = _sso_page(browser, base_url, demo, lang)
    page.get_by_role("link", name=button).click()
    assert page.url.startswith(provider + "/oauth2/authorize")
    _authorize(page, "wang.fang")
    page.wait_for_url(base_url + "/")
    nav = {a.get_attribute("data-nav") for a in page.locator("nav [data-nav]").all()}
    assert {"hcps", "segments", "imports"} <= nav  # a marketer's pages
    assert not nav & {"audit", "privacy", "webhooks", "sso", "identity"}  # an admin's or DPO's are not
    page.goto(base_url + "/segments")
    assert page.locator("h1").count() and "/login" not in page.url
    assert page.goto(base_url + "/sso").status == 403
    with demo.engine.connect() as conn:
        user = accounts.get_user(conn=conn, tenant_id=demo.tenant_id, username="wang.fang")
    assert user and user["role"] == "marketer" and user["display_name"] == "王芳"
    page.context.close()

    page = _sso_page(browser, base_url, demo, lang)
    page.get_by_role("link", name=button).click()
    _authorize(page, "zhao.lei")
    page.wait_for_url(f"{base_url}/sso/callback*")
    assert refused in page.locator("[role=alert]").inner_text()
    assert page.goto(base_url + "/").url.startswith(base_url + "/login")  # not signed in
    with demo.engine.connect() as conn:
        assert accounts.get_user(conn=conn, tenant_id=demo.tenant_id, username="zhao.lei") is None
        row = (
            conn.execute(
                sa.select(audit_log)
                .where(audit_log.c.tenant_id == demo.tenant_id, audit_log.c.action == "console.sso_refused")
                .order_by(audit_log.c.occurred_at.desc())
            )
            .mappings()
            .first()
        )
    assert row and row["actor"] == "sso:zhao.lei" and row["detail"]["reason"] == "no_mapped_group"
    page.context.close()


def test_an_admin_sets_up_sso_on_the_console_page(browser, base_url, demo, provider):
    page = login(browser, base_url, demo, "admin", lang="en")
    page.click("[data-nav=sso]")
    page.fill("#sso-issuer", provider)
    page.fill("#sso-client-id", "medscrm-console")
    page.fill("#sso-client-secret", "console-secret-789")
    page.fill("#sso-display-name", "Corp IdP")
    page.fill("#sso-role-map", "pharma-marketing=marketer\npharma-dpo=compliance")
    page.click("[data-action=save]")
    assert page.locator("#sso-saved").is_visible()
    assert page.locator("#sso-state").get_attribute("data-state") == "on"
    assert "console-secret-789" not in page.content()
    page.fill("#sso-role-map", "pharma-marketing=owner")
    page.click("[data-action=save]")
    assert "role_map" in page.locator("#sso-error").inner_text()
    with demo.engine.connect() as conn:
        cfg = sso.load(conn, demo.tenant_id)
    assert cfg and cfg.client_secret == "console-secret-789" and cfg.role_map["pharma-dpo"] == "compliance"
    assert cfg.display_name == "Corp IdP"
    page.context.close()


def test_an_expired_id_token_from_a_real_provider_is_refused_and_audited(base_url, demo, tmp_path):
    with oidc_provider_mock(tmp_path, "--token-max-age=-600") as expired_issuer:
        set_user(expired_issuer, "wang.fang", preferred_username="wang.fang", groups=["pharma-marketing"])
        _configure(demo, expired_issuer)
        with httpx.Client(base_url=base_url, cookies={"medscrm_lang": "en"}) as browser_like:
            r = browser_like.get(f"/sso/start?tenant={demo.slug}")
            assert r.status_code == 303
            at_provider = httpx.post(r.headers["location"], data={"sub": "wang.fang"})
            assert at_provider.status_code in (302, 303)
            back = browser_like.get(at_provider.headers["location"])
    assert back.status_code == 401 and "the token has expired" in back.text
    with demo.engine.connect() as conn:
        row = (
            conn.execute(
                sa.select(audit_log)
                .where(audit_log.c.tenant_id == demo.tenant_id, audit_log.c.action == "console.sso_refused")
                .order_by(audit_log.c.occurred_at.desc())
            )
            .mappings()
            .first()
        )
    assert row and row["detail"]["reason"] == "expired" and row["tenant_id"] == demo.tenant_id

"""One language at a time: every console page, crawled in Chromium as each role on the demo data.

In Chinese, no field name, operator, reason code, status, stage name or other ``snake_case`` code may
show in the visible text (text nodes, placeholders, titles, the chart options drawn on canvas), and no
catalogue key may be echoed raw; in English, no Chinese UI label may show (data values — names,
hospitals, titles of content — are Chinese and allowed). Identifiers that are data (a segment key,
an e-mail address, a person id) are shown as secondary text marked ``translate="no"`` (or ``.mono``),
and are the only place a code may appear.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from medscrm.db import make_engine, upgrade_to_head
from medscrm.web import i18n
from medscrm.web.devserver import DemoTenant, build_tenant, serve_in_thread
from web.conftest import login

WEB = Path(__file__).resolve().parents[2] / "src" / "medscrm" / "web"

# What visible text is collected from: text nodes and user-facing attributes, outside data marks.
COLLECT_JS = r"""
() => {
  const SKIP = "script,style,noscript,template,[translate=no],.mono,code,pre,datalist";
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let n;
  while ((n = walker.nextNode())) {
    const p = n.parentElement;
    if (!p || p.closest(SKIP)) continue;
    const s = n.textContent.trim();
    if (s) out.push({kind: "text", tag: p.tagName.toLowerCase(), text: s});
  }
  document.querySelectorAll("[placeholder],[title],[aria-label]").forEach((e) => {
    if (e.closest(SKIP)) return;
    ["placeholder", "title", "aria-label"].forEach((a) => {
      const v = e.getAttribute(a);
      if (v && v.trim()) out.push({kind: a, tag: e.tagName.toLowerCase(), text: v.trim()});
    });
  });
  document.querySelectorAll("[data-chart]").forEach((e) => {
    out.push({kind: "chart", tag: e.id, text: e.dataset.chart});
  });
  if (document.title) out.push({kind: "title", tag: "title", text: document.title});
  return out;
}
"""

SNAKE = re.compile(r"(?<![A-Za-z0-9_.@/-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![A-Za-z0-9_@-])")
CJK = re.compile(r"[\u4e00-\u9fff]")
KEY_PREFIXES = sorted({k.split(".", 1)[0] for k in i18n.MESSAGES["en"]})
RAW_KEY = re.compile(r"(?<![A-Za-z0-9_])(?:" + "|".join(KEY_PREFIXES) + r")\.[a-z0-9_]+(?![A-Za-z0-9_])")
# ASCII words that may show in Chinese pages: product and standard names, units
ASCII_OK = {
    "medscrm", "English", "HCP", "AIPL", "CRM", "CSV", "TSV", "XLSX", "JSONL", "Parquet", "YAML", "JSON",
    "OneID", "UnionID", "OpenID", "Webhook", "v",
}  # fmt: skip
# abbreviations (HCP, AIPL, NPS, COPD, HFpEF, SGLT2i …) are written so in Chinese too
ACRONYM = re.compile(r"[A-Z][A-Za-z0-9]*[A-Z][A-Za-z0-9]*")
URL = re.compile(r"https?://\S+")
ASCII_WORD = re.compile(r"(?<![A-Za-z0-9_@.\-/])[A-Za-z][A-Za-z]+(?![A-Za-z0-9_@\-])")


def chart_strings(option: object) -> Iterator[str]:
    """The texts an ECharts option draws: names, category data, label formatters."""
    if isinstance(option, dict):
        for k, v in option.items():
            if k in ("name", "text") and isinstance(v, str):
                yield v
            elif k == "formatter" and isinstance(v, str):
                yield re.sub(r"\{[a-z]\}", "", v)
            elif k == "data" and isinstance(v, list):
                for x in v:
                    if isinstance(x, str):
                        yield x
                    else:
                        yield from chart_strings(x)
            else:
                yield from chart_strings(v)
    elif isinstance(option, list):
        for x in option:
            yield from chart_strings(x)


def zh_problems(items: list[dict]) -> list[str]:
    out = []
    for it in items:
        texts = list(chart_strings(json.loads(it["text"]))) if it["kind"] == "chart" else [it["text"]]
        for text in texts:
            where = f"{it['kind']}<{it['tag']}>: {text[:80]!r}"
            for m in SNAKE.findall(text):
                out.append(f"snake_case {m!r} in {where}")
            for m in RAW_KEY.findall(text):
                out.append(f"raw i18n key {m!r} in {where}")
            if it["tag"] != "title":  # the document title names the page's person or journey (data)
                for w in ASCII_WORD.findall(URL.sub("", text)):  # an example URL is data
                    if w not in ASCII_OK and not ACRONYM.fullmatch(w) and not SNAKE.fullmatch(w):
                        out.append(f"English word {w!r} in {where}")
    return out


ZH_LABELS = {
    v for k, v in i18n.MESSAGES["zh"].items() if CJK.search(v) and len(v) >= 2 and v != i18n.MESSAGES["en"][k]
}
LABEL_TAGS = {"th", "button", "label", "legend", "summary", "h2", "h3", "option", "span", "a", "title"}


def en_problems(items: list[dict]) -> list[str]:
    out = []
    for it in items:
        texts = list(chart_strings(json.loads(it["text"]))) if it["kind"] == "chart" else [it["text"]]
        for text in texts:
            where = f"{it['kind']}<{it['tag']}>: {text[:80]!r}"
            if text in ZH_LABELS:
                out.append(f"Chinese UI label in {where}")
            for m in RAW_KEY.findall(text):
                out.append(f"raw i18n key {m!r} in {where}")
            for m in SNAKE.findall(text):
                out.append(f"snake_case {m!r} in {where}")
    return out


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[DemoTenant]:
    """The demo's pipeline: sources, OneID, rule tags and segments, behaviour and scores, the journey."""
    from medscrm.demo.journeys import journey_step
    from medscrm.demo.scores import behaviour_step
    from medscrm.workspace import Workspace

    tmp = tmp_path_factory.mktemp("lang")
    engine = make_engine(f"duckdb:///{tmp / 'lang.duckdb'}")
    upgrade_to_head(engine)
    tenant = build_tenant(engine, slug="langtest", data_dir=tmp / "data", hcps=200, seed=42)
    ws = Workspace(engine=engine, tenant_id=tenant.tenant_id, tenant_slug=tenant.slug)
    quiet = Console(quiet=True)
    behaviour_step(ws, console=quiet, seed=42)
    journey_step(ws, console=quiet, max_persons=20)
    _content_under_review(engine, tenant.tenant_id)
    yield tenant
    engine.dispose()


@pytest.fixture(scope="module")
def base_url(demo: DemoTenant, tmp_path_factory) -> Iterator[str]:
    from medscrm.app import create_app

    app = create_app(demo.engine, spool_dir=tmp_path_factory.mktemp("spool"), fsync=False)
    with serve_in_thread(app) as url:
        yield url


def _content_under_review(engine, tenant_id: str) -> None:
    """Content in every review state the pages show: a draft sent back with a reason, one in review."""
    from medscrm.content import service as content

    with engine.begin() as conn:
        for key, reject in (("lang-rejected", True), ("lang-in-review", False)):
            item = content.create_item(
                conn,
                tenant_id=tenant_id,
                key=key,
                title="心衰随访提醒 · HF follow-up reminder",
                kind="sms_template",
                audience="hcp_only",
                actor="marketer",
                subject="{{ name }}",
                body="{{ name }}医生您好：心衰随访提醒 {{ url }}",
                url="https://example.org/hf",
            )
            content.submit_for_review(conn, tenant_id=tenant_id, item_id=item["id"], actor="marketer")
            if reject:
                content.reject(
                    conn, tenant_id=tenant_id, item_id=key, reason="请注明出处", actor="compliance",
                    actor_role="compliance",
                )  # fmt: skip


#: a rule with three problems: an empty list, a window too long, an unknown attribute
BAD_RULE = {
    "and": [
        {"attr": "department", "op": "in", "value": []},
        {"event": "Webinar Attended", "op": "gte", "value": 1, "window": {"last": 99999, "unit": "days"}},
        {"attr": "不存在的属性", "op": "eq", "value": "x"},
    ]
}

#: a journey with problems: no content, a bad duration, an unknown next step
BAD_JOURNEY = {
    "key": "bad_journey",
    "name": "坏旅程 · bad journey",
    "triggers": [{"type": "segment_entry", "segment": "senior_cardiology"}],
    "steps": [
        {"id": "mail", "type": "send", "channel": "email", "next": "pause"},
        {"id": "pause", "type": "wait", "duration": "soon", "next": "gone"},
        {"id": "loose", "type": "exit"},
    ],
}

#: every kind of condition the builder draws (its selects and labels are crawled too)
EVERY_KIND = {
    "or": [
        {"attr": "city", "op": "in", "value": ["北京", "上海"]},
        {"tag": "potential_tier", "op": "eq", "value": "A"},
        {"score": "lead_score", "op": "between", "value": [40, 90]},
        {"not": {"consent": "email", "purpose": "marketing", "status": "withdrawn"}},
        {
            "event": "Article Viewed",
            "agg": "sum",
            "property": "minutes",
            "where": [{"property": "therapy_area", "op": "eq", "value": "心衰"}],
            "op": "gte",
            "value": 10,
            "window": {"since": "2026-01-01", "until": "2026-06-30"},
        },
        {"event": "Article Viewed", "agg": "last", "op": "gte", "value": {"ago": 30, "unit": "days"}},
        {"did": "Webinar Registered", "then": "Webinar Attended", "within": {"days": 7}},
        {
            "and": [
                {"did_not": "Article Viewed", "window": {"last": 4, "unit": "weeks"}},
                {"person_type": "hcp"},
            ]
        },
        {"segment": "senior_cardiology"},
    ]
}


def _pages(page, base_url: str, role: str) -> list[str]:
    """Every page reachable from the navigation, and one of each detail page the role may open."""
    nav = page.eval_on_selector_all("nav.side a[data-nav]", "els => els.map(e => e.getAttribute('href'))")
    urls = list(nav)
    page.goto(base_url + "/hcps?q=")
    first = page.locator("table.results tbody tr a").first
    if first.count():
        urls.append(first.get_attribute("href"))
    if "/segments" in nav:
        page.goto(base_url + "/segments")
        urls += page.eval_on_selector_all(
            "tr[data-segment] td:nth-child(7) a:first-child", "els => els.map(e => e.getAttribute('href'))"
        )
        urls += ["/segments/new", "/segments/new#invalid", "/segments/new#every"]
    if "/journeys" in nav:
        page.goto(base_url + "/journeys")
        journey_pages = page.eval_on_selector_all(
            "a[data-journey]", "els => els.map(e => e.getAttribute('href'))"
        )
        urls += journey_pages + [u + "/versions" for u in journey_pages[:1]]
        if page.locator("[data-new-journey]").count():  # the editor, for those who may author journeys
            urls += ["/journeys/new", "/journeys/new#problems"] + [u + "/edit" for u in journey_pages[:1]]
        for j in journey_pages[:1]:  # the persons behind a journey's figures (sends, blocks, a variant)
            page.goto(base_url + j)
            urls += page.eval_on_selector_all(
                "a[data-drill]",
                "els => [...new Set(els.map(e => e.dataset.drill))].map(k => els.find(e => e.dataset.drill === k).getAttribute('href'))",
            )
    if "/content" in nav:  # each item's page, the authoring form and the review queue where offered
        page.goto(base_url + "/content")
        urls += page.eval_on_selector_all("a[data-item]", "els => els.map(e => e.getAttribute('href'))")
        urls += page.eval_on_selector_all(
            "header.page a[href^='/content/']", "els => els.map(e => e.getAttribute('href'))"
        )
    urls.append("/hcps?q=" + ("王" if role != "rep" else ""))
    return list(dict.fromkeys(urls))


def _crawl(browser, base_url, demo, lang: str) -> dict[str, set[str]]:
    """Each problem found with the pages (and roles) it was found on."""
    i18n.MISSING.clear()
    found: dict[str, set[str]] = {}
    for role in ("admin", "marketer", "analyst", "compliance", demo.rep_username):
        page = login(browser, base_url, demo, role, lang=lang)
        for url in _pages(page, base_url, role):
            page.goto(base_url + url)
            page.wait_for_load_state("networkidle")
            if page.locator("#builder").count():
                page.wait_for_selector("#preview-body")
            if url.endswith("#invalid"):  # the validator's problems beside the conditions
                page.evaluate(
                    f"() => {{ const b = window.medscrmBuilder; b.tree = b.fromDsl({json.dumps(BAD_RULE)}); b.changed(true); }}"
                )
                page.wait_for_selector("#preview-invalid")
                page.wait_for_function("document.querySelectorAll('.node-err:not(:empty)').length >= 3")
            if url == "/journeys/new#problems":  # the validator's problems at their nodes, in the list
                page.wait_for_selector("#editor-graph canvas")
                page.click("#editor-advanced summary")  # the advanced view: the definition's text
                page.fill("#editor-source", json.dumps(BAD_JOURNEY))
                page.wait_for_function("document.querySelectorAll('#editor-problems li').length >= 3")
                page.click("#editor-problems li[data-problem-node=mail]")
                page.wait_for_selector("#editor-panel [data-field-error=content]:not(:empty)")
            if url.endswith("#every"):  # one condition of each kind, valid: a count
                page.evaluate(
                    f"() => {{ const b = window.medscrmBuilder; b.tree = b.fromDsl({json.dumps(EVERY_KIND)}); b.changed(true); }}"
                )
                page.wait_for_selector("#live-count")
                page.wait_for_selector(".cond[data-kind=did]")
            items = page.evaluate(COLLECT_JS)
            where = re.sub(r"/hcps/per_\w+", "/hcps/ID", url.split("?")[0].replace("#", " "))
            for p in zh_problems(items) if lang == "zh" else en_problems(items):
                found.setdefault(p, set()).add(f"{where} ({'rep' if role == demo.rep_username else role})")
        page.context.close()
    for key in sorted(i18n.MISSING):
        found[f"key not in the catalogue: {key}"] = {"i18n.MISSING"}
    return found


def _report(found: dict[str, set[str]]) -> str:
    lines = []
    for problem, where in sorted(found.items()):
        places = sorted(where)
        lines.append(f"{problem}  @ {', '.join(places[:3])}{' …' if len(places) > 3 else ''}")
    return "\n".join(lines)


def test_every_page_in_chinese_shows_no_codes_or_english(browser, base_url, demo):
    found = _crawl(browser, base_url, demo, "zh")
    assert not found, "untranslated text on Chinese pages:\n" + _report(found)


def test_every_page_in_english_shows_no_chinese_labels(browser, base_url, demo):
    found = _crawl(browser, base_url, demo, "en")
    assert not found, "Chinese labels on English pages:\n" + _report(found)


def test_templates_and_scripts_hold_no_chinese_text():
    """Every UI text goes through the catalogue: no Chinese literal in templates, scripts or routes."""
    offenders = []
    for path in [*WEB.rglob("*.html"), *WEB.rglob("*.py"), *(WEB / "static").glob("*.js")]:
        if path.name in ("i18n.py", "i18n_labels.py", "devserver.py"):
            continue
        for no, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            code = line.split("#", 1)[0] if path.suffix == ".py" else line
            if CJK.search(code) and '"""' not in code:
                offenders.append(f"{path.relative_to(WEB)}:{no}: {line.strip()[:100]}")
    assert not offenders, "\n".join(offenders)


def test_a_missing_key_is_recorded_and_shown_as_the_key():
    i18n.MISSING.clear()
    t = i18n.translator("zh")
    assert t("nav.dashboard") == "总览"
    assert t("nope.missing_key") == "nope.missing_key"
    assert {"nope.missing_key"} == i18n.MISSING
    assert t.label("op", "gte") == "大于等于"
    assert t.label("op", "no_such_op") == "no_such_op"
    assert "op.no_such_op" in i18n.MISSING
    i18n.MISSING.clear()

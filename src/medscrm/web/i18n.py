"""The console's message catalogue: zh-CN (default) and English.

One entry per key holds both languages, so a key can never exist in one language only
(``tests/web/test_routes.py`` also checks that every ``t("…")`` used by a template is here).
The language is kept in the ``medscrm_lang`` cookie (``/lang/zh`` or ``/lang/en``).
"""

from __future__ import annotations

import logging

from markupsafe import Markup

from medscrm.web.i18n_labels import LABELS

log = logging.getLogger("medscrm.web")

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"
LANG_COOKIE = "medscrm_lang"

_CATALOGUE: dict[str, tuple[str, str]] = {
    # shell
    "app.title": ("medscrm 控制台", "medscrm console"),
    "nav.dashboard": ("总览", "Dashboard"),
    "nav.hcps": ("医生 360", "HCP 360"),
    "nav.identity": ("身份复核", "Identity review"),
    "nav.segments": ("分群", "Segments"),
    "nav.imports": ("数据导入", "Imports"),
    "nav.audit": ("审计日志", "Audit log"),
    "nav.privacy": ("个人信息请求", "Data-subject requests"),
    "nav.journeys": ("旅程", "Journeys"),
    "nav.content": ("内容库", "Content library"),
    "nav.webhooks": ("Webhook 推送", "Webhooks"),
    "nav.outbox": ("发件箱（演示）", "Outbox (demo)"),
    "nav.compliance": ("发送合规凭证", "Send compliance"),
    "nav.logout": ("退出登录", "Log out"),
    "outbox.title": ("发件箱（演示）", "Outbox (demo)"),
    "outbox.intro": (
        "演示环境中本地邮件和企业微信替身服务收到的消息（{folder}），最新的在前。",
        "Messages the local e-mail and WeCom stand-ins of this demo workspace received ({folder}), newest first.",
    ),
    "outbox.channel": ("渠道", "Channel"),
    "outbox.to": ("收件人", "To"),
    "outbox.subject": ("主题", "Subject"),
    "outbox.text": ("内容", "Text"),
    "outbox.empty": ("还没有消息", "No messages yet"),
    "nav.lang_other": ("English", "中文"),
    "role.admin": ("管理员", "Admin"),
    "role.marketer": ("市场", "Marketer"),
    "role.analyst": ("分析师", "Analyst"),
    "role.rep": ("医药代表", "Rep"),
    "role.compliance": ("合规", "Compliance"),
    # login
    "login.title": ("登录", "Sign in"),
    "login.tenant": ("租户", "Tenant"),
    "login.username": ("用户名", "Username"),
    "login.password": ("密码", "Password"),
    "login.submit": ("登录", "Sign in"),
    "login.failed": ("用户名或密码不正确", "Wrong username or password"),
    "login.required": ("请填写租户、用户名和密码", "Tenant, username and password are required"),
    "login.unknown_tenant": ("租户 “{slug}” 不存在", "There is no tenant “{slug}”"),
    "login.known_tenants": ("已有租户：{known}", "Known tenants: {known}"),
    "login.locked": (
        "登录失败次数过多，请在 {seconds} 秒后重试",
        "Too many failed sign-ins; try again in {seconds} seconds",
    ),
    # errors
    "error.title": ("出错了", "Something went wrong"),
    "error.back": ("返回总览", "Back to the dashboard"),
    "error.400": ("请求无效", "The request is not valid"),
    "error.403": ("您的角色无权访问此页面", "Your role may not open this page"),
    "error.404": ("未找到", "Not found"),
    "error.500": (
        "服务器内部错误，已记录。请稍后再试或联系管理员（参考编号见下）。",
        "An internal error occurred and was logged. Try again later or tell an administrator "
        "(reference below).",
    ),
    "error.csrf": (
        "表单已过期或来源不明（CSRF 校验失败），请刷新页面后重试",
        "The form expired or did not come from this console (CSRF check failed); reload and retry",
    ),
    "error.reference": ("参考编号", "Reference"),
    # common
    "common.none": ("暂无", "None"),
    "common.search": ("搜索", "Search"),
    "common.save": ("保存", "Save"),
    "common.cancel": ("取消", "Cancel"),
    "common.yes": ("是", "Yes"),
    "common.no": ("否", "No"),
    "common.count": ("人数", "Count"),
    "common.source": ("来源", "Source"),
    "common.rule": ("规则", "Rule"),
    "common.value": ("值", "Value"),
    "common.at": ("时间", "At"),
    "common.actions": ("操作", "Actions"),
    "common.details": ("详情", "Details"),
    "common.status": ("状态", "Status"),
    "common.name": ("名称", "Name"),
    "common.key": ("标识", "Key"),
    "common.kind": ("类型", "Kind"),
    "common.next": ("下一页", "Next"),
    "common.prev": ("上一页", "Previous"),
    "common.no_data": ("暂无数据", "No data yet"),
    "common.masked_note": (
        "您的角色看不到明文手机号和邮箱（已脱敏）",
        "Your role does not see phone numbers and e-mail in clear (masked)",
    ),
    # dashboard
    "dash.title": ("总览", "Dashboard"),
    "dash.scope_rep": ("仅显示您负责的医生", "Only the HCPs you own"),
    "dash.hcps": ("医生（HCP）", "HCPs"),
    "dash.patients": ("患者", "Patients"),
    "dash.reach": ("可触达", "Reachable"),
    "dash.reach_help": (
        "有企业微信、微信、手机或邮箱任一联系方式的医生",
        "HCPs with a WeCom, WeChat, mobile or e-mail contact",
    ),
    "dash.active": ("活跃医生（30 天）", "Active HCPs (30 days)"),
    "dash.active_help": ("最近 30 天有行为事件的医生", "HCPs with an event in the last 30 days"),
    "dash.open_reviews": ("待复核身份", "Open identity reviews"),
    "dash.quarantine": ("隔离中的数据", "Quarantined rows"),
    "dash.reach_by_channel": ("各渠道可触达人数", "Reach by channel"),
    "dash.engagement_trend": ("互动趋势（近 12 周事件数）", "Engagement trend (events, last 12 weeks)"),
    "dash.aipl": ("AIPL 漏斗", "AIPL funnel"),
    "dash.lifecycle": ("生命周期分布", "Lifecycle distribution"),
    "dash.tier": ("潜力分级分布", "Tier distribution"),
    "dash.tier_crm": ("CRM 客户等级分布（crm_tier 属性）", "CRM tier distribution (crm_tier attribute)"),
    "dash.top_content": ("热门内容（近 90 天）", "Top content (last 90 days)"),
    "dash.journeys": ("旅程一览", "Journeys at a glance"),
    "dash.needs_scores": (
        "需要行为模型标签（评分服务尚未产生数据）",
        "Needs the behaviour-model tags (the scoring service has produced none yet)",
    ),
    "dash.no_events": ("尚无行为事件", "No events yet"),
    "dash.scores_batch": (
        "标签与评分批量计算：最近一次 {at}（北京时间，{actor}），{persons} 人，变化 {changed} 人；服务每日定时运行",
        "Tags and scores batch: last run {at} (China time, {actor}), {persons} persons, {changed} changed; "
        "the server runs it daily",
    ),
    "dash.scores_batch_never": (
        "标签与评分批量计算尚未运行：服务启动后将自动运行，或执行 medscrm scores refresh",
        "The tags and scores batch has not run yet: the server runs it once started, or run medscrm scores refresh",
    ),
    "dash.no_journeys": ("旅程模块尚未启用", "The journeys module is not installed"),
    "dash.events": ("事件数", "Events"),
    "dash.persons": ("人数", "Persons"),
    "dash.sources": ("数据来源", "Sources"),
    # HCP search and profile
    "hcps.title": ("医生 360", "HCP 360"),
    "hcps.q": ("姓名 / 手机 / 邮箱 / ID", "Name / mobile / e-mail / id"),
    "hcps.hospital": ("医院", "Hospital"),
    "hcps.department": ("科室", "Department"),
    "hcps.type": ("人员类型", "Person type"),
    "hcps.type_any": ("全部", "All"),
    "hcps.results": ("搜索结果", "Results"),
    "hcps.no_results": ("没有匹配的人", "No one matches"),
    "field.name": ("姓名", "Name"),
    "field.hospital": ("医院", "Hospital"),
    "field.department": ("科室", "Department"),
    "field.title": ("职称", "Title"),
    "field.city": ("城市", "City"),
    "field.phone": ("手机", "Mobile"),
    "field.email": ("邮箱", "E-mail"),
    "field.tier": ("分级", "Tier"),
    "field.gender": ("性别", "Gender"),
    "field.province": ("省份", "Province"),
    "field.license_no": ("执业证书编码", "Licence no."),
    "profile.attributes": ("黄金记录（主数据）与来源", "Golden record with its sources"),
    "profile.attribute": ("属性", "Attribute"),
    "profile.conflicts": ("其他来源的值", "Other values seen"),
    "profile.identities": ("身份标识", "Identities"),
    "profile.records": ("源记录", "Source records"),
    "profile.tags": ("标签（及原因）", "Tags (and why)"),
    "profile.segments": ("所属分群", "Segments"),
    "profile.consents": ("授权同意", "Consents"),
    "profile.no_consents": ("没有授权记录", "No consent records"),
    "profile.consent_module_missing": ("授权模块尚未启用", "The consent module is not installed"),
    "profile.owner": ("负责代表", "Rep owner"),
    "profile.no_owner": ("无负责代表", "No rep owner"),
    "profile.timeline": ("时间线", "Timeline"),
    "profile.no_timeline": ("暂无记录", "Nothing yet"),
    "profile.tier": ("分级", "Tier"),
    "profile.stage": ("阶段", "Stage"),
    "profile.scores": ("评分", "Scores"),
    "profile.type": ("类型", "Type"),
    "profile.unmerge": ("拆分所选源记录为新的人", "Split the selected records into a new person"),
    "profile.unmerge_help": (
        "拆分后，以后的身份识别不会再把它们合并回来",
        "Later identity runs will keep them apart",
    ),
    "profile.unmerged": ("已拆分为新的人", "Split into a new person"),
    "tl.event": ("行为", "Event"),
    "tl.record": ("源记录到达", "Record received"),
    "tl.tag": ("标签变化", "Tag changed"),
    "tl.segment": ("分群", "Segment"),
    "tl.identity": ("身份", "Identity"),
    "tl.consent": ("授权", "Consent"),
    "tl.entered": ("进入", "entered"),
    "tl.exited": ("退出", "left"),
    # identity review
    "idr.title": ("身份复核：疑似同一人", "Identity review: possibly the same person"),
    "idr.probability": ("匹配概率", "Match probability"),
    "idr.reasons": ("逐字段证据", "Evidence by field"),
    "idr.merge": ("合并", "Merge"),
    "idr.reject": ("不是同一人", "Not the same"),
    "idr.merged": ("已合并", "Merged"),
    "idr.revoke": ("撤销拒绝", "Revoke rejection"),
    "idr.revoke_hint": (
        "撤销“不是同一人”的决定，这一对重新进入待审核",
        "Take back “not the same person”: the pair is open for review again",
    ),
    "idr.rejected": ("已标记为不同的人", "Marked as different people"),
    "idr.empty": ("没有待复核的配对", "No pairs to review"),
    "idr.record_a": ("记录 A", "Record A"),
    "idr.record_b": ("记录 B", "Record B"),
    "idr.decided": ("最近的决定", "Recent decisions"),
    "idr.open_person": ("查看此人（可拆分）", "Open the person (to unmerge)"),
    "idr.agree": ("一致", "agrees"),
    "idr.differ": ("不同", "differs"),
    "idr.missing": ("缺失", "missing"),
    # segments
    "seg.title": ("分群", "Segments"),
    "seg.new": ("新建分群", "New segment"),
    "seg.builder": ("分群规则编辑器", "Segment builder"),
    "seg.add_condition": ("+ 条件", "+ Condition"),
    "seg.add_group": ("+ 条件组", "+ Group"),
    "seg.remove": ("删除", "Remove"),
    "seg.all_of": ("满足全部（且）", "All of (AND)"),
    "seg.any_of": ("满足任一（或）", "Any of (OR)"),
    "seg.negate": ("取反（非）", "Not"),
    "seg.kind_attr": ("属性", "Attribute"),
    "seg.kind_tag": ("标签", "Tag"),
    "seg.kind_event": ("行为次数", "Event count"),
    "seg.kind_did_not": ("未发生行为", "Did not"),
    "seg.kind_segment": ("属于分群", "In segment"),
    "seg.kind_person_type": ("人员类型", "Person type"),
    "seg.last_days": ("最近天数", "Last N days"),
    "seg.live_count": ("实时人数", "Live count"),
    "seg.sample": ("样例", "Sample"),
    "seg.json": ("规则 JSON（DSL）", "Rule JSON (DSL)"),
    "seg.save": ("保存分群", "Save segment"),
    "seg.saved": ("已保存", "Saved"),
    "seg.export": ("导出 CSV", "Export CSV"),
    "seg.members": ("成员", "Members"),
    "seg.version": ("版本", "Version"),
    "seg.refreshed": ("刷新于", "Refreshed"),
    "seg.static": ("静态", "static"),
    "seg.dynamic": ("动态", "dynamic"),
    "seg.invalid": ("规则有误，请查看标红的条件", "The rule has problems; see the marked conditions"),
    "seg.edit": ("编辑", "Edit"),
    "seg.read_only": ("您的角色只能预览，不能保存", "Your role may preview but not save"),
    # imports
    "imp.title": ("数据导入", "Imports"),
    "imp.upload": ("上传文件", "Upload a file"),
    "imp.file": ("文件（CSV / TSV / XLSX / JSONL / Parquet）", "File (CSV / TSV / XLSX / JSONL / Parquet)"),
    "imp.source": ("数据来源名称", "Source name"),
    "imp.mapping": ("字段映射", "Column mapping"),
    "imp.mapping_auto": ("自动（按列名同义词识别）", "Automatic (column-name synonyms)"),
    "imp.mapping_file": ("上传映射 YAML", "Upload a mapping YAML"),
    "imp.person_type": ("默认人员类型", "Default person type"),
    "imp.submit": ("导入", "Import"),
    "imp.report": ("校验报告", "Validation report"),
    "imp.total": ("总行数", "Rows"),
    "imp.accepted": ("已导入", "Imported"),
    "imp.duplicate": ("重复", "Duplicates"),
    "imp.rejected": ("已隔离", "Quarantined"),
    "imp.refused": ("文件被拒绝", "File refused"),
    "imp.bad_type": (
        "不支持的文件类型 {ext}：请上传 .csv、.tsv、.xlsx、.jsonl 或 .parquet",
        "Unsupported file type {ext}: upload .csv, .tsv, .xlsx, .jsonl or .parquet",
    ),
    "imp.too_large": (
        "文件过大（上限 {limit} 字节）",
        "The file is too large (limit {limit} bytes)",
    ),
    "imp.no_file": ("请选择一个文件", "Choose a file"),
    "imp.bad_source": ("来源名称需为 1–100 个字符", "The source name needs 1–100 characters"),
    "imp.mapping_needed": ("请选择映射 YAML 文件", "Choose a mapping YAML file"),
    "imp.recent": ("最近的导入", "Recent imports"),
    "imp.warnings": ("提示", "Warnings"),
    "imp.row": ("行号", "Row"),
    "imp.field": ("字段", "Field"),
    "imp.code": ("原因代码", "Code"),
    "imp.reason": ("原因", "Reason"),
    "imp.file_name": ("文件", "File"),
    "q.title": ("隔离区", "Quarantine"),
    "q.fix": ("保存修改", "Save fix"),
    "q.replay": ("重新导入", "Replay"),
    "q.replay_all": ("重新导入全部已修改条目", "Replay every fixed entry"),
    "q.fixed": ("已保存修改", "Fix saved"),
    "q.replayed": ("重新导入结果", "Replay result"),
    "q.empty": ("隔离区是空的", "The quarantine is empty"),
    "q.open_count": ("待处理条目", "Open entries"),
    # webhooks
    "wh.title": ("Webhook 推送", "Webhooks"),
    "wh.intro": (
        "数据变化时，medscrm 会向下列地址发送带签名的 HTTP POST 请求（失败自动重试）。",
        "When data changes, medscrm sends a signed HTTP POST to these endpoints (retried when it fails).",
    ),
    "wh.subscriptions": ("订阅", "Subscriptions"),
    "wh.url": ("接收地址", "Endpoint URL"),
    "wh.description": ("说明", "Description"),
    "wh.topics": ("事件类型", "Event types"),
    "wh.last_delivery": ("最近投递", "Last delivery"),
    "wh.no_deliveries": ("尚无投递", "No deliveries yet"),
    "wh.active": ("启用", "Active"),
    "wh.paused": ("已暂停", "Paused"),
    "wh.paused_note": (
        "订阅已暂停：新事件照常排队，恢复后再投递。",
        "The subscription is paused: new events are queued and delivered once it is resumed.",
    ),
    "wh.pause": ("暂停", "Pause"),
    "wh.resume": ("恢复", "Resume"),
    "wh.rotate": ("更换密钥", "Rotate secret"),
    "wh.rotate_confirm": (
        "更换签名密钥？旧密钥立即失效。",
        "Rotate the signing secret? The old one stops working at once.",
    ),
    "wh.delete": ("删除", "Delete"),
    "wh.delete_confirm": (
        "删除此订阅及其全部投递记录？",
        "Delete this subscription with all its deliveries?",
    ),
    "wh.empty": ("尚无订阅", "No subscriptions yet"),
    "wh.create": ("新建订阅", "New subscription"),
    "wh.create_submit": ("创建", "Create"),
    "wh.err_no_topics": ("events：请至少选择一种事件类型", "events: choose at least one event type"),
    "wh.secret_title": ("签名密钥", "Signing secret for"),
    "wh.secret_once": (
        "请立即复制并妥善保存：此密钥只显示这一次，用于校验 X-Medscrm-Signature 请求头。",
        "Copy it now and keep it safe: it is shown this once, and verifies the X-Medscrm-Signature header.",
    ),
    "wh_event.all": ("全部事件", "every event"),
    "wh_event.person_merged": ("人员合并", "persons merged"),
    "wh_event.person_split": ("人员拆分", "person split"),
    "wh_event.segment_entered": ("进入分群", "entered a segment"),
    "wh_event.segment_exited": ("退出分群", "left a segment"),
    "wh_event.consent_changed": ("授权变更", "consent changed"),
    "wh_event.send_blocked": ("发送被拦截", "send blocked"),
    "wh_event.send_sent": ("已发送", "send sent"),
    "wh_event.send_delivered": ("已送达", "send delivered"),
    "wh_event.send_failed": ("发送失败", "send failed"),
    "wh.log_title": ("投递记录", "Delivery log"),
    "wh.back": ("返回订阅列表", "Back to the subscriptions"),
    "wh.created": ("创建时间", "Created"),
    "wh.event": ("事件", "Event"),
    "wh.attempts": ("尝试次数", "Attempts"),
    "wh.attempt_log": ("每次尝试", "Each attempt"),
    "wh.last_code": ("最近状态码", "Last status code"),
    "wh.last_error": ("最近错误", "Last error"),
    "wh.updated": ("更新时间", "Updated"),
    "wh.delivered_at": ("送达时间", "Delivered at"),
    "wh.replay": ("重新投递", "Replay"),
    "wh.replayed": ("已重新排队投递", "Queued again:"),
    "wh_status.pending": ("待投递", "Pending"),
    "wh_status.delivering": ("投递中", "Delivering"),
    "wh_status.delivered": ("已送达", "Delivered"),
    "wh_status.dead": ("已放弃", "Gave up"),
    # audit
    "audit.title": ("审计日志", "Audit log"),
    "cmp.title": ("发送合规凭证", "Proof of every send"),
    "cmp.link": ("发送合规凭证", "Proof of its sends"),
    "cmp.intro": (
        "每条消息（已发送或被拦截）依据的授权同意、内容审批及各项发送检查。每次查看均记入审计日志。",
        "For each message, sent or blocked: the consent it relied on, the content approval and each send check. Every view is audited.",
    ),
    "cmp.journey": ("旅程", "Journey"),
    "cmp.any_journey": ("（任意旅程）", "(any journey)"),
    "cmp.person_id": ("人员编号", "Person id"),
    "cmp.csv_api": ("导出 CSV（接口）", "Export CSV (API)"),
    "cmp.person": ("人员", "Person"),
    "cmp.channel": ("渠道", "Channel"),
    "cmp.status": ("状态", "Status"),
    "cmp.consent_version": ("授权同意版本", "Consent version"),
    "cmp.version": ("第 {n} 版", "version {n}"),
    "cmp.approval": ("内容审批编号", "Approval code"),
    "cmp.expires": ("有效期至", "expires"),
    "cmp.never": ("长期有效", "never"),
    "cmp.none": ("无", "none"),
    "cmp.checks": ("发送检查", "Checks"),
    "cmp.at_dispatch": ("发出前复核", "re-checked at dispatch"),
    "cmp.empty": (
        "请选择旅程或输入人员编号；没有可显示的发送记录。",
        "Choose a journey or enter a person id; no sends to show.",
    ),
    # data-subject requests (PIPL Arts. 44–47)
    "privacy.title": ("个人信息主体请求", "Data-subject requests"),
    "privacy.intro": (
        "按任一标识查找个人（手机、邮箱、企业微信外部联系人、OpenID、执业证号、记录 ID），查看所持数据，"
        "导出副本、限制处理、法律保全或删除（《个人信息保护法》第 44–47 条）。",
        "Find a person by any identifier (phone, e-mail, WeCom external contact, OpenID, licence number, "
        "record id), see what is held, export a copy, restrict processing, put on legal hold or erase "
        "(PIPL Arts. 44–47).",
    ),
    "privacy.identifier": (
        "手机 / 邮箱 / 企业微信 ID / OpenID / 执业证号 / 个人或记录 ID",
        "Phone / e-mail / WeCom id / OpenID / licence / person or record id",
    ),
    "privacy.kind": ("标识类型", "Identifier type"),
    "privacy.kind_auto": ("自动识别", "Detect"),
    "privacy.kind_person_id": ("个人 ID", "Person id"),
    "privacy.kind_source_record": ("来源记录 ID", "Source-record id"),
    "privacy.kind_phone": ("手机", "Phone"),
    "privacy.kind_email": ("邮箱", "E-mail"),
    "privacy.kind_license_no": ("执业证号", "Licence number"),
    "privacy.kind_wecom": ("企业微信外部联系人", "WeCom external userid"),
    "privacy.kind_openid": ("微信 OpenID", "WeChat OpenID"),
    "privacy.kind_unionid": ("微信 UnionID", "WeChat UnionID"),
    "privacy.kind_user_id": ("事件用户 ID", "Event user id"),
    "privacy.lookup": ("查找", "Look up"),
    "privacy.not_found": ("未找到：{detail}。未做任何更改。", "Not found: {detail}. Nothing was changed."),
    "privacy.person_gone": (
        "该个人已不存在（可能已被删除）。",
        "This person no longer exists (perhaps erased).",
    ),
    "privacy.person": ("个人", "Person"),
    "privacy.total": ("共 {n} 行数据", "{n} rows held"),
    "privacy.table": ("数据表", "Table"),
    "privacy.rows": ("行数", "Rows"),
    "privacy.restricted": ("已限制处理", "Processing restricted"),
    "privacy.legal_hold": ("法律保全", "Legal hold"),
    "privacy.reason": ("原因 / 请求编号", "Reason / request reference"),
    "privacy.export": ("下载导出（ZIP）", "Download export (ZIP)"),
    "privacy.restrict": ("限制处理", "Restrict processing"),
    "privacy.lift": ("解除限制", "Lift restriction"),
    "privacy.hold": ("法律保全", "Put on legal hold"),
    "privacy.release": ("解除保全", "Release legal hold"),
    "privacy.erase": ("永久删除", "Erase permanently"),
    "privacy.erase_confirm": (
        "删除不可撤销。请输入个人 ID {id} 以确认：",
        "Erasure cannot be undone. Type the person id {id} to confirm:",
    ),
    "privacy.confirm_mismatch": (
        "确认内容与个人 ID 不一致，未删除。",
        "The confirmation does not match the person id: nothing was erased.",
    ),
    "privacy.refused_hold": ("已拒绝删除：{why}", "Erasure refused: {why}"),
    "privacy.certificate": ("删除证明", "Erasure certificate"),
    "privacy.log": ("请求记录", "Request log"),
    "privacy.request": ("请求", "Request"),
    "privacy.status": ("状态", "Status"),
    "privacy.status_received": ("已受理", "Received"),
    "privacy.status_done": ("已完成", "Done"),
    "privacy.status_refused": ("已拒绝", "Refused"),
    "privacy.status_failed": ("失败", "Failed"),
    "privacy.kind_req_export": ("导出", "Export"),
    "privacy.kind_req_correct": ("更正", "Correct"),
    "privacy.kind_req_erase": ("删除", "Erase"),
    "privacy.kind_req_restrict": ("限制处理", "Restrict"),
    "privacy.kind_req_lift": ("解除限制", "Lift"),
    "privacy.kind_req_hold": ("法律保全", "Hold"),
    "privacy.kind_req_release": ("解除保全", "Release"),
    "privacy.done_export": ("已导出。", "Exported."),
    "privacy.done_correct": ("已更正。", "Corrected."),
    "privacy.done_erase": ("已删除，删除证明已生成。", "Erased; the certificate is ready."),
    "privacy.done_restrict": (
        "已限制处理：不再进入分群、旅程或发送。",
        "Processing restricted: no segment, journey step or send.",
    ),
    "privacy.done_lift": ("已解除限制。", "Restriction lifted."),
    "privacy.done_hold": ("已设置法律保全：删除将被拒绝。", "Legal hold set: erasure will be refused."),
    "privacy.done_release": ("已解除法律保全。", "Legal hold released."),
    "audit.actor": ("操作人", "Actor"),
    "audit.action": ("操作", "Action"),
    "audit.object": ("对象", "Object"),
    "audit.detail": ("详情", "Detail"),
    "audit.filter_action": ("操作代码前缀", "Action code prefix, e.g. profile."),
    "audit.filter_actor": ("操作人", "Actor"),
    # journeys and content
    "jr.title": ("旅程", "Journeys"),
    "jr.status": ("状态", "Status"),
    "jr.version": ("版本", "Version"),
    "jr.start": ("启动", "Start"),
    "jr.start_title": ("启动旅程 {journey}", "Start journey {journey}"),
    "jr.enrol_current": (
        "立即纳入分群现有成员：{n} 人（分群 {segments}）",
        "Enrol current members now: {n} persons (segment {segments})",
    ),
    "jr.enrol_current_hint": (
        "不勾选则只有启动后新进入分群的人会进入旅程。重复进入规则和上限照常适用；同意与免打扰在每次发送时检查。",
        "Unticked, only persons who enter the segment after the start join. Re-entry rules and caps apply "
        "as usual; consent and do-not-contact are checked at every send.",
    ),
    "jr.no_entry_segment": (
        "此旅程没有“进入分群”触发器：启动后按触发器纳入。",
        "This journey has no segment-entry trigger: persons join through its triggers after the start.",
    ),
    "jr.pause": ("暂停", "Pause"),
    "jr.resume": ("恢复", "Resume"),
    "jr.steps": ("步骤统计", "Step statistics"),
    "jr.entered": ("进入", "Entered"),
    "jr.waiting": ("等待中", "Waiting"),
    "jr.sent": ("已发送", "Sent"),
    "jr.blocked": ("被拦截", "Blocked"),
    "jr.converted": ("转化", "Converted"),
    "jr.empty": ("还没有旅程", "No journeys yet"),
    "jr.graph": ("旅程图", "Journey graph"),
    "ct.title": ("内容库", "Content library"),
    "ct.status": ("审批状态", "Approval status"),
    "ct.expires": ("到期", "Expires"),
    "ct.expiring": ("即将到期（30 天内）", "Expiring within 30 days"),
    "ct.expired": ("已过期", "Expired"),
    "ct.approval_code": ("审批编号", "Approval code"),
    "ct.performance": ("表现（发送 / 拦截）", "Performance (sent / blocked)"),
    "ct.empty": ("内容库是空的", "The content library is empty"),
    # content authoring and MLR review (/content/new, /content/<id>, /content/review)
    "ct.new": ("新建内容", "New content"),
    "ct.edit_title": ("编辑草稿", "Edit draft"),
    "ct.back": ("返回", "Back"),
    "ct.back_to_library": ("返回内容库", "Back to the library"),
    "ct.review_queue": ("待审批", "Review queue"),
    "ct.review_intro": (
        "已提交审批的内容，按提交时间排列。作者和提交人不能审批自己的内容（四眼原则）。",
        "Items submitted for MLR review, oldest first. Neither the author nor the submitter may approve "
        "an item (four-eyes rule).",
    ),
    "ct.review_empty": ("没有待审批的内容", "Nothing is waiting for review"),
    "ct.review": ("审阅", "Review"),
    "ct.own_item": ("您写作或提交的内容", "Written or submitted by you"),
    "ct.created_by": ("创建人", "Created by"),
    "ct.submitted": ("提交审批", "Submitted for review"),
    "ct.approved_by": ("批准人", "Approved by"),
    "ct.review_note": ("审批意见", "Review note"),
    "ct.details": ("内容信息", "Details"),
    "ct.sendable": ("能否发送", "Sendable"),
    "ct.sendable_yes": ("可以发送", "Sendable now"),
    "ct.actions": ("可执行的操作", "What you can do"),
    "ct.no_actions": ("您的角色对此内容没有可执行的操作。", "Your role has no action on this item."),
    "ct.edit": ("编辑草稿", "Edit draft"),
    "ct.save_draft": ("保存草稿", "Save draft"),
    "ct.submit": ("提交审批", "Submit for review"),
    "ct.submit_hint": (
        "提交后内容不能再编辑，直到合规审批人批准或驳回。",
        "Once submitted the item cannot be edited until compliance approves or rejects it.",
    ),
    "ct.approve_title": ("批准（医学、法规、合规审核）", "Approve (medical, legal and regulatory review)"),
    "ct.approval_code_hint": (
        "审批编号由审核流程给出，最多 100 个字符。",
        "The code your MLR process issued, up to 100 characters.",
    ),
    "ct.approval_expires": ("批准有效期至", "Approval valid until"),
    "ct.approve": ("批准", "Approve"),
    "ct.reject_title": ("驳回为草稿", "Send back to draft"),
    "ct.reject_reason": ("驳回原因", "Reason"),
    "ct.reject": ("驳回", "Reject"),
    "ct.withdraw_title": ("撤回内容", "Withdraw the item"),
    "ct.withdraw_reason": ("撤回原因（可选）", "Reason (optional)"),
    "ct.withdraw": ("撤回", "Withdraw"),
    "ct.withdraw_hint": (
        "撤回后此内容不能再发送，所有排队中的发送会被取消。",
        "A withdrawn item is never sent again; every queued send of it is cancelled.",
    ),
    "ct.withdraw_confirm": (
        "确定撤回此内容？排队中的发送将被取消。",
        "Withdraw this item? Its queued sends are cancelled.",
    ),
    "ct.history": ("历史记录", "History"),
    "ct.reason": ("原因", "Reason"),
    "ct.changed": ("修改了", "Changed"),
    "ct.uses": ("使用此内容的旅程", "Journeys that send it"),
    "ct.no_uses": ("还没有旅程使用此内容", "No journey sends this item yet"),
    "ct.preview": ("预览", "Preview"),
    "ct.preview_note": (
        "以示例收件人预览；发送时替换为收件人的姓名、医院，链接替换为可追踪链接。",
        "Shown for a sample recipient; when sent, the recipient's name and hospital are filled in and the "
        "link becomes a tracked link.",
    ),
    "ct.preview_error": (
        "模板无法渲染，发送时会失败",
        "The template cannot be rendered; sending it would fail",
    ),
    "ct.sms_count": ("{n} 个字，按 {parts} 条短信计费", "{n} characters, billed as {parts} SMS"),
    "ct.sample_name": ("张伟", "Zhang Wei"),
    "ct.sample_title": ("主任医师", "Chief physician"),
    "ct.sample_hospital": ("上海市第一人民医院", "Shanghai First People's Hospital"),
    "ct.sample_department": ("心血管内科", "Cardiology"),
    "ct.form_has_errors": ("内容未保存，请修改标出的项", "Not saved: correct the marked fields"),
    "ct.key_hint": (
        "唯一标识，1–64 个小写字母、数字或 _ - . 组成，创建后不能修改",
        "A unique key of 1–64 lower-case letters, digits, _ - or . (it cannot change later)",
    ),
    "ct.rx_hint": (
        "处方药内容只能面向医生，并且必须填写产品。",
        "Prescription-drug content is for HCPs only and must name its product.",
    ),
    "ct.topics_hint": ("用逗号分隔多个主题", "Separate topics with commas"),
    "ct.body_hint": ("可以使用以下变量：", "You may use these variables:"),
    "ct.url_hint": ("发送时会替换为可追踪链接", "Sent as a tracked link"),
    "ct.template_hint": (
        "服务商模板（短信模板编号等），JSON 格式，例如：",
        "Provider templates (an SMS template code …) as JSON, e.g.",
    ),
    "ct.done_created": ("草稿已创建。", "Draft created."),
    "ct.done_updated": ("草稿已保存。", "Draft saved."),
    "ct.done_submit": ("已提交审批。", "Submitted for review."),
    "ct.done_approve": ("已批准：此内容现在可以发送。", "Approved: the item may now be sent."),
    "ct.done_reject": ("已驳回为草稿。", "Sent back to draft."),
    "ct.done_withdrawn": ("已撤回，取消了 {n} 条排队中的发送。", "Withdrawn; {n} queued sends cancelled."),
    "ctf.key": ("标识", "Key"),
    "ctf.title": ("标题", "Title"),
    "ctf.kind": ("内容类型", "Kind"),
    "ctf.audience": ("受众", "Audience"),
    "ctf.therapy_area": ("治疗领域", "Therapy area"),
    "ctf.product": ("产品", "Product"),
    "ctf.prescription": ("处方药内容", "Prescription-drug content"),
    "ctf.topics": ("主题", "Topics"),
    "ctf.subject": ("邮件主题", "E-mail subject"),
    "ctf.body": ("正文", "Body"),
    "ctf.url": ("链接", "Link"),
    "ctf.template": ("服务商模板", "Provider template"),
    "ctf.valid_from": ("生效日期", "Valid from"),
    "ctf.expires_at": ("到期日期", "Expires on"),
    "ctf.approval_code": ("审批编号", "Approval code"),
    "ctf.reason": ("原因", "Reason"),
    "ctf.status": ("状态", "Status"),
    "cterr.key.format": (
        "只能由 1–64 个小写字母、数字或 _ - . 组成，并以字母或数字开头",
        "use 1–64 lower-case letters, digits, _ - or ., starting with a letter or digit",
    ),
    "cterr.key.taken": ("此标识已被其他内容使用", "another item already uses this key"),
    "cterr.title.required": ("请填写标题（1–300 个字）", "a title of 1–300 characters is required"),
    "cterr.kind.choice": ("请选择列表中的内容类型", "choose a kind from the list"),
    "cterr.audience.choice": ("请选择列表中的受众", "choose an audience from the list"),
    "cterr.audience.rx_hcp_only": (
        "处方药内容只能面向医生（《广告法》第十五条）",
        "prescription-drug content may only be for HCPs (Advertising Law Art. 15)",
    ),
    "cterr.product.rx_product": ("处方药内容必须填写产品", "prescription-drug content must name its product"),
    "cterr.body.required": (
        "请填写正文、链接或服务商模板中的至少一项",
        "give a body, a link or a provider template",
    ),
    "cterr.subject.too_long": ("邮件主题最多 300 个字", "a subject of at most 300 characters"),
    "cterr.url.scheme": (
        "请填写完整网址，例如 https://example.com/guide",
        "give a full address, e.g. https://example.com/guide",
    ),
    "cterr.expires_at.before_start": ("到期日期必须晚于生效日期", "must be after the valid-from date"),
    "cterr.expires_at.past": ("批准有效期必须是将来的日期", "the approval must expire on a future date"),
    "cterr.expires_at.required": (
        "请填写批准有效期（批准都有期限）",
        "give the approval's expiry date (approvals are time-limited)",
    ),
    "cterr.approval_code.required": (
        "请填写审批编号（1–100 个字符）",
        "give the approval code (1–100 characters)",
    ),
    "cterr.reason.required": ("请填写驳回原因", "say why the item is sent back"),
    "cterr.date": ("请选择日期", "pick a date"),
    "cterr.json": ("服务商模板必须是 JSON 对象", "the provider template must be a JSON object"),
    "cterr.timezone": ("时间缺少时区", "the time needs a time zone"),
    "cterr.four_eyes": (
        "四眼原则：您创建或提交了此内容，不能自己批准，请由另一位合规审批人批准。",
        "Four-eyes rule: you wrote or submitted this item, so you cannot approve it; another compliance "
        "reviewer must.",
    ),
    "cterr.role": ("只有合规角色可以审批内容", "Only the compliance role reviews content"),
    "cterr.transition": (
        "当前状态不允许此操作（可能已被他人处理，请刷新页面）",
        "The item's current status does not allow this (someone may have acted on it: reload the page)",
    ),
    "cterr.not_draft": (
        "只有草稿可以编辑；请先驳回为草稿",
        "Only a draft can be edited; send it back to draft first",
    ),
}

_CATALOGUE.update(LABELS)

MESSAGES: dict[str, dict[str, str]] = {
    lang: {k: v[i] for k, v in _CATALOGUE.items()} for i, lang in enumerate(LANGS)
}


def pick_lang(value: str | None) -> str:
    return value if value in LANGS else DEFAULT_LANG


#: Keys asked for and not in the catalogue (the console's language test fails on any); each is logged once.
MISSING: set[str] = set()


class Translator:
    """``t(key, **kw)`` in one language; a missing key shows as the key itself and is recorded in
    :data:`MISSING`. ``t.label(group, code)`` names a code (a field, operator, status, reason …)
    through the key ``group.code``."""

    def __init__(self, lang: str) -> None:
        self.lang = pick_lang(lang)
        self._cat = MESSAGES[self.lang]

    def has(self, key: str) -> bool:
        return key in self._cat

    def __call__(self, key: str, **kw: object) -> str:
        text = self._cat.get(key)
        if text is None:
            if key not in MISSING:
                log.warning("console text %r is not in the catalogue", key)
                MISSING.add(key)
            text = key
        return text.format(**kw) if kw else text

    def label(self, group: str, code: object) -> str:
        """The label of ``code`` in ``group`` (``op``/``gte`` → 大于等于); the code itself if unknown."""
        if code is None or code == "":
            return ""
        key = f"{group}.{code}"
        text = self._cat.get(key)
        if text is None:
            if key not in MISSING:
                log.warning("console label %r is not in the catalogue", key)
                MISSING.add(key)
            return str(code)
        return text

    def markup(self, key: str, **kw: object) -> Markup:
        """``t(key, **kw)`` as HTML: the catalogue text is trusted, the values are escaped unless they
        are :class:`Markup` themselves (e.g. a data value marked ``translate="no"``)."""
        return Markup(self(key)).format(**kw)

    def labels(self, group: str) -> dict[str, str]:
        """Every label of ``group`` (code → text), for the browser side."""
        prefix = group + "."
        return {k[len(prefix) :]: v for k, v in self._cat.items() if k.startswith(prefix)}


def translator(lang: str) -> Translator:
    return Translator(lang)

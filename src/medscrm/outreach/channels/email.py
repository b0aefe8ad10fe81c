"""E-mail over SMTP (stdlib ``smtplib``). ``Message-ID: <send_id@medscrm>`` carries our send id."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from medscrm.outreach.channels import ChannelError, Delivery, Handoff, HandoffRefused, OutMessage


def message_id(send_id: str) -> str:
    return f"<{send_id}@medscrm>"


class SmtpChannel:
    """Settings: host, port (25), from_addr, username/password (AUTH, optional), starttls (false),
    ssl (false), timeout (30 s)."""

    def build(self, msg: OutMessage, cfg: dict[str, Any]) -> EmailMessage:
        em = EmailMessage()
        em["From"] = cfg.get("from_addr") or "noreply@medscrm.local"
        em["To"] = msg.to
        em["Subject"] = msg.subject or msg.title or ""
        em["Date"] = formatdate(localtime=False)
        em["Message-ID"] = message_id(msg.send_id)
        em["X-Medscrm-Send-Id"] = msg.send_id
        em["List-Unsubscribe"] = f"<mailto:{cfg.get('unsubscribe_addr') or em['From']}?subject=unsubscribe>"
        em.set_content(msg.text or "")
        if msg.html:
            em.add_alternative(msg.html, subtype="html")
        return em

    def send(self, msg: OutMessage, cfg: dict[str, Any], handoff: Handoff | None = None) -> Delivery:
        """MAIL, RCPT, DATA and the message body go out first; ``handoff()`` is called (and must
        return True) just before the final ``.`` that makes the server accept the message. A crash
        before that point leaves an unterminated DATA, which the server discards."""
        if not cfg.get("host"):
            raise ChannelError("smtp: no host configured", retryable=False, code="no_credentials")
        em = self.build(msg, cfg)
        host, port = cfg["host"], int(cfg.get("port") or 25)
        timeout = float(cfg.get("timeout") or 30)
        try:
            cls = smtplib.SMTP_SSL if cfg.get("ssl") else smtplib.SMTP
            with cls(host, port, timeout=timeout) as smtp:
                if cfg.get("starttls"):
                    smtp.starttls()
                if cfg.get("username"):
                    _login(smtp, str(cfg["username"]), str(cfg.get("password") or ""))
                _transaction(
                    smtp,
                    str(em["From"]),
                    [str(msg.to)],
                    em.as_bytes(policy=em.policy.clone(linesep="\r\n")),
                    handoff,
                )
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise ChannelError(
                f"smtp {code}: recipient refused: {_txt(text)}", retryable=code < 500, code=str(code)
            ) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise ChannelError(
                f"smtp {exc.smtp_code}: authentication failed: {_txt(exc.smtp_error)}",
                code=str(exc.smtp_code),
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise ChannelError(
                f"smtp {exc.smtp_code}: {_txt(exc.smtp_error)}",
                retryable=exc.smtp_code < 500,
                code=str(exc.smtp_code),
            ) from None
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise ChannelError(f"smtp: {type(exc).__name__}: {exc}", code="connection") from None
        return Delivery(provider_message_id=message_id(msg.send_id))


def _transaction(
    smtp: smtplib.SMTP, sender: str, rcpts: list[str], data: bytes, handoff: Handoff | None
) -> None:
    """``smtplib.SMTP.sendmail`` split open at the end of DATA."""
    smtp.ehlo_or_helo_if_needed()
    code, resp = smtp.mail(sender)
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, resp, sender)
    for r in rcpts:
        code, resp = smtp.rcpt(r)
        if code not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({r: (code, resp)})
    code, resp = smtp.docmd("data")
    if code != 354:
        raise smtplib.SMTPDataError(code, resp)
    q = smtplib._quote_periods(data)  # noqa: SLF001 - the stdlib's own dot-stuffing
    if q[-2:] != b"\r\n":
        q += b"\r\n"
    smtp.send(q)
    if handoff is not None and not handoff():
        smtp.close()  # the send was cancelled or re-claimed meanwhile: drop the unterminated DATA
        raise HandoffRefused("the send was cancelled or taken over before the hand-off")
    smtp.send(b".\r\n")
    code, resp = smtp.getreply()
    if code != 250:
        raise smtplib.SMTPDataError(code, resp)


def _txt(v: bytes | str) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v)


def _login(smtp: smtplib.SMTP, user: str, password: str) -> None:
    """One AUTH attempt with the best advertised mechanism (PLAIN, then LOGIN); no fall-through to
    other mechanisms after a refusal (that only multiplies failed logins on the server)."""
    smtp.ehlo_or_helo_if_needed()
    advertised = (smtp.esmtp_features.get("auth") or "").upper().split()
    smtp.user, smtp.password = user, password
    for mech, fn in (("PLAIN", smtp.auth_plain), ("LOGIN", smtp.auth_login)):
        if mech in advertised:
            smtp.auth(mech, fn, initial_response_ok=mech == "PLAIN")
            return
    smtp.login(user, password)

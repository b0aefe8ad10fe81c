"""Console static files and the language switch."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from medscrm.common import NotFound
from medscrm.web.i18n import LANG_COOKIE, LANGS
from medscrm.web.routes.base import STATIC, ConsoleRoute, _safe_next

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


@router.get("/static/{name:path}")
def static_file(name: str) -> Response:
    try:
        path = (STATIC / name).resolve()
        found = STATIC.resolve() in path.parents and path.is_file()
    except (ValueError, OSError):  # a NUL byte in the name, a name too long for the file system
        found = False
    if not found:
        raise NotFound(repr(name) if any(ord(ch) < 32 for ch in name) else name)
    return FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})


@router.get("/lang/{lang}")
def set_lang(lang: str, request: Request, next: str = "/") -> Response:
    resp = RedirectResponse(_safe_next(next), 303)
    resp.set_cookie(LANG_COOKIE, lang if lang in LANGS else "zh", max_age=365 * 86400, samesite="lax")
    return resp

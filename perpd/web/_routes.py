"""The routes of the web view: the page, its assets, and the HTML side of /positions/{id}."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

from quart import Blueprint, Response, request

from perpd.errors import NotFound

bp = Blueprint("web", __name__)

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# nothing but this origin: scripts, styles, the stream; no inline script, no framing
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,40}\.(html|js|css|svg)")
_POSITION_PAGE = re.compile(r"/positions/[^/]{1,64}")


@cache
def asset(name: str) -> bytes | None:
    """A file of ``static/`` by its plain name (no paths), read once; None if absent."""
    if not _NAME.fullmatch(name):
        return None
    path = resources.files("perpd.web").joinpath("static", name)
    return path.read_bytes() if path.is_file() else None


def _respond(name: str) -> Response:
    body = asset(name)
    if body is None:
        raise NotFound(f"no asset {name!r}")
    resp = Response(body, content_type=TYPES[name[name.rindex(".") :]])
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    if name.endswith(".html"):
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["Vary"] = "Accept"
    return resp


def wants_html() -> bool:
    """A browser's navigation (text/html preferred to JSON), not an API client."""
    accept = request.accept_mimetypes
    return accept["text/html"] > accept["application/json"]


@bp.get("/")
async def index() -> Any:
    return _respond("index.html")


@bp.get("/agents/<agent_id>")
async def agent_page(agent_id: str) -> Any:
    return _respond("index.html")


@bp.get("/web/<name>")
async def static_asset(name: str) -> Any:
    return _respond(name)


@bp.before_app_request
async def position_page() -> Any:
    """``GET /positions/{id}`` from a browser: the page; from anyone else, the JSON read."""
    if request.method == "GET" and _POSITION_PAGE.fullmatch(request.path) and wants_html():
        return _respond("index.html")
    return None

"""/docs (Swagger UI) and /redoc (ReDoc): the OpenAPI document for a person, served whole by
this process, so that the pages work where the service's users have no internet access.

FastAPI's own pages load their scripts and styles from a CDN, a favicon from FastAPI's site,
and ReDoc's from Google Fonts. Here the same pages (FastAPI's HTML builders) load everything
from `/docs/assets/`, which serves the files of the fastapi-offline package (Swagger UI and
ReDoc, kept current there), and they forbid anything else: a Content-Security-Policy allows
only this origin. One file is served changed: ReDoc's bundle names an image on Redocly's CDN
for the "API docs by Redocly" mark in its menu, which no option turns off; that address is
replaced by an empty `data:` image, which ReDoc hides. tests/test_docs_pages.py loads both
pages in a headless Chromium and records every request they make.
"""

from functools import cache
from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from mutualcredit.errors import NotFound

ASSETS = "/docs/assets"
# name: media type. The files fastapi-offline ships in its `static` folder.
_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
REDOCLY_MARK = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
# Everything from this origin; inline script and style only because both pages start from an
# inline script (FastAPI's builders); ReDoc runs its search in a worker made from a blob.
POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


@cache
def asset(name: str) -> bytes:
    content = files("fastapi_offline").joinpath("static", name).read_bytes()
    if name == "redoc.standalone.js":
        content = content.replace(REDOCLY_MARK, b"data:,")
    return content


def add_pages(app: FastAPI) -> None:
    """Adds /docs, /redoc and their assets to an app made with docs_url=None, redoc_url=None."""
    openapi_url = app.openapi_url or "/openapi.json"

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    async def swagger_ui(request: Request) -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=root(request) + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root(request)}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root(request)}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root(request)}{ASSETS}/favicon.png",
            # Swagger UI would otherwise offer to send the document to an online validator.
            swagger_ui_parameters={"validatorUrl": None},
        )
        page.headers["Content-Security-Policy"] = POLICY
        return page

    async def redoc(request: Request) -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=root(request) + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root(request)}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root(request)}{ASSETS}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = POLICY
        return page

    async def serve_asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _FILES:
            raise NotFound("No such asset")
        return Response(
            asset(name),
            media_type=_FILES[name],
            headers={"Cache-Control": "public, max-age=86400"},
        )

    app.add_route("/docs", swagger_ui, include_in_schema=False)
    app.add_route("/redoc", redoc, include_in_schema=False)
    app.add_route(ASSETS + "/{name}", serve_asset, include_in_schema=False)

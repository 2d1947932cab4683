"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) served from files shipped in the package.

FastAPI's own pages load their scripts, styles, favicon and fonts from public CDNs, so on a
machine without internet access they are blank. Here the same pages point at
``/static/docs/...``, a ``StaticFiles`` mount of ``static/`` (vendored by
``scripts/vendor-docs-assets.sh``, versions and licences in ``static/README.md``), and ReDoc's
Google Fonts are left out. Paths honour the ASGI ``root_path`` so the pages also work behind a
proxy that mounts the API under a prefix.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
ASSETS = "/static/docs"


def install(app: FastAPI) -> None:
    """Add the two pages and the mount their assets come from (``docs_url`` and ``redoc_url``
    must be ``None`` on the app so FastAPI does not add its CDN-backed ones)."""
    app.mount(ASSETS, StaticFiles(directory=STATIC), name="docs-assets")
    title = app.title

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/swagger-ui/favicon-32x32.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS}/swagger-ui/favicon-32x32.png",
            with_google_fonts=False,
        )

"""The OpenAPI document served: GET /openapi.json, and GET /docs as one self-contained HTML page."""

from __future__ import annotations

import html
from typing import Any

from aiohttp import web

from shared import jsonio
from shared.body_validation import BODY_VALIDATORS_KEY, body_validators
from shared.openapi import DOCS_PATH, JSON, OPENAPI_PATH
from shared.web import json_response

OPENAPI_KEY = web.AppKey("openapi_document", dict)


def install_openapi(app: web.Application, openapi_document: dict[str, Any]) -> None:
    """Serve the document at GET /openapi.json and an HTML page at GET /docs; keep its body validators."""
    app[OPENAPI_KEY] = openapi_document
    app[BODY_VALIDATORS_KEY] = body_validators(openapi_document)
    app.router.add_get(OPENAPI_PATH, _serve_document)
    app.router.add_get(DOCS_PATH, _serve_docs)


async def _serve_document(request: web.Request) -> web.Response:
    return json_response(request.app[OPENAPI_KEY])


async def _serve_docs(request: web.Request) -> web.Response:
    return web.Response(text=docs_html(request.app[OPENAPI_KEY]), content_type="text/html")


def docs_html(openapi_document: dict[str, Any]) -> str:
    """A self-contained page (no scripts, no CDN): one row per operation, its schemas as JSON."""
    info = openapi_document["info"]
    rows = []
    for path, item in openapi_document["paths"].items():
        for method, spec in item.items():
            body = spec.get("requestBody", {}).get("content", {}).get(JSON, {}).get("schema")
            auth = "bearer" if spec.get("security") else "none"
            responses = ", ".join(spec["responses"])
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(spec.get('summary', ''))}</td><td>{auth}</td><td>{responses}</td>"
                f"<td>{_schema_block(body)}</td></tr>"
            )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(info['title'])}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:4px;"
        "vertical-align:top}table{border-collapse:collapse}pre{margin:0;font-size:12px}</style></head><body>"
        f"<h1>{html.escape(info['title'])} {html.escape(info['version'])}</h1>"
        f"<p>{html.escape(info.get('description', ''))} The machine-readable document is "
        f"<a href='{OPENAPI_PATH}'>{OPENAPI_PATH}</a>.</p>"
        "<table><tr><th>method</th><th>path</th><th>summary</th><th>auth</th><th>statuses</th>"
        f"<th>request body</th></tr>{''.join(rows)}</table></body></html>"
    )


def _schema_block(schema: dict[str, Any] | None) -> str:
    return "" if schema is None else f"<pre>{html.escape(jsonio.dumps(schema))}</pre>"

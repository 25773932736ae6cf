"""Health, the OpenAPI document and a small reference page."""

from __future__ import annotations

import html
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from omnirelay import __version__
from omnirelay.api.common import JSONResponse, gateway

_SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "client": [{"bearer": []}, {"x-api-key": []}],
    "manager": [{"bearer": []}],
    "operator": [{"bearer": []}],
    "none": [],
}


async def health(request: Request) -> JSONResponse:
    gw = gateway(request)
    return JSONResponse(
        {
            "status": "ok",
            "version": __version__,
            "channels": len(gw.router.channels()),
            "usage_rows_pending": gw.writer.pending,
        }
    )


def _operation_id(method: str, path: str) -> str:
    slug = path.strip("/").replace("/", "_").replace("{", "").replace("}", "").replace("-", "_")
    return f"{method.lower()}_{slug}"


def openapi_document() -> dict[str, Any]:
    from omnirelay.api.routes import OPS

    paths: dict[str, dict[str, Any]] = {}
    for op in OPS:
        params = [
            {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
            for part in op.path.split("/")
            if part.startswith("{")
        ]
        entry: dict[str, Any] = {
            "tags": [op.tag],
            "summary": op.summary,
            "operationId": _operation_id(op.method, op.path),
            "security": _SECURITY[op.auth],
            "responses": {
                "200": {"description": "OK"},
                "4XX": {"description": "Error in the route's dialect"},
            },
        }
        if params:
            entry["parameters"] = params
        if op.method in ("POST", "PUT"):
            entry["requestBody"] = {"content": {"application/json": {"schema": {"type": "object"}}}}
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "omnirelay", "version": __version__, "description": "302.AI-compatible AI gateway"},
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "x-api-key": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            }
        },
        "paths": paths,
    }


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(openapi_document())


async def docs(request: Request) -> HTMLResponse:
    from omnirelay.api.routes import OPS

    rows = "".join(
        f"<tr><td>{op.method}</td><td><code>{html.escape(op.path)}</code></td><td>{op.tag}</td>"
        f"<td>{html.escape(op.summary)}</td><td>{op.auth}</td></tr>"
        for op in OPS
    )
    page = (
        "<!doctype html><meta charset=utf-8><title>omnirelay API</title>"
        "<style>body{font-family:sans-serif;margin:2em}td{padding:2px 10px}</style>"
        f"<h1>omnirelay {__version__}</h1><p>Machine-readable: <a href=/openapi.json>/openapi.json</a></p>"
        f"<table><tr><th>Method<th>Path<th>Group<th>What<th>Key</tr>{rows}</table>"
    )
    return HTMLResponse(page)

"""The API's reference page, drawn on the server from the OpenAPI document (the site's
CSP allows no script or style from elsewhere, so no CDN-hosted viewer)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from vouch.api.v1 import api

METHODS = ("get", "post", "put", "patch", "delete")


def _schema_name(schema: dict) -> str:
    ref = schema.get("$ref", "")
    if ref:
        return ref.rsplit("/", 1)[-1]
    if schema.get("type") == "array":
        return f"list of {_schema_name(schema.get('items', {}))}"
    return str(schema.get("type", "object"))


def operations(document: dict) -> list[dict]:
    found = []
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            found.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": operation.get("summary", ""),
                    "description": operation.get("description", ""),
                    "parameters": [
                        {
                            "name": parameter["name"],
                            "where": parameter["in"],
                            "required": parameter.get("required", False),
                            "type": _schema_name(parameter.get("schema", {})),
                            "description": parameter.get("description", "")
                            or parameter.get("schema", {}).get("description", ""),
                        }
                        for parameter in operation.get("parameters", [])
                    ],
                    "body": _schema_name(body) if body else "",
                    "responses": [
                        (code, _schema_name(answer.get("content", {}).get("application/json", {}).get("schema", {})))
                        for code, answer in operation.get("responses", {}).items()
                    ],
                }
            )
    return found


def schemas(document: dict) -> list[dict]:
    rows = []
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        required = set(schema.get("required", []))
        fields = [
            {
                "name": field,
                "type": _schema_name(spec) if "$ref" in spec or "type" in spec else _any_of(spec),
                "required": field in required,
                "description": spec.get("description", ""),
            }
            for field, spec in schema.get("properties", {}).items()
        ]
        rows.append({"name": name, "fields": fields, "enum": schema.get("enum", [])})
    return rows


def _any_of(spec: dict) -> str:
    options = spec.get("anyOf") or spec.get("allOf") or []
    return " or ".join(_schema_name(option) for option in options) or "any"


def page(request: HttpRequest) -> HttpResponse:
    document = api.get_openapi_schema()
    return render(
        request,
        "api/reference.html",
        {"document": document, "operations": operations(document), "schemas": schemas(document)},
    )

"""The committed OpenAPI document is the app's own: regenerate it when the API changes."""

import json
from pathlib import Path

from mutualcredit.openapi import render

COMMITTED = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"


def test_the_committed_openapi_document_matches_the_app() -> None:
    assert json.loads(COMMITTED.read_text()) == json.loads(render()), (
        "openapi/openapi.json is stale: run `mutualcredit openapi --output openapi/openapi.json`"
    )


def test_every_operation_documents_its_problems() -> None:
    spec = json.loads(render())
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if path in ("/healthz", "/readyz"):
                continue
            responses = operation["responses"]
            assert "401" in responses, (method, path)
            assert "application/problem+json" in responses["422"]["content"], (method, path)

"""The committed OpenAPI document is rendered from the app; a test fails when they differ."""

import json

from mutualcredit.app import create_app
from mutualcredit.config import Settings


def render() -> str:
    # No database is touched: the schema needs only the routes.
    app = create_app(Settings(database_url="postgresql://openapi@localhost/openapi"))
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"

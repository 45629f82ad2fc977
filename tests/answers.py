"""Every answer the test suite receives, held against the OpenAPI document.

The suite's requests go through `AnswerLog` (the `client` fixture wraps the application in it),
which notes each answer by operation: its status and, for a problem, its `code`. When the
session ends, each must be one the document declares for that operation: the status among its
responses, and the code among the examples of that response. So the document's list of what
each operation answers is checked by every test that calls it, not written once and trusted.
"""

from collections import defaultdict
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from mutualcredit.apidoc import operations

Operation = tuple[str, str]  # (method, path template), as the document names them
Answer = tuple[int, str | None]  # (status, a problem's code)


class AnswerLog:
    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.operations = [(method, route.path_regex, str(route.path_format))
                           for method, route in operations(app)]  # fmt: skip
        self.answers: dict[Operation, set[Answer]] = defaultdict(set)

    def _operation(self, scope: Scope) -> Operation | None:
        method: str = scope["method"]
        for declared, regex, template in self.operations:
            if declared == method and regex.match(scope["path"]):
                return method, template
        # No operation: an unknown path, a method the path does not have (404 and 405 are the
        # router's answers, not an operation's), or a route outside the document (/metrics).
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        operation = self._operation(scope)
        status = 0
        problem = False
        body = bytearray()

        async def noting(message: Message) -> None:
            nonlocal status, problem
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        problem = value.startswith(b"application/problem+json")
            elif message["type"] == "http.response.body" and problem:
                body.extend(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, noting)
        if operation is None:
            return
        code = None
        if problem:
            parsed = orjson.loads(bytes(body)) if body else {}
            code = parsed.get("code") if isinstance(parsed, dict) else None
        self.answers[operation].add((status, code))

    def undeclared(self, document: dict[str, Any]) -> dict[str, list[Answer]]:
        """The answers the document does not declare, by operation."""
        found: dict[str, list[Answer]] = {}
        for (method, path), answers in sorted(self.answers.items()):
            responses = document["paths"][path][method.lower()]["responses"]
            missing = []
            for status, code in sorted(answers, key=str):
                response = responses.get(str(status))
                if response is None:
                    missing.append((status, code))
                elif code is not None:
                    examples = response["content"]["application/problem+json"]["examples"]
                    if code not in examples:
                        missing.append((status, code))
            if missing:
                found[f"{method} {path}"] = missing
        return found

"""/docs and /redoc render with no internet access: a headless Chromium (Debian's) loads both
from a live `mutualcredit serve`, with every host but this machine unresolvable, records every
request the pages make, and finds the operations rendered: the Authorize button of the bearer
key and an operation's summary. No request may go to another host, and each one answers.
"""

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Request, sync_playwright

from tests.federation.cluster import Cluster, Node

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    # The network otherwise unreachable: no name but this machine's resolves.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
SUMMARY = "Pay: book a trade at once, or hold it (pending) to post or void later"


@pytest.fixture(scope="module")
def node(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is missing: .ci/run installs it")
        pytest.skip("Debian's chromium is not installed here (apt-get install chromium)")
    cluster = Cluster(server_url, tmp_path_factory.mktemp("docs"))
    try:
        yield cluster.add("docs")
    finally:
        cluster.close()


def _load(node: Node, path: str, ready: list[str]) -> tuple[list[Request], list[str]]:
    """Loads a page until every `ready` selector is in the DOM; every request it made, and
    every failure."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page()
            requests: list[Request] = []
            failures: list[str] = []
            page.on("request", lambda r: requests.append(r))
            page.on("requestfailed", lambda r: failures.append(f"{r.url}: {r.failure}"))
            response = page.goto(node.url + path)
            assert response is not None
            assert response.status == 200
            assert "default-src 'self'" in response.headers["content-security-policy"]
            for selector in ready:
                page.wait_for_selector(selector, state="attached", timeout=60_000)
            page.wait_for_load_state("networkidle")
            for request in requests:
                answer = request.response()
                if answer is not None:
                    assert answer.status < 400, (request.url, answer.status)
            return requests, failures
        finally:
            browser.close()


def _check_no_other_host(node: Node, requests: list[Request], failures: list[str]) -> None:
    assert requests
    origin = urlsplit(node.url)
    for request in requests:
        url = urlsplit(request.url)
        if url.scheme == "blob":  # a worker made in the page (ReDoc's search)
            url = urlsplit(url.path)
        if url.scheme == "data":
            continue
        assert (url.scheme, url.netloc) == (origin.scheme, origin.netloc), request.url
    assert failures == []


def test_swagger_ui_renders_offline_with_the_authorize_button(node: Node) -> None:
    requests, failures = _load(node, "/docs", [".btn.authorize", f"text={SUMMARY}"])
    _check_no_other_host(node, requests, failures)
    loaded = {urlsplit(r.url).path for r in requests}
    assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"} <= loaded
    assert "/openapi.json" in loaded


def test_redoc_renders_offline_with_the_operations(node: Node) -> None:
    # ReDoc names each operation's security scheme under "Authorizations".
    requests, failures = _load(node, "/redoc", [f"text={SUMMARY}", "text=apiKey"])
    _check_no_other_host(node, requests, failures)
    loaded = {urlsplit(r.url).path for r in requests}
    assert {"/docs/assets/redoc.standalone.js", "/openapi.json"} <= loaded


def test_the_pages_assets_are_the_packaged_files_and_nothing_else(node: Node) -> None:
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png"):
        r = httpx.get(f"{node.url}/docs/assets/{name}", timeout=30)
        assert r.status_code == 200, name
        assert b"cdn.redoc.ly" not in r.content
    r = httpx.get(f"{node.url}/docs/assets/..%2Fpyproject.toml", timeout=30)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"

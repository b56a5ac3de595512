"""The dashboard in headless Chromium (Playwright driving Debian's /usr/bin/chromium).

Load ``/``, type a request, submit, see the diagram (stages as columns, agent boxes, sync
points), start a run with the configured profile and watch it finish over the WebSocket.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import Server

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing (scripts/test.sh installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield browser
        browser.close()


def test_plan_and_run_from_the_dashboard(server: Server, browser: Any) -> None:
    page = browser.new_page()
    external: list[str] = []
    page.on("request", lambda r: external.append(r.url)
            if not r.url.startswith((server.base, "data:")) else None)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.base + "/")
    page.fill("#request", "实现用户登录功能，使用JWT认证，包括React前端、API和部署")
    page.click("#plan-btn")
    page.wait_for_selector(".stage .agent", timeout=10_000)
    stages = page.locator(".stage")
    assert stages.count() >= 2
    assert page.locator(".agent").count() >= 2
    assert page.locator(".marker.sync").count() >= 1
    first_reason = page.locator(".agent .why").first.inner_text()
    assert first_reason.strip()
    page.wait_for_function("document.querySelectorAll('#profile option').length >= 2")
    page.select_option("#profile", "local")
    page.click("#run-btn")
    page.wait_for_selector("#run-status[data-status=succeeded]", timeout=30_000)
    boxes = page.locator(".agent")
    assert all("succeeded" in (boxes.nth(i).get_attribute("class") or "")
               for i in range(boxes.count()))
    assert page.locator("#events li").count() > 3
    page.click("#record-btn")  # the plan as a proposed ADR, then listed under Decisions
    page.wait_for_function("[...document.querySelectorAll('#decisions li')]"
                           ".some(li => li.textContent.startsWith('Workflow for: '))")
    assert not errors, errors
    assert not external, external  # works offline: nothing outside the server is fetched
    page.close()


def test_dashboard_asks_for_the_token(secured_server: Server, browser: Any) -> None:
    """On a server with a token the page asks for it, then works with it."""
    page = browser.new_page()
    page.goto(secured_server.base + "/")
    page.wait_for_selector("#token-form:not([hidden])", timeout=10_000)
    page.fill("#token", secured_server.token)
    page.click("#token-form button")
    page.wait_for_function("document.querySelectorAll('#profile option').length >= 2")
    page.fill("#request", "add a cache in front of the product API")
    page.click("#plan-btn")
    page.wait_for_selector(".stage .agent", timeout=10_000)
    assert page.locator("#error").is_hidden()
    page.close()

"""The console in a real browser: Playwright driving Debian's chromium (installed by scripts/_env.sh,
never by ``playwright install``), against a console server over each database."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import wait_until
from transact import DBOS, DBOSClient, SetWorkflowID
from transact.console.server import ConsoleServer
from transact.engine.clock import now_ms

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHANGE = {"X-Transact-Console": "1"}

expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `apt-get install -y chromium` (scripts/test.sh does it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def console(dbos: type[DBOS], db_url: str) -> Iterator[Callable[..., str]]:
    """Start a console (``read_only``, ``token``) over a client of the test's database; its URL."""
    servers: list[ConsoleServer] = []
    client = DBOSClient(db_url)

    def start(**kw: Any) -> str:
        server = ConsoleServer(client.store, port=0, **kw)
        server.start()
        servers.append(server)
        return server.url

    try:
        yield start
    finally:
        for server in servers:
            server.stop()
        client.destroy()


def test_list_filter_open_cancel_and_fork(dbos: type[DBOS], console: Callable[..., str], page: Page) -> None:
    release = threading.Event()
    blocked = threading.Event()

    @DBOS.step()
    def add(x: int) -> int:
        return x + 1

    @DBOS.workflow(name="adder")
    def adder(x: int) -> int:
        return add(add(x))

    @DBOS.workflow(name="other")
    def other() -> str:
        return "o"

    @DBOS.step()
    def wait_for_release() -> None:
        blocked.set()
        assert release.wait(30)

    @DBOS.workflow(name="blocker")
    def blocker() -> None:
        wait_for_release()

    for i in range(3):
        with SetWorkflowID(f"b-add-{i}"):
            adder(i)
    with SetWorkflowID("b-other"):
        other()
    then = now_ms()
    wait_until(lambda: now_ms() > then, what="the next millisecond")  # creation order decides the listing
    with SetWorkflowID("b-block"):
        DBOS.start_workflow(blocker)
    assert blocked.wait(20)
    try:
        url = console()
        page.goto(url)
        expect(page.locator("tr.wf-row")).to_have_count(5)
        expect(page.locator("tr.wf-row").first).to_have_attribute("data-id", "b-block")  # newest first

        page.fill("#f-name", "adder")
        page.click("#f-apply")
        expect(page.locator("tr.wf-row")).to_have_count(3)
        page.select_option("#f-status", "PENDING")
        page.fill("#f-name", "")
        page.click("#f-apply")
        expect(page.locator("tr.wf-row")).to_have_count(1)
        expect(page.locator("tr.wf-row")).to_have_attribute("data-id", "b-block")

        # one finished workflow: its steps, then a fork from step 2
        page.goto(url + "#/workflows?workflow_id_prefix=b-add-1")
        page.click("text=b-add-1")
        expect(page.locator("#wf-id")).to_have_text("b-add-1")
        expect(page.locator("tr.step-row")).to_have_count(2)
        expect(page.locator("#wf-output")).to_contain_text("3")
        expect(page.locator("#act-cancel")).to_have_count(0)  # finished: nothing to cancel
        page.select_option("#fork-step", "2")
        page.click("#act-fork")
        expect(page.locator("#confirm-dialog")).to_be_visible()
        page.click("#confirm-ok")
        expect(page.locator("#wf-id")).not_to_have_text("b-add-1")
        fork_id = page.locator("#wf-id").inner_text()
        page.check("#live")
        expect(page.locator("#wf-status")).to_have_text("SUCCESS")
        status = DBOS.get_workflow_status(fork_id)
        assert status is not None and status.forked_from == "b-add-1"
        page.uncheck("#live")

        # the running one: a refused confirmation changes nothing, a confirmed one cancels
        page.goto(url + "#/workflow/b-block")
        expect(page.locator("#wf-status")).to_have_text("PENDING")
        page.click("#act-cancel")
        page.click("#confirm-cancel")
        expect(page.locator("#confirm-dialog")).to_be_hidden()
        assert DBOS.get_workflow_status("b-block").status == "PENDING"  # type: ignore[union-attr]
        page.click("#act-cancel")
        page.click("#confirm-ok")
        expect(page.locator("#wf-status")).to_have_text("CANCELLED")
        expect(page.locator("#act-resume")).to_be_visible()
    finally:
        release.set()
    wait_until(lambda: "b-block" not in DBOS._instance()._runtime.runs, what="the cancelled run to stop")


def test_read_only_hides_actions_and_the_api_refuses(dbos: type[DBOS], console: Callable[..., str], page: Page) -> None:
    @DBOS.workflow(name="w")
    def w() -> int:
        return 1

    with SetWorkflowID("ro-1"):
        w()
    url = console(read_only=True)
    page.goto(url + "#/workflow/ro-1")
    expect(page.locator("#wf-status")).to_have_text("SUCCESS")
    expect(page.locator("#mode")).to_have_text("read-only")
    expect(page.locator("#actions")).to_have_count(0)
    expect(page.locator("button", has_text="Delete")).to_have_count(0)
    answer = page.request.post(url + "api/workflows/ro-1/delete", headers=CHANGE)
    assert answer.status == 403 and "read-only" in answer.json()["error"]
    assert DBOS.get_workflow_status("ro-1") is not None


def test_token_mode_refuses_without_the_token(dbos: type[DBOS], console: Callable[..., str], page: Page) -> None:
    @DBOS.workflow(name="w")
    def w() -> int:
        return 1

    with SetWorkflowID("tok-1"):
        w()
    url = console(token="open-sesame")
    page.goto(url)
    expect(page.locator("#token-input")).to_be_visible()
    expect(page.locator("tr.wf-row")).to_have_count(0)
    assert page.request.get(url + "api/workflows").status == 401
    page.fill("#token-input", "wrong")
    page.click("#token-submit")
    expect(page.locator("form.login")).to_contain_text("refused")
    page.fill("#token-input", "open-sesame")
    page.click("#token-submit")
    expect(page.locator("tr.wf-row")).to_have_count(1)

    fresh = page.context.new_page()  # a link carrying ?token= signs in and drops it from the address
    fresh.goto(url + "?token=open-sesame#/workflow/tok-1")
    expect(fresh.locator("#wf-status")).to_have_text("SUCCESS")
    assert "token" not in fresh.url

"""The dashboards and the coaching page in Debian's Chromium, against a real gateway: they log in,
draw their charts under the strict CSP without a console error, show data as text, and show an
agent the door."""

from __future__ import annotations

import pytest
from playwright.async_api import async_playwright

from cti.auth import add_user
from cti.component import CTIComponent
from gateway.events import CallSaved
from gateway.quality.component import QualityComponent
from gateway.service import GatewayService
from tests.browser.conftest import ARGS, CHROMIUM
from tests.integration.test_dashboards_roles import BLUE_CALL, PW, RED_CALL, USERS, call

pytestmark = [pytest.mark.integration, pytest.mark.browser]


@pytest.fixture
async def gw(sandbox, tmp_path):
    s = sandbox.settings
    service = GatewayService(s.model_copy(update={
        "data_dir": tmp_path, "http": s.http.model_copy(update={"port": 0}),
        "quality": s.quality.model_copy(update={"cti_wait_s": 0.5})}),
        components=[CTIComponent(), QualityComponent()])
    await service.start()
    try:
        for name, (role, team, phone) in USERS.items():
            await add_user(service.ctx.sessions, name, role, PW, team=team, endpoint=phone)
        service.bus.publish(CallSaved(call(RED_CALL, "agent1", "anna", hold_s=200,
                                           intent="lost_card")))
        service.bus.publish(CallSaved(call(BLUE_CALL, "agent3", "carla", hold_s=300,
                                           intent="<img src=x onerror=alert(1)>")))
        await service.bus.drain()
        yield service
    finally:
        await service.stop()


@pytest.fixture
async def page():
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            pg = await browser.new_page()
            pg.problems = []
            pg.on("console", lambda m: pg.problems.append(m.text) if m.type == "error" else None)
            pg.on("pageerror", lambda e: pg.problems.append(str(e)))
            pg.on("dialog", lambda d: pg.problems.append(f"dialog {d.message}"))
            yield pg
        finally:
            await browser.close()


async def login(page, base, path, user):
    await page.goto(base + path)
    await page.fill("input[name=username]", user)
    await page.fill("input[name=password]", PW)
    await page.click("button[type=submit]")


async def test_a_manager_sees_charts_tables_and_text_only_data(gw, page):
    await login(page, gw.base_url, "/dashboards/", "mike")
    await page.wait_for_selector("#board:not(.hidden)")
    # (no string predicates: the page's CSP forbids eval, also to Playwright)
    await page.locator("#t-intent tr").nth(2).wait_for()  # header + 2 intents
    assert await page.locator("#t-intent tr").count() == 3
    for canvas in ("c-aht-queue", "c-aht-intent", "c-mos", "c-sl", "c-intents", "c-repeat"):
        drawn = await page.evaluate("(id) => !!Chart.getChart(document.getElementById(id))",
                                    canvas)
        assert drawn, canvas
    table = await page.inner_text("#t-intent")
    assert "<img src=x onerror=alert(1)>" in table and "lost_card" in table
    assert await page.locator("#t-intent img").count() == 0
    assert "Calls" in await page.inner_text("#tiles")
    assert page.problems == []


async def test_a_supervisor_sees_their_teams_calls_and_an_agents_own_figures(gw, page):
    await login(page, gw.base_url, "/dashboards/coaching", "sara")
    await page.wait_for_selector("#view:not(.hidden)")
    assert await page.inner_text("#team") == "red"
    calls = await page.inner_text("#calls")
    assert "caller on hold longer than the review threshold" in calls
    assert "carla" not in calls
    assert await page.locator("#agents button").all_inner_texts() == ["anna", "bruno"]
    await page.click("#agents button:text('anna')")
    await page.wait_for_selector("#detail h2")
    assert "anna: own figures" in await page.inner_text("#detail")
    await page.click("#calls button")
    await page.wait_for_selector("#legs table")
    assert "Phone" in await page.inner_text("#legs")  # the call's (here unmeasured) legs
    assert page.problems == []


async def test_an_agent_logging_in_to_the_dashboards_is_refused(gw, page):
    await login(page, gw.base_url, "/dashboards/", "anna")
    await page.locator("#problem:not(:empty)").wait_for()
    assert "forbidden" in await page.inner_text("#problem")
    assert await page.is_hidden("#board")
    page.problems = [p for p in page.problems if "403" not in p]  # the refused fetch itself
    assert page.problems == []

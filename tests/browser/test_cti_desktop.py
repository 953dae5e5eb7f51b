"""The agent desktop in a real browser: a real SIP call pops the right customer while the
agent's phone is still ringing, the wrap-up typed in the page lands in the next pop, and
customer data is shown as text, never as markup."""

from __future__ import annotations

import asyncio
import time

import pytest

from cti.importer import import_customers
from gateway.db.engine import make_engine, make_sessionmaker
from gateway.db.migrate import upgrade
from gateway.sip import CallState, PhoneHost
from tests.integration.test_cti_support import PW, start_gateway, stop_gateway

pytestmark = [pytest.mark.browser, pytest.mark.integration]

XSS = "<img src=x onerror=alert(1)>"
CUSTOMERS = f"""name,phones,segment,language,notes
Mario Rossi,02 1234567,gold,it,prefers mornings
"{XSS}",06 7654321,,it,"<script>alert(2)</script> & <b>bold</b>"
""".encode()


@pytest.fixture
async def gateway(sandbox, tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'centralino.db'}"
    await upgrade(url)
    engine = make_engine(url)
    assert (await import_customers(make_sessionmaker(engine), CUSTOMERS)).added == 2
    await engine.dispose()
    service = await start_gateway(sandbox, tmp_path, db_url=url, cti={"caller_aliases": {
        "caller2": "+39 02 1234567", "caller3": "06 7654321"}})
    try:
        yield service
    finally:
        await stop_gateway(service)


@pytest.fixture
async def phones(sandbox):
    a = sandbox.settings.asterisk
    async with PhoneHost() as host:
        await host.register("agent1", sandbox.phone_password("agent1"), a.host, a.sip_port)
        for name in ("caller2", "caller3"):
            await host.add_account(name, sandbox.phone_password(name), a.host, a.sip_port,
                                   register=False)
        yield host


async def _desk(browser, gateway, username="alice"):
    page = await browser.new_page()
    problems: list[str] = []
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"),
                                 asyncio.ensure_future(d.dismiss())))
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    resp = await page.goto(gateway.base_url + "/desktop/")
    csp = resp.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    await page.fill("#username", username)
    await page.fill("#password", PW)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("#link[data-state=up]")
    return page, problems


async def test_pop_before_answer_then_wrap_up_shows_in_the_next_pop(browser, gateway, phones):
    page, problems = await _desk(browser, gateway)
    await page.click("#btn-login")
    await page.wait_for_selector("#state[data-state=ready]")
    assert await page.text_content("#queues") == "billing, tech_support"

    out = await phones.call("caller2", "6001")
    pop = page.locator('.pop[data-status="ringing"][data-match="customer"]')
    await pop.wait_for(timeout=30_000)
    popped_at = time.monotonic()
    ring = await phones.wait_for_incoming("agent1", timeout=30)
    assert ring.state in (CallState.INCOMING, CallState.EARLY)  # still ringing: not answered
    assert await pop.locator(".customer-name").text_content() == "Mario Rossi"
    assert await pop.locator(".caller-number").text_content() == "+39021234567"
    assert await pop.locator(".history-empty").is_visible()
    assert await page.locator("#state").get_attribute("data-state") == "ringing"

    await phones.answer(ring)
    answered_at = time.monotonic()
    assert popped_at < answered_at
    await page.locator('.pop[data-status="connected"]').wait_for(timeout=30_000)
    await page.select_option(".pop .disposition", "resolved")
    await page.fill(".pop .notes", "explained the March bill")
    assert await page.locator(".pop .wrapup-submit").is_disabled()  # not before hang-up
    await asyncio.sleep(2)  # talk
    await phones.hangup(out)
    await page.locator('.pop[data-status="wrap_up"]').wait_for(timeout=30_000)
    await page.wait_for_selector("#state[data-state=wrap_up]")
    # the draft typed during the call survived the re-render
    assert await page.input_value(".pop .notes") == "explained the March bill"
    await page.click(".pop .wrapup-submit")
    await page.locator(".pop").wait_for(state="detached", timeout=30_000)
    await page.wait_for_selector("#state[data-state=ready]")

    out = await phones.call("caller2", "6001")
    pop = page.locator('.pop[data-status="ringing"][data-match="customer"]')
    await pop.wait_for(timeout=30_000)
    items = pop.locator(".history-item")
    assert await items.count() == 1
    text = await items.first.text_content()
    assert "explained the March bill" in text and "alice" in text and "resolved" in text
    await phones.hangup(out)
    await page.locator(".pop").wait_for(state="detached", timeout=30_000)
    # KPIs have no place on the desktop
    body = (await page.text_content("body")).lower()
    for kpi in ("aht", "handle time", "calls today", "ranking", "service level"):
        assert kpi not in body
    assert problems == []


async def test_customer_data_is_text_not_markup(browser, gateway, phones):
    page, problems = await _desk(browser, gateway)
    await page.click("#btn-login")
    await page.wait_for_selector("#state[data-state=ready]")
    out = await phones.call("caller3", "6001")
    pop = page.locator('.pop[data-match="customer"]')
    await pop.wait_for(timeout=30_000)
    assert await pop.locator(".customer-name").text_content() == XSS
    notes = await pop.locator(".customer-notes").text_content()
    assert notes == "<script>alert(2)</script> & <b>bold</b>"
    assert await page.locator(".pop img, .pop script, .pop b").count() == 0
    ring = await phones.wait_for_incoming("agent1", timeout=30)
    await phones.answer(ring)
    await page.locator('.pop[data-status="connected"]').wait_for(timeout=30_000)
    await page.click(".pop .full-history")
    await page.wait_for_selector("#history-panel:not([hidden])")
    assert await page.text_content("#history-name") == XSS
    await phones.hangup(out)
    await page.locator('.pop[data-status="wrap_up"]').wait_for(timeout=30_000)
    await page.click("#btn-ready")
    await page.wait_for_selector("#state[data-state=ready]")
    await asyncio.sleep(0.5)  # give a late onerror a chance to fire
    assert problems == []

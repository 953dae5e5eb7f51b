"""Browser tests drive Debian's Chromium (never a downloaded browser) through Playwright, against
a real gateway on the session's sandbox Asterisk."""

from __future__ import annotations

import pytest
from playwright.async_api import async_playwright

from tests.integration.conftest import sandbox  # noqa: F401  (the session's Asterisk)

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
async def browser():
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()

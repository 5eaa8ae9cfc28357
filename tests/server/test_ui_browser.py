"""The Prefect UI of the session's server, in headless Debian chromium driven by selenium: a delivered run's
artifacts show its tickets and their statuses.

Needs /usr/bin/chromium and /usr/bin/chromedriver (`make browser`); selenium is told both paths and SE_OFFLINE,
so selenium-manager never downloads a browser or a driver (downloads fail here). Without them the test skips,
saying why; with CI=true it fails instead.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tasks.artifacts import artifact_key
from tests.server.harness import PrefectServer, alive, descendants, processes
from tests.server.support import artifacts_of

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
TICKETS = ("TK-FEAT-001", "TK-FEAT-002", "TK-FEAT-003", "TK-DOC-001")
RENDER_TIMEOUT_S = 60  # a cold SPA on a busy machine: its bundle, then its API calls


@pytest.fixture(scope="package")
def browser_binaries() -> None:
    """Package-scoped and requested first, so a missing browser skips before the server's runs are waited for."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        reason = f"Debian's chromium and chromium-driver are not installed ({', '.join(missing)}); `make browser`"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: with CI=true the browser test must run", pytrace=False)
        print(f"skipped: {reason}")
        pytest.skip(reason)


@pytest.fixture
def driver(browser_binaries: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium-manager must not try to download anything
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    # Debian chromium as root on this machine (machines/python.md): no sandbox, no GPU, and none of the
    # background connections that the closed network refuses; a fresh profile.
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        service = Service(executable_path=str(CHROMEDRIVER))
        chrome = webdriver.Chrome(service=service, options=options)
        process = service.process
        assert process is not None
        try:
            yield chrome
        finally:
            started = descendants(process.pid) | {proc.key for proc in processes() if proc.pid == process.pid}
            chrome.quit()
            # chromedriver and the browser processes it started end with it.
            assert not alive(started), sorted(alive(started))


def test_run_artifacts_show_tickets_and_statuses_in_the_ui(
    browser_binaries: None, prefect_api: PrefectServer, delivered_textkit: tuple[Path, UUID], driver: WebDriver
) -> None:
    _, loop_run = delivered_textkit
    backlog = next(a for a in artifacts_of(loop_run) if a.key == artifact_key("textkit", "backlog"))
    wait = WebDriverWait(driver, RENDER_TIMEOUT_S)

    OUTPUT.mkdir(exist_ok=True)
    shot = OUTPUT / "prefect-ui-backlog-artifact.png"
    try:
        # The run's page, its Artifacts tab, then the backlog table's card, as a person would click through.
        driver.get(f"{prefect_api.url}/runs/flow-run/{loop_run}")
        wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "li.p-tab#artifacts"))).click()
        card = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, f'a[href="/artifacts/artifact/{backlog.id}"]')))
        driver.save_screenshot(str(OUTPUT / "prefect-ui-run-artifacts.png"))
        card.click()

        wait.until(lambda d: all(ticket in d.find_element(By.TAG_NAME, "body").text for ticket in TICKETS))
        # The rendered table, cell by cell under its header: each ticket with its state.
        header = [cell.text.strip() for cell in driver.find_elements(By.CSS_SELECTOR, "table thead th")]
        rows = [
            [cell.text.strip() for cell in row.find_elements(By.TAG_NAME, "td")]
            for row in driver.find_elements(By.CSS_SELECTOR, "table tbody tr")
        ]
        states = {row[header.index("id")]: row[header.index("state")] for row in rows}
        assert states == dict.fromkeys(TICKETS, "done"), (header, rows)
    finally:
        # The page as it was at the end, passed or not: the evidence kept with the test output.
        driver.save_screenshot(str(shot))
        print(f"screenshots: {OUTPUT / 'prefect-ui-run-artifacts.png'}, {shot}")

"""Headless Debian Chromium through Selenium, for the browser tests (no browser download:
/usr/bin/chromium and /usr/bin/chromedriver come from Debian's packages, which `make test`
installs)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_S = 20

needs_chromium = pytest.mark.needs(
    CHROMIUM.exists() and CHROMEDRIVER.exists(),
    reason="Debian's chromium and chromium-driver are not installed (`make system-deps` "
    "installs them)",
)


@contextmanager
def headless_chromium(profile_dir: Path) -> Iterator[Any]:
    """A WebDriver for a fresh profile under `profile_dir`, quit on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--window-size=1000,1200",
        f"--user-data-dir={profile_dir / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    # Selenium and urllib3 log every command at DEBUG, keys typed included; in the test's
    # process that would land in the server's captured log, whose secrets search is the server's.
    quiet = {name: logging.getLogger(name) for name in ("selenium", "urllib3")}
    levels = {name: logger.level for name, logger in quiet.items()}
    for logger in quiet.values():
        logger.setLevel(logging.WARNING)
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(profile_dir / "driver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(WAIT_S)
    driver.set_script_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()
        for name, logger in quiet.items():
            logger.setLevel(levels[name])


def page_left(old_element: Any) -> Any:
    """A WebDriverWait condition: true once `old_element`'s page has been replaced.

    Selenium's staleness_of only knows StaleElementReferenceException; while the new page
    is being attached, Chromium may instead answer "Node with given id does not belong to
    the document", which means the same thing.
    """
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    def left(_driver: Any) -> bool:
        try:
            old_element.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as error:
            if "does not belong to the document" in str(error):
                return True
            raise
        return False

    return left

"""Headless Chromium from Debian's packages (chromium, chromium-driver) through Selenium,
for the live page's tests; screenshots go to the test's output directory."""

from __future__ import annotations

import os
import shutil
import time
from typing import Any, Callable

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def available() -> bool:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return False
    return os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)


def start() -> Any:
    """A headless Chromium (1400x1000) driven by Debian's chromedriver (no download)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-sync"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def wait(cond: Callable[[], Any], timeout: float = 60.0, step: float = 0.25) -> Any:
    """Poll `cond` until it is true (bounded); its last value."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = cond()
        except Exception:  # pylint: disable=broad-except  # the page is changing under us
            value = None
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def screenshot(driver: Any, path: str) -> str:
    driver.save_screenshot(path)
    print(f"screenshot: {path}")
    return path

"""Fixtures of the page's tests: a running `bookstore up` (started by .ci/web; its addresses in
BOOKSTORE_WEB_URL, BOOKSTORE_AUTH_ADDR and BOOKSTORE_BOOK_ADDR), headless Chromium driven by
Selenium, and the Python client (clients/python) to set up data and to change books behind the
page's back."""

import os
import sys
import uuid

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "clients", "python"))

from bookstore_client import Bookstore  # noqa: E402

WEB_URL = os.environ.get("BOOKSTORE_WEB_URL", "http://127.0.0.1:8080/")
PASSWORD = "a long enough passphrase"


@pytest.fixture
def username():
    return "web" + uuid.uuid4().hex[:12]


@pytest.fixture
def shop():
    client = Bookstore()
    yield client
    client.close()


@pytest.fixture
def user(shop, username):
    """A registered user, logged in on `shop` too."""
    shop.register(username, PASSWORD)
    shop.login(username, PASSWORD)
    return username


def chrome(width, height):
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(options=options, service=service)


@pytest.fixture
def browser():
    driver = chrome(1200, 900)
    yield driver
    driver.quit()


@pytest.fixture
def phone():
    """A 360 px wide viewport (a window cannot be made that narrow: Chromium emulates it)."""
    driver = chrome(500, 780)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 360, "height": 780, "deviceScaleFactor": 2, "mobile": True})
    yield driver
    driver.quit()

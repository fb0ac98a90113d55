"""Image search with Selenium in headless Chromium: queries -> candidate image URLs.

A search engine's page structure is data, a `SearchSite`: the results URL
for a query, a CSS selector matching one element per result, the attribute
holding the full-size image URL (optionally a key inside a JSON attribute,
as Bing stores it), an optional "more results" button, and how patiently to
scroll. Adapting to a changed site means editing or loading (`load_site`) a
`SearchSite`, not code. `SITES["bing"]` matches Bing Images as of 2026; it
could not be checked from the offline machines this was written on.

The browser is Debian's `chromium` + `chromium-driver`. Selenium is pointed
at /usr/bin/chromedriver and told it is offline, so it never runs Selenium
Manager (which would try to download a driver).
"""

import contextlib
import dataclasses
import json
import math
import os
import pathlib
import shutil
import tempfile
import time
import urllib.parse

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Headless flags checked to work with Debian's chromium on the project's machines.
CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--window-size=1280,1600",
)


class CollectError(Exception):
    """A collection that cannot run; the message is one line for the user."""


@dataclasses.dataclass(frozen=True)
class SearchSite:
    """Where an image search puts its results.

    Attributes:
      name: for logs.
      search_url: results page; "{query}" is replaced by the URL-quoted query.
      result_selector: CSS selector, one element per result.
      url_attribute: the element attribute holding the full-size image URL.
      url_json_key: if set, `url_attribute` holds JSON and the URL is this key.
      more_selector: CSS selector of a "more results" button to click when
        scrolling stops adding results ("" for none).
      scroll_pause_s: wait after each scroll for lazy results to load.
      max_idle_scrolls: stop after this many scrolls in a row add nothing.
    """

    name: str
    search_url: str
    result_selector: str
    url_attribute: str = "src"
    url_json_key: str = ""
    more_selector: str = ""
    scroll_pause_s: float = 1.5
    max_idle_scrolls: int = 4


SITES = {
    "bing": SearchSite(
        name="bing",
        search_url="https://www.bing.com/images/search?q={query}&form=HDRSC2",
        result_selector="a.iusc",
        url_attribute="m",
        url_json_key="murl",
        more_selector="a.btn_seemore, input.btn_seemore, .mm_seemore a",
    ),
}


def load_site(spec: str) -> SearchSite:
    """A `SearchSite` by preset name (see `SITES`) or from a JSON file of its fields.

    Raises:
      CollectError: unknown name, unreadable file, bad fields, or values out
        of range (a negative pause or scroll count, an empty selector).
    """
    if spec in SITES:
        return SITES[spec]
    path = pathlib.Path(spec)
    if not path.is_file():
        raise CollectError(f"unknown site {spec!r}: use one of {sorted(SITES)} or a JSON file")
    try:
        site = SearchSite(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as e:
        raise CollectError(f"bad site file {path}: {e}") from None
    pause, idle = site.scroll_pause_s, site.max_idle_scrolls
    if isinstance(pause, bool) or not isinstance(pause, (int, float)) or not 0 <= pause < math.inf:
        raise CollectError(f"bad site file {path}: scroll_pause_s must be >= 0, not {pause!r}")
    if isinstance(idle, bool) or not isinstance(idle, int) or idle < 0:
        raise CollectError(f"bad site file {path}: max_idle_scrolls must be >= 0, not {idle!r}")
    for field in ("name", "search_url", "result_selector", "url_attribute"):
        if not isinstance(getattr(site, field), str) or not getattr(site, field):
            raise CollectError(f"bad site file {path}: {field} must be a non-empty string")
    for field in ("url_json_key", "more_selector"):
        if not isinstance(getattr(site, field), str):
            raise CollectError(f"bad site file {path}: {field} must be a string")
    try:
        site.search_url.format(query="q")
    except (KeyError, IndexError, ValueError):
        raise CollectError(
            f"bad site file {path}: search_url may hold {{query}} and no other {{...}}"
        ) from None
    return site


@contextlib.contextmanager
def chromium(
    chromium_path: str = CHROMIUM,
    driver_path: str = CHROMEDRIVER,
    extra_args: tuple[str, ...] = (),
    page_load_timeout_s: float = 30.0,
):
    """A headless Chromium WebDriver in a throwaway profile; quits on exit.

    Args:
      chromium_path: the browser binary.
      driver_path: the matching chromedriver.
      extra_args: more Chromium switches (tests pin host resolution with one).
      page_load_timeout_s: limit for one page load.

    Yields:
      A `selenium.webdriver.Chrome`.

    Raises:
      CollectError: browser or driver missing.
    """
    for path, package in ((chromium_path, "chromium"), (driver_path, "chromium-driver")):
        if not os.path.exists(path):
            raise CollectError(f"{path} not found: apt-get install -y {package}")
    # Selenium reads these before it would start Selenium Manager.
    os.environ["SE_OFFLINE"] = "true"
    os.environ["SE_AVOID_STATS"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="collect-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium_path
    for arg in (*CHROMIUM_ARGS, *extra_args, f"--user-data-dir={profile}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        driver.set_page_load_timeout(page_load_timeout_s)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


_READ_ATTRIBUTES = """
return Array.from(document.querySelectorAll(arguments[0]), e => e.getAttribute(arguments[1]));
"""
_CLICK_MORE = """
const b = arguments[0] ? document.querySelector(arguments[0]) : null;
if (b && b.offsetParent !== null) { b.click(); return true; }
return false;
"""


def result_urls(values, site: SearchSite, base_url: str) -> list[str]:
    """Attribute values of result elements -> absolute http(s) image URLs, in order.

    Args:
      values: raw attribute values (None where missing).
      site: tells whether they are JSON.
      base_url: the results page, for relative URLs.

    Returns:
      De-duplicated URLs; anything not http(s) (data:, javascript:, file:) is dropped.
    """
    urls, seen = [], set()
    for value in values:
        if not value:
            continue
        if site.url_json_key:
            try:
                value = json.loads(value).get(site.url_json_key, "")
            except (ValueError, AttributeError):
                continue
        url = urllib.parse.urljoin(base_url, str(value).strip())
        if urllib.parse.urlsplit(url).scheme in ("http", "https") and url not in seen:
            seen.add(url)
            urls.append(url)
    return urls


def search(driver, site: SearchSite, query: str, n: int, sleep=time.sleep) -> list[str]:
    """Opens the results for `query` and scrolls until `n` image URLs or no more come.

    Args:
      driver: a WebDriver (see `chromium`).
      site: the page structure.
      query: search words.
      n: URLs wanted.
      sleep: waits between scrolls (tests may pass a shorter one).

    Returns:
      Up to `n` absolute image URLs, in page order.
    """
    driver.get(site.search_url.format(query=urllib.parse.quote_plus(query)))
    urls, idle = [], 0
    while True:
        values = driver.execute_script(_READ_ATTRIBUTES, site.result_selector, site.url_attribute)
        found = result_urls(values, site, driver.current_url)
        idle = idle + 1 if len(found) <= len(urls) else 0
        urls = found
        if len(urls) >= n or idle > site.max_idle_scrolls:
            return urls[:n]
        if idle and site.more_selector:
            driver.execute_script(_CLICK_MORE, site.more_selector)
        driver.execute_script("window.scrollTo(0, document.body.scrollHeight);")
        sleep(site.scroll_pause_s)

"""The live view in a real browser (issue 15): headless Chromium (Debian's chromium and
chromium-driver, installed by the test set-up) through Selenium.  The page loads,
lists 1000 guests, filters them, shows a guest's graphs, and a graph changes when the
guest's load changes.  Screenshots are written to the test's output directory."""

from __future__ import annotations

import time

import libvirt
import pytest

from tests.fixtures.generate import write_node
from tests.fixtures.libvirtd import PrivateLibvirtd, libvirtd_available
from tests.support.server import start_server

from . import browser

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not browser.available(),
                                 reason="needs chromium, chromium-driver and selenium")]


@pytest.fixture(scope="module")
def chrome():
    drv = browser.start()
    yield drv
    drv.quit()


def _rows(drv):
    return drv.find_elements("css selector", "#guests tbody tr.g")


def test_page_lists_and_filters_1000_guests(chrome, tmp_path):
    node = write_node(str(tmp_path / "node.xml"), 1000)
    srv = start_server(hosts=[f"test://{node}"])
    try:
        chrome.get(f"{srv.url}/live")
        assert browser.wait(lambda: "(1000 of 1000)" in chrome.find_element(
            "id", "count").text), chrome.find_element("id", "status").text
        # at most 300 rows laid out at once; the rest behind the filter
        assert len(_rows(chrome)) == 300
        assert "700 more" in chrome.find_element("id", "more").text
        box = chrome.find_element("id", "filter")
        started = time.monotonic()
        box.send_keys("guest0999")
        assert browser.wait(lambda: [r.get_attribute("data-name") for r in _rows(chrome)]
                            == ["guest0999"])
        filter_s = time.monotonic() - started
        box.clear()
        box.send_keys("shutoff")
        assert browser.wait(lambda: "(500 of 1000)" in chrome.find_element("id", "count").text)
        _rows(chrome)[0].click()
        assert browser.wait(lambda: len(chrome.find_elements("css selector",
                                                              "#graphs svg.graph")) == 4)
        # a shut-off guest's processor load is 0: the CPU graph has a line
        assert browser.wait(lambda: chrome.find_element(
            "css selector", 'path[data-series="cpu_util"]').get_attribute("d"))
        host = chrome.find_element("css selector", ".host")
        assert "1000 guests" in host.text
        browser.screenshot(chrome, str(tmp_path / "live-1000-guests.png"))
        print(f"filter of 1000 guests applied in {filter_s:.2f} s (incl. typing)")
    finally:
        srv.stop()


@pytest.mark.libvirtd
@pytest.mark.skipif(not libvirtd_available(), reason="libvirtd not installed")
def test_graph_changes_with_the_guest(chrome, tmp_path):
    """A guest's CPU graph follows its state: running (the test driver has no processor
    figures: no line), then shut off (0 %) - the line appears; the host going away shows
    as unreachable and as gaps in the graphs."""
    d = PrivateLibvirtd().start()
    srv = None
    try:
        cfg = tmp_path / "c.toml"
        cfg.write_text(f'[monitoring]\ninterval = 1\nhistory = 120\n'
                       f'[[host]]\nuri = "{d.uri("test")}"\nname = "lab"\n')
        srv = start_server(config=str(cfg))
        chrome.get(f"{srv.url}/live")
        assert browser.wait(lambda: _rows(chrome))
        _rows(chrome)[0].click()
        path = 'path[data-series="cpu_util"]'
        assert browser.wait(lambda: chrome.find_elements("css selector", path))
        before = chrome.find_element("css selector", path).get_attribute("d")
        assert before == ""                               # running: no figure yet
        lv = libvirt.open(d.uri("test"))
        lv.lookupByName("test").destroy()
        lv.close()
        assert browser.wait(lambda: chrome.find_element("css selector", path)
                            .get_attribute("d").startswith("M"))
        assert browser.wait(lambda: "shutoff" in _rows(chrome)[0].text)
        browser.screenshot(chrome, str(tmp_path / "live-graph-changed.png"))
        # the host goes away: it is shown unreachable, and its rounds are gaps
        d.stop()
        assert browser.wait(lambda: "unreachable" in chrome.find_element(
            "css selector", ".host").text)
        assert browser.wait(lambda: chrome.find_elements("css selector", "#graphs rect.gap"))
        browser.screenshot(chrome, str(tmp_path / "live-host-away.png"))
    finally:
        if srv is not None:
            srv.stop()
        d.cleanup()

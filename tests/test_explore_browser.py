"""The explorer in a real browser: headless Chromium (Debian's package) driven by
selenium loads the page from a server started here (loopback only), types a sentence and
checks what a person sees. Skips where no browser can be started (pip install
'minis2s[explore]' and apt-get install chromium chromium-driver), and says so at the end
of the run; .ci/run sets MINIS2S_REQUIRE_BROWSER=1, which turns that skip into a failure."""

import os
import shutil
import threading

import pytest

from minis2s.cli import main
from minis2s.explore.data import Explorer
from minis2s.explore.page import write_static
from minis2s.explore.server import make_server

SENTENCE = "i am home ."


def _executables():
    """(chromium, chromedriver) paths, or None where either is missing."""
    browser = next((shutil.which(n) for n in ("chromium", "chromium-browser",
                                               "google-chrome") if shutil.which(n)), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def why_no_browser(reason: str) -> str:
    import importlib.util

    if importlib.util.find_spec("selenium") is None:
        return "selenium not installed; pip install 'minis2s[explore]'"
    if _executables() is None:
        return "no chromium; apt-get install -y chromium chromium-driver"
    return reason


@pytest.fixture(scope="module")
def browser():
    selenium = pytest.importorskip("selenium", reason=why_no_browser("selenium missing"))
    del selenium
    found = _executables()
    if found is None:
        pytest.skip(why_no_browser("no chromium"))
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1800", "--disable-extensions"):
        options.add_argument(arg)
    try:
        driver = webdriver.Chrome(service=Service(found[1]), options=options)
    except Exception as exc:  # noqa: BLE001 - any failure to start is a reason to skip
        pytest.skip(why_no_browser(f"chromium did not start: {str(exc).splitlines()[0]}"))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def models(tiny_corpus, tmp_path_factory):
    paths = []
    for flags in (["--model", "attention"], []):
        out = tmp_path_factory.mktemp("browser")
        assert main(["train", "--data", str(tiny_corpus), "--preset", "zh", "--examples",
                     "399", "--epochs", "3", "--quiet", "--out", str(out), *flags]) == 0
        paths.append(out / "checkpoint.npz")
    return [Explorer.load(p) for p in paths]


@pytest.fixture(scope="module")
def url(models):
    srv = make_server(models, "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/"
    srv.shutdown()
    srv.server_close()


def _wait(driver, test, timeout=30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: test(d))


def _ask(driver, sentence, beam=None):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    if beam is not None:
        box = driver.find_element(By.ID, "beam")
        box.clear()
        box.send_keys(str(beam))
    box = driver.find_element(By.ID, "sentence")
    box.clear()
    driver.execute_script("document.getElementById('results').textContent = '';"
                          "document.getElementById('message').textContent = '';")
    box.send_keys(sentence + Keys.ENTER)


def _shot(driver, name):
    folder = os.environ.get("MINIS2S_SCREENSHOTS")
    if folder:
        driver.save_screenshot(os.path.join(folder, name))


def test_the_page_shows_what_the_api_computes(browser, url, models, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    browser.set_window_size(1280, 1800)
    browser.get(url)
    _ask(browser, SENTENCE, beam=3)
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".beamtree"))
    want = [m.explore(SENTENCE, 3, 0.75) for m in models]
    boxes = browser.find_elements(By.CSS_SELECTOR, "section.model")
    assert len(boxes) == 2
    for box, w in zip(boxes, want):
        greedy = box.find_element(By.CSS_SELECTOR, ".translation.greedy")
        toks = [t.text for t in greedy.find_elements(By.CSS_SELECTOR, ".tok")]
        assert toks == [*w["translation"]["greedy"]["tokens"], "<eos>"]
        nodes = box.find_elements(By.CSS_SELECTOR, ".beamtree .node")
        assert len(nodes) == len(w["beam_tree"]["nodes"])
        pruned = box.find_elements(By.CSS_SELECTOR, ".beamtree .node.pruned")
        assert len(pruned) == sum(n["status"] == "pruned" for n in w["beam_tree"]["nodes"])
        g = w["gradients"]
        cells = box.find_elements(By.CSS_SELECTOR, ".connectivity .cell")
        assert len(cells) == len(g["target_tokens"]) * (len(g["source_tokens"])
                                                        + len(g["decoder_input_tokens"]))
        assert len(box.find_elements(By.CSS_SELECTOR, ".chart")) == 2
    att = boxes[0]
    tr = want[0]["translation"]
    cells = att.find_elements(By.CSS_SELECTOR, ".attention .cell")
    assert len(cells) == (len(tr["greedy"]["tokens"]) + 1) * len(tr["source_tokens"])
    assert not boxes[1].find_elements(By.CSS_SELECTOR, ".attention")  # no attention there
    # hovering a cell shows its value; hovering an output token highlights its row
    ActionChains(browser).move_to_element(cells[0]).perform()
    tip = browser.find_element(By.ID, "tooltip")
    _wait(browser, lambda d: tip.is_displayed())
    value = tr["greedy"]["attention"][0][0]
    assert tip.text.startswith([*tr["greedy"]["tokens"], "<eos>"][0] + " ← ")
    assert f"{value:.3f}" in tip.text
    first = att.find_element(By.CSS_SELECTOR, ".translation.greedy .tok")
    ActionChains(browser).move_to_element(first).perform()
    lit = att.find_elements(By.CSS_SELECTOR, ".attention .cell.hl")
    assert len(lit) == len(tr["source_tokens"])
    assert {c.get_attribute("data-row") for c in lit} == {"0"}
    browser.save_screenshot(str(tmp_path / "desktop.png"))
    assert (tmp_path / "desktop.png").stat().st_size > 10_000
    _shot(browser, "explorer_desktop.png")


def test_bad_input_gets_a_message_on_the_page(browser, url):
    from selenium.webdriver.common.by import By

    browser.get(url)
    for sentence, beam, says in [("   ", 4, "empty"), ("zebra quux", 4, "knows none"),
                                 (SENTENCE, 0, "beam width")]:
        _ask(browser, sentence, beam=beam)
        message = browser.find_element(By.ID, "message")
        _wait(browser, lambda d, m=message, w=says: w in m.text)
        assert "error" in message.get_attribute("class")
        assert not browser.find_elements(By.CSS_SELECTOR, "section.model")
    _ask(browser, SENTENCE, beam=2)  # and the server still answers
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".beamtree"))


def test_a_phones_width_needs_no_sideways_scrolling_of_the_page(browser, url):
    from selenium.webdriver.common.by import By

    browser.set_window_size(390, 1600)
    try:
        browser.get(url)
        _ask(browser, SENTENCE, beam=3)
        _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".beamtree"))
        width = browser.execute_script("return document.documentElement.clientWidth")
        scroll = browser.execute_script("return document.documentElement.scrollWidth")
        assert scroll <= width + 1
        _shot(browser, "explorer_phone.png")
    finally:
        browser.set_window_size(1280, 1800)


def test_the_static_export_works_offline(browser, models, tmp_path):
    from selenium.webdriver.common.by import By

    path = write_static(tmp_path / "explore.html", models, [SENTENCE, "we see it"], beam=3)
    browser.get(path.as_uri())
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".beamtree"))
    want = models[0].explore(SENTENCE, 3, 0.75)["translation"]["greedy"]["tokens"]
    toks = browser.find_elements(By.CSS_SELECTOR, "section.model .translation.greedy .tok")
    assert [t.text for t in toks[:len(want) + 1]] == [*want, "<eos>"]
    options = browser.find_elements(By.CSS_SELECTOR, "#examples option")
    assert [o.text for o in options] == [SENTENCE, "we see it"]

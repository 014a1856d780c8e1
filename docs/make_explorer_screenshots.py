"""Screenshots of the explorer for docs/explorer.md and the README, at a desktop's and a
phone's width, in headless Chromium (Debian's chromium and chromium-driver, selenium:
pip install 'minis2s[explore]').

    python docs/make_explorer_screenshots.py --model runs/eng_fra/attention \\
        --model runs/eng_fra/seq2seq

starts the explorer on a free loopback port, types the sentence (default "i'm home .")
and writes docs/explorer_desktop.png and docs/explorer_phone.png (--out
DIR for another folder).
"""

from __future__ import annotations

import argparse
import shutil
import threading
from pathlib import Path

from minis2s.explore.data import Explorer
from minis2s.explore.server import make_server

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--sentence", default="i'm home .")
    ap.add_argument("--beam", type=int, default=3)
    ap.add_argument("--out", default=str(HERE))
    args = ap.parse_args(argv)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    server = make_server([Explorer.load(m) for m in args.model], "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                "--disable-dev-shm-usage"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        for name, width in (("explorer_desktop.png", 1400), ("explorer_phone.png", 390)):
            driver.set_window_size(width, 1000)
            driver.get(url)
            beam = driver.find_element(By.ID, "beam")
            beam.clear()
            beam.send_keys(str(args.beam))
            driver.find_element(By.ID, "sentence").send_keys(args.sentence + Keys.ENTER)
            WebDriverWait(driver, 60).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, ".beamtree"))
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(width, min(height + 40, 6000))
            tok = driver.find_element(By.CSS_SELECTOR, ".translation.greedy .tok")
            webdriver.ActionChains(driver).move_to_element(tok).perform()
            driver.save_screenshot(str(out / name))
            print(out / name)
    finally:
        driver.quit()
        server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

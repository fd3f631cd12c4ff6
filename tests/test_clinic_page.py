"""The clinic page in a real browser (Debian's headless Chromium, driven by Selenium through chromedriver):
open it, upload a real dermoscopy image with age, sex and site, and check what appears against the API.

The screenshot goes to the test's temporary folder, and also to ``$MELAGBM_SCREENSHOTS`` when that is set.
CI installs the browser (.ci/run); elsewhere the test is skipped without one.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("fastapi")
from melagbm.serve.load_testing import multipart_request, serving

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    missing = [name for name, found in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if not found]
    try:
        from selenium import webdriver
    except ImportError:
        missing.append("selenium")
    if missing:
        reason = f"no {', '.join(missing)}: apt-get install chromium chromium-driver; pip install selenium"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test: {reason} (see .ci/run)")
        pytest.skip(reason)
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=412,2300", "--hide-scrollbars"):  # a phone's width
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def test_the_page_screens_a_real_dermoscopy_image_as_the_api_does(browser, isic_model_file, isic_root,
                                                                    tmp_path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import Select, WebDriverWait

    metadata = pd.read_csv(isic_root / "subset_metadata.csv")
    lesion = metadata[metadata["target"] == 1].iloc[0]  # a melanoma
    image = isic_root / "train" / f"{lesion.image_name}.jpg"
    fields = {"age": str(int(lesion.age_approx)), "sex": lesion.sex, "site": lesion.anatom_site_general_challenge}
    wait = WebDriverWait(browser, 90)
    with serving(isic_model_file) as (url, _):
        request = multipart_request("one", [(image.name, image.read_bytes())], {k: [v] for k, v in fields.items()})
        api = urllib.request.Request(f"{url}/v1/predict", data=request.body,
                                     headers={"content-type": request.content_type})
        with urllib.request.urlopen(api, timeout=120) as answer:
            expected = json.loads(answer.read())["lesions"][0]
        card = json.loads(urllib.request.urlopen(f"{url}/v1/model").read())["card"]

        browser.get(f"{url}/")
        wait.until(lambda driver: driver.find_element(By.ID, "intended-use").text == card["intended_use"])
        limits = [item.text for item in browser.find_elements(By.CSS_SELECTOR, "#limits li")]
        assert limits == card["limits"]
        assert browser.find_element(By.ID, "submit").get_attribute("disabled") is not None  # no photo yet
        browser.find_element(By.ID, "photo").send_keys(str(image))
        browser.find_element(By.ID, "age").send_keys(fields["age"])
        Select(browser.find_element(By.ID, "sex")).select_by_value(fields["sex"])
        Select(browser.find_element(By.ID, "site")).select_by_value(fields["site"])
        browser.find_element(By.ID, "submit").click()
        wait.until(shown.visibility_of_element_located((By.ID, "result")))
        wait.until(lambda driver: driver.execute_script(
            "const img = document.getElementById('preview'); return img.complete && img.naturalWidth > 0;"))

        decision = browser.find_element(By.ID, "decision").text
        assert decision == ("Refer" if expected["refer"] else "No referral")
        words = browser.find_element(By.ID, "decision-words").text
        assert expected["alone"]  # the page sends one lesion: the lone-lesion model's figures judge it
        sensitivity = card["lone_lesions"]["operating_point"]["estimate"]["sensitivity"]
        assert (f"on patients that did not choose it, the model referred {100 * sensitivity['value']:.0f} % of "
                f"melanomas (95 % CI {100 * sensitivity['ci_low']:.0f} % to {100 * sensitivity['ci_high']:.0f} %)"
                in words)
        assert f"a probability of {100 * expected['threshold']:.1f} %" in words
        facts = browser.find_element(By.ID, "facts").text
        assert "A lesion screened alone" in facts and "fitted on the same rows without patient context" in facts
        probability = browser.find_element(By.ID, "probability-words").text
        assert probability.startswith(f"Melanoma probability: {100 * expected['probability']:.1f} %")
        missing = browser.find_elements(By.CSS_SELECTOR, "#chart .bar-row[data-not-available]")
        assert [row.get_attribute("data-family") for row in missing] == ["patient context"]
        assert "not available (one lesion)" in missing[0].text
        bars = browser.find_elements(By.CSS_SELECTOR, "#chart .bar-row[data-value]")
        shown_values = {bar.get_attribute("data-family"): float(bar.get_attribute("data-value")) for bar in bars}
        assert shown_values == pytest.approx(expected["contributions"], abs=1e-9)
        for bar, value in zip(bars, shown_values.values()):
            said = "made no difference" if abs(value) < 0.005 else "raised" if value > 0 else "lowered"
            assert said in bar.text
        points = browser.find_element(By.CSS_SELECTOR, "#outline polygon").get_attribute("points").split()
        assert len(points) == len(expected["outline"]["polygon"]) >= 3
        assert browser.find_element(By.ID, "outline").get_dom_attribute("viewBox") == \
            f"0 0 {expected['outline']['width']} {expected['outline']['height']}"
        errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == [], errors  # no script error, nothing refused by the page's security policy

        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(412, height + 40)  # the whole page in one picture
        screenshot = tmp_path / "clinic_page.png"
        assert browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 20_000
    if os.environ.get("MELAGBM_SCREENSHOTS"):
        target = Path(os.environ["MELAGBM_SCREENSHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, target / screenshot.name)


def _screenshot(browser, tmp_path: Path, name: str) -> Path:
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(412, height + 40)
    screenshot = tmp_path / name
    assert browser.save_screenshot(str(screenshot))
    if os.environ.get("MELAGBM_SCREENSHOTS"):
        target = Path(os.environ["MELAGBM_SCREENSHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, target / name)
    return screenshot


def test_behind_a_token_the_page_says_why_the_card_waits_then_shows_it(browser, isic_model_file, tmp_path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    token = tmp_path / "token.txt"
    token.write_text("a-long-enough-secret-token-for-the-test\n")
    wait = WebDriverWait(browser, 90)
    with serving(isic_model_file, "--token-file", str(token)) as (url, _):
        bearer = {"Authorization": f"Bearer {token.read_text().strip()}"}
        request = urllib.request.Request(f"{url}/v1/model", headers=bearer)
        body = json.loads(urllib.request.urlopen(request).read())
        card = body["card"]
        browser.set_window_size(412, 2300)
        browser.get(f"{url}/")
        wait.until(lambda driver: driver.find_element(By.ID, "token-box").is_displayed())
        intended = browser.find_element(By.ID, "intended-use").text
        assert "Loading" not in intended and "access token" in intended
        assert browser.find_element(By.ID, "about-waiting").is_displayed()
        assert [item.text for item in browser.find_elements(By.CSS_SELECTOR, "#limits li")] == [intended]
        assert "enter the one your operator gave you" in browser.find_element(By.ID, "status").text
        _screenshot(browser, tmp_path, "clinic_page_token_before.png")

        browser.find_element(By.ID, "token").send_keys("not-the-token\t")  # leaving the field sends it
        wait.until(lambda driver: "refused this access token" in driver.find_element(By.ID, "status").text)
        browser.find_element(By.ID, "token").clear()
        browser.find_element(By.ID, "token").send_keys(token.read_text().strip() + "\t")
        wait.until(lambda driver: driver.find_element(By.ID, "intended-use").text == card["intended_use"])
        assert not browser.find_element(By.ID, "about-waiting").is_displayed()
        assert [item.text for item in browser.find_elements(By.CSS_SELECTOR, "#limits li")] == card["limits"]
        sexes = [option.get_attribute("value") for option in browser.find_elements(By.CSS_SELECTOR, "#sex option")]
        assert sexes == ["", *body["fields"]["sex"]] and len(sexes) > 1  # the model's own values, not only unknown
        warnings = browser.find_element(By.ID, "warnings")
        assert warnings.is_displayed() == bool(card["warnings"])
        if card["warnings"]:  # a weak model's line comes before the form
            assert warnings.text.startswith(card["warnings"][0])
            assert warnings.location["y"] < browser.find_element(By.ID, "screen").location["y"]
        _screenshot(browser, tmp_path, "clinic_page_token_after.png")

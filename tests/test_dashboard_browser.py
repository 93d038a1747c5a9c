"""The dashboard in real headless Chromium (selenium): a batch of the sample plans served by
`rtcheck serve`'s server on loopback; log in, list, open a plan, sign off a deviation with its
reasons, find it in the audit export; refusals; a screenshot of each page type is not blank."""

import io
import json
import threading

import pytest

from conftest import ROOT, require_program
from rtcheck.store import Role, open_store
from rtcheck.store.users import add_user

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """A batch of the sample plans recorded with `batch --db`, served on a free loopback port."""
    from rtcheck.batch import run_batch
    from rtcheck.cli import _StoreTally
    from rtcheck.web import make_dashboard_server

    folder = tmp_path_factory.mktemp("dashboard")
    store = open_store(str(folder / "store.sqlite"))
    tally = _StoreTally(store, "batch")
    roots = [str(ROOT / "sample_plans" / name) for name in ("cr-pr-compliant", "cr-pr-lung-v20-high", "cr-pr-no-cord")]
    run_batch(roots, "escc-induction-icrt-ccrt", "cr-pr", folder / "out", jobs=1, html=True, on_record=tally)
    assert tally.added == 3
    add_user(store, "rev", PASSWORD, Role.REVIEWER)
    add_user(store, "view", PASSWORD, Role.VIEWER)
    server = make_dashboard_server(store, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    store.close()


@pytest.fixture
def browser(tmp_path):
    chromium = require_program("chromium", "chromium")
    chromedriver = require_program("chromedriver", "chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    yield driver
    driver.quit()


def page_replaced(page):
    """A wait condition: the page whose <html> element is ``page`` has been replaced by the next one.

    While the next document loads, Chromium may answer a query of the old element with "Node with given id
    does not belong to the document" instead of a stale-element error: that too means it is gone.
    """
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    def replaced(_driver) -> bool:
        try:
            page.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return True
            raise
        return False

    return replaced


def click_and_load(driver, element):
    """Click a link or submit button and wait for the next page to replace this one."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, 30).until(page_replaced(page))


def log_in(driver, base, name):
    from selenium.webdriver.common.by import By

    driver.get(base + "/")
    assert "/login" in driver.current_url  # not logged in: the login page, whatever was asked
    driver.find_element(By.ID, "username").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    click_and_load(driver, driver.find_element(By.ID, "login"))
    assert driver.find_element(By.TAG_NAME, "h1").text == "Plans"


def assert_not_blank(driver, name):
    """The page's screenshot holds drawn content: many colours, and a fair share of non-background pixels."""
    from PIL import Image

    image = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    background = max(colours)[1]
    drawn = sum(count for count, colour in colours if colour != background)
    assert len(colours) > 50 and drawn > 0.03 * image.width * image.height, f"{name}: screenshot looks blank"


def test_review_a_batch_in_chromium(dashboard, browser):
    from selenium.webdriver.common.by import By

    browser.get(dashboard + "/audit.json")
    assert "/login" in browser.current_url
    log_in(browser, dashboard, "rev")
    rows = browser.find_elements(By.CSS_SELECTOR, "#plans tr")[1:]
    assert sorted(r.find_elements(By.TAG_NAME, "td")[1].text for r in rows) == ["RTCHECK-001", "RTCHECK-004", "RTCHECK-006"]
    assert_not_blank(browser, "plan list")
    deviating = next(r for r in rows if r.find_elements(By.TAG_NAME, "td")[1].text == "RTCHECK-004")
    click_and_load(browser, deviating.find_element(By.TAG_NAME, "a"))
    assert browser.find_element(By.ID, "verdict").text == "deviation unacceptable"
    assert len(browser.find_elements(By.CSS_SELECTOR, "figure.dvh svg")) >= 3
    assert_not_blank(browser, "plan page")
    plan_url = browser.current_url

    # Accepting without the reason is refused and says for which check.
    browser.find_element(By.ID, "accept").click()
    click_and_load(browser, browser.find_element(By.ID, "sign-off-submit"))
    assert "missing for lungs-v20" in browser.find_element(By.ID, "sign-off-error").text
    browser.get(plan_url)
    browser.find_element(By.ID, "accept").click()
    browser.find_element(By.ID, "reason-lungs-v20").send_keys("wide lateral beams agreed with the trial office")
    click_and_load(browser, browser.find_element(By.ID, "sign-off-submit"))
    signed = browser.find_element(By.ID, "sign-offs").text
    assert "rev" in signed and "accepted" in signed and "wide lateral beams agreed with the trial office" in signed

    browser.get(dashboard + "/audit.json")
    audit = json.loads(browser.find_element(By.TAG_NAME, "body").text)
    assert [(s["username"], s["decision"], s["criterion"], s["reason"], s["patient_id"]) for s in audit["sign_offs"]] == [
        ("rev", "accepted", "lungs-v20", "wide lateral beams agreed with the trial office", "RTCHECK-004")
    ]

    browser.get(plan_url)
    click_and_load(browser, browser.find_element(By.PARTIAL_LINK_TEXT, "cohort"))
    assert "Protocol escc-induction-icrt-ccrt, arm cr-pr" in browser.find_element(By.TAG_NAME, "h1").text
    assert browser.find_elements(By.CSS_SELECTOR, "#criteria svg")
    assert_not_blank(browser, "protocol page")
    click_and_load(browser, browser.find_element(By.LINK_TEXT, "lungs-v20"))
    assert "upper limit" in browser.find_element(By.TAG_NAME, "main").text
    assert_not_blank(browser, "trend page")

    # A form whose CSRF token is gone is refused, and nothing is recorded.
    browser.get(plan_url)
    browser.execute_script("document.querySelector('#sign-off input[name=csrf_token]').remove()")
    browser.find_element(By.ID, "reject").click()
    browser.find_element(By.ID, "comment").send_keys("forged")
    click_and_load(browser, browser.find_element(By.ID, "sign-off-submit"))
    assert "CSRF token missing or wrong" in browser.find_element(By.TAG_NAME, "main").text
    browser.get(plan_url)
    assert "forged" not in browser.find_element(By.ID, "sign-offs").text


def test_a_viewer_cannot_sign_off_in_chromium(dashboard, browser):
    from selenium.webdriver.common.by import By

    log_in(browser, dashboard, "view")
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "#plans td a"))
    assert browser.find_elements(By.ID, "sign-off") == []
    # Even a hand-made form with the viewer's own valid token is refused.
    token = browser.find_element(By.CSS_SELECTOR, "header input[name=csrf_token]").get_attribute("value")
    page = browser.find_element(By.TAG_NAME, "html")
    browser.execute_script(
        "const f = document.createElement('form'); f.method = 'post'; f.action = location.pathname + '/sign-off';"
        "for (const [k, v] of [['csrf_token', arguments[0]], ['decision', 'rejected'], ['comment', 'x']]) {"
        "const i = document.createElement('input'); i.name = k; i.value = v; f.appendChild(i); }"
        "document.body.appendChild(f); f.submit();", token)
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 30).until(page_replaced(page))
    assert "403" in browser.find_element(By.TAG_NAME, "h1").text

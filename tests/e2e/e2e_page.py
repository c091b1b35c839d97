"""Reading and driving the dashboard through its DOM hooks (documented in docs/dashboard.md).

Everything waits on a condition with a deadline (WebDriverWait); a timeout fails with
what the page showed last, so a failure says what the person would have seen.
"""
from __future__ import annotations

from selenium.common.exceptions import (
    ElementClickInterceptedException,
    ElementNotInteractableException,
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

# The cards are redrawn as status arrives: read them all in one script, never element by element.
_CARDS = """
return Array.from(document.querySelectorAll('#cluster .member')).map(m => ({
  id: Number(m.dataset.id), role: m.dataset.role, up: m.dataset.up, voter: m.dataset.voter,
  term: Number(m.dataset.term), commit_index: Number(m.dataset.commitIndex),
  last_log_index: Number(m.dataset.lastLogIndex),
}));
"""

_REDRAWN = (StaleElementReferenceException, NoSuchElementException)


def cards(driver) -> list[dict]:
    """Every member card: id, role, up ("true"/"false"), voter, term, commit and last log index."""
    return driver.execute_script(_CARDS)


def leaders(driver) -> list[dict]:
    return [c for c in cards(driver) if c["role"] == "leader"]


def card(driver, member_id: int) -> dict | None:
    return next((c for c in cards(driver) if c["id"] == member_id), None)


def wait_until(driver, condition, what: str, timeout: float = 15.0, show=cards):
    """The first true value of `condition(driver)`; at the deadline, fail with `show(driver)`."""
    def attempt(d):
        try:
            return condition(d)
        except _REDRAWN:
            return False

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(attempt)
    except TimeoutException:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; the page showed {show(driver)}") from None


def one_leader(driver, count: int) -> dict | None:
    """The leader's card once there are `count` members, all up, and exactly one leader."""
    shown = cards(driver)
    if len(shown) == count and all(c["up"] == "true" for c in shown):
        led = [c for c in shown if c["role"] == "leader"]
        if len(led) == 1:
            return led[0]
    return None


def attribute(driver, selector: str, name: str) -> str | None:
    elements = driver.find_elements(By.CSS_SELECTOR, selector)
    return elements[0].get_attribute(name) if elements else None


def text(driver, selector: str) -> str:
    elements = driver.find_elements(By.CSS_SELECTOR, selector)
    return elements[0].text if elements else ""


def click(driver, selector: str, what: str, timeout: float = 10.0) -> None:
    """Click `selector` once it is there and enabled (a redrawn card is looked up again)."""
    def clicked(d) -> bool:
        try:
            button = d.find_element(By.CSS_SELECTOR, selector)
            if not button.is_enabled():
                return False
            button.click()
            return True
        except (ElementClickInterceptedException, ElementNotInteractableException):
            return False

    wait_until(driver, clicked, f"{what} ({selector}) to be clickable", timeout,
               show=lambda d: [e.get_attribute("outerHTML")[:300] for e in d.find_elements(By.CSS_SELECTOR, selector)])


def member_button(member_id: int, action: str) -> str:
    return f'#cluster .member[data-id="{member_id}"] button[data-action="{action}"]'


def fill(driver, selector: str, value: str) -> None:
    field = driver.find_element(By.CSS_SELECTOR, selector)
    field.clear()
    field.send_keys(value)


def put_key(browser, key: str, value: str) -> str:
    """Put with the keys panel; the id of the member that answered (#kv-result's data-member)."""
    earlier = text(browser, "#kv-result")  # every put answers a new revision: the text changes
    fill(browser, "#kv-key", key)
    fill(browser, "#kv-value", value)
    click(browser, "#kv-put", "the put button")
    return wait_until(
        browser, lambda d: text(d, "#kv-result") != earlier and attribute(d, "#kv-result", "data-member"),
        f"the answer to the put of {key}", show=lambda d: text(d, "#kv-result"),
    )

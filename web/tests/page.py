"""The page as a person uses it: inputs found by their label text, buttons by their text."""

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import WEB_URL


class Page:
    def __init__(self, driver):
        self.driver = driver
        driver.get(WEB_URL)
        self.wait_until(lambda: self.visible_button("Log in") or self.whoami())

    def wait_until(self, condition, timeout=10):
        def check(_):
            try:
                return condition()
            except StaleElementReferenceException:
                return False
        return WebDriverWait(self.driver, timeout).until(check)

    def field(self, label):
        (element,) = self.driver.find_elements(By.XPATH, f"//label[normalize-space()='{label}']")
        return self.driver.find_element(By.ID, element.get_attribute("for"))

    def fill(self, **values):
        for label, value in values.items():
            element = self.field(label.replace("_", " "))
            element.clear()
            element.send_keys(value)

    def visible_button(self, text, within=None):
        root = within or self.driver
        found = [b for b in root.find_elements(By.XPATH, f".//button[normalize-space()='{text}']")
                 if b.is_displayed()]
        return found[0] if found else None

    def click(self, text, within=None):
        button = self.wait_until(lambda: self.visible_button(text, within))
        self.wait_until(button.is_enabled)
        button.click()

    def whoami(self):
        element = self.driver.find_element(By.ID, "whoami")
        return element.text if element.is_displayed() else ""

    def alert(self):
        return self.driver.find_element(By.CSS_SELECTOR, "[role=alert]").text

    def field_error(self, label):
        described = self.field(label).get_attribute("aria-describedby")
        return self.driver.find_element(By.ID, described).text

    def rows(self):
        return self.driver.find_elements(By.CSS_SELECTOR, "table#books tr[data-book-id]")

    def titles(self):
        return [r.find_element(By.CSS_SELECTOR, "td").text for r in self.rows()]

    def row(self, book_id):
        return self.driver.find_element(By.CSS_SELECTOR, f"table#books tr[data-book-id='{book_id}']")

    def log_in(self, username, password):
        self.fill(Username=username, Password=password)
        self.click("Log in")
        self.wait_until(lambda: self.whoami() == username)

"""Every flow of the bookshelf page in headless Chromium against `bookstore up`: the page
calls both services with gRPC-Web from its own origin."""

import os

import grpc
import pytest
from selenium.webdriver.common.by import By

from bookstore_client import auth_pb2, book_pb2
from conftest import PASSWORD
from page import Page


def add_via_api(shop, title, author="Ursula K. Le Guin", price_cents=1299):
    request = book_pb2.CreateBookRequest(
        book=book_pb2.Book(title=title, author=author, price_cents=price_cents))
    return shop.books.CreateBook(request, metadata=shop.auth_metadata()).book


def test_register_then_log_in_and_out(browser, username):
    page = Page(browser)
    page.fill(Username=username, Password=PASSWORD)
    page.click("Register")
    page.wait_until(lambda: "Registered" in browser.find_element(By.ID, "status").text)
    page.click("Log in")
    page.wait_until(lambda: page.whoami() == username)
    page.click("Log out")
    page.wait_until(lambda: page.visible_button("Log in") is not None)
    assert page.whoami() == ""
    assert page.rows() == []


def test_register_field_errors_appear_beside_their_fields(browser):
    page = Page(browser)
    page.fill(Username="x", Password="short")
    page.click("Register")
    page.wait_until(lambda: page.field_error("Password") != "")
    assert "12" in page.field_error("Password")
    assert page.field_error("Username") != ""
    assert page.field("Password").get_attribute("aria-invalid") == "true"
    assert page.alert() != ""


def test_wrong_password_is_one_alert(browser, user):
    page = Page(browser)
    page.fill(Username=user, Password="not the password at all")
    page.click("Log in")
    page.wait_until(lambda: page.alert() != "")
    assert "invalid" in page.alert().lower()
    assert page.whoami() == ""


def test_add_list_edit_and_delete(browser, user, shop):
    page = Page(browser)
    page.log_in(user, PASSWORD)
    page.fill(Title="The Dispossessed", Author="Ursula K. Le Guin", Publisher="Harper",
              Price="12.99", ISBN="")
    page.click("Add book")
    page.wait_until(lambda: page.titles() == ["The Dispossessed"])
    (row,) = page.rows()
    book_id = row.get_attribute("data-book-id")
    assert "12.99" in row.text and "Ursula K. Le Guin" in row.text

    page.click("Edit", within=page.row(book_id))
    page.fill(Title="The Dispossessed: An Ambiguous Utopia", Price="14.50")
    page.click("Save")
    page.wait_until(lambda: page.titles() == ["The Dispossessed: An Ambiguous Utopia"])
    stored = shop.books.GetBook(book_pb2.GetBookRequest(id=book_id), metadata=shop.auth_metadata()).book
    assert stored.price_cents == 1450

    page.click("Delete", within=page.row(book_id))
    page.wait_until(lambda: page.rows() == [])
    with pytest.raises(grpc.RpcError) as gone:
        shop.books.GetBook(book_pb2.GetBookRequest(id=book_id), metadata=shop.auth_metadata())
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


def test_book_field_errors_appear_beside_their_fields(browser, user):
    page = Page(browser)
    page.log_in(user, PASSWORD)
    page.fill(Title="", Author="Someone", Price="-1", ISBN="123")
    page.click("Add book")
    page.wait_until(lambda: page.field_error("Title") != "")
    assert page.field_error("Price") != ""
    assert page.field_error("ISBN") != ""
    assert page.field_error("Author") == ""
    page.fill(Title="Fine", Price="twelve")
    page.click("Add book")
    page.wait_until(lambda: "12.99" in page.field_error("Price"))
    assert page.rows() == []


def test_an_edit_conflict_says_the_book_changed_and_shows_it(browser, user, shop):
    book = add_via_api(shop, "Original title")
    page = Page(browser)
    page.log_in(user, PASSWORD)
    page.wait_until(lambda: page.titles() == ["Original title"])
    page.click("Edit", within=page.row(book.id))
    # Someone else changes the book after the page read it.
    shop.books.UpdateBook(book_pb2.UpdateBookRequest(
        book=book_pb2.Book(id=book.id, title="Changed elsewhere"),
        update_mask={"paths": ["title"]}), metadata=shop.auth_metadata())
    page.fill(Title="My edit")
    page.click("Save")
    page.wait_until(lambda: "changed" in page.alert())
    assert page.field("Title").get_attribute("value") == "Changed elsewhere"
    stored = shop.books.GetBook(book_pb2.GetBookRequest(id=book.id), metadata=shop.auth_metadata()).book
    assert stored.title == "Changed elsewhere"
    # Saving again, now with the etag of the version shown, goes through.
    page.fill(Title="My edit")
    page.click("Save")
    page.wait_until(lambda: page.titles() == ["My edit"])


def test_paging_filter_and_search(browser, user, shop):
    for i in range(23):
        add_via_api(shop, f"Book {i:02}", author="Many Author")
    add_via_api(shop, "A Wizard of Earthsea", author="Le Guin")
    add_via_api(shop, "The Left Hand of Darkness", author="Le Guin")
    page = Page(browser)
    page.log_in(user, PASSWORD)
    page.wait_until(lambda: len(page.rows()) == 20)
    assert page.titles()[0] == "Book 00", "oldest first, newest last"
    page.click("Next")
    page.wait_until(lambda: page.titles() == ["Book 20", "Book 21", "Book 22",
                                              "A Wizard of Earthsea", "The Left Hand of Darkness"])
    assert not page.visible_button("Next").is_enabled()
    page.click("Previous")
    page.wait_until(lambda: page.titles()[:1] == ["Book 00"])

    page.fill(Filter_by_author="le guin")
    page.wait_until(lambda: page.titles() == ["A Wizard of Earthsea", "The Left Hand of Darkness"])
    page.fill(Search_titles="darkness")
    page.wait_until(lambda: page.titles() == ["The Left Hand of Darkness"])


def test_change_password(browser, user, shop, username):
    page = Page(browser)
    page.log_in(user, PASSWORD)
    page.fill(Current_password="not my password", New_password="another long passphrase")
    page.click("Change password")
    page.wait_until(lambda: page.alert() != "" or page.field_error("Current password") != "")

    page.fill(Current_password=PASSWORD, New_password="another long passphrase")
    page.click("Change password")
    page.wait_until(lambda: "Password changed" in browser.find_element(By.ID, "status").text)
    assert page.whoami() == username
    # The old password is gone; the new one works (and the page is still signed in).
    with pytest.raises(grpc.RpcError):
        shop.auth.Login(auth_pb2.LoginRequest(username=username, password=PASSWORD))
    shop.login(username, "another long passphrase")
    page.fill(Title="After the change", Author="Me", Price="1")
    page.click("Add book")
    page.wait_until(lambda: page.titles() == ["After the change"])


def test_a_reload_keeps_the_session_and_tokens_stay_out_of_storage_and_console(browser, user):
    page = Page(browser)
    page.log_in(user, PASSWORD)
    browser.refresh()
    page.wait_until(lambda: page.whoami() == user)
    assert browser.execute_script("return window.localStorage.length") == 0
    refresh = browser.execute_script("return sessionStorage.getItem('bookstore.refresh_token')")
    assert refresh
    logs = browser.get_log("browser")
    assert not [entry for entry in logs if refresh in entry["message"] or "eyJ" in entry["message"]], logs
    assert not [entry for entry in logs if entry["level"] == "SEVERE"], logs


def test_usable_at_360_px_and_screenshot(phone, browser, user, shop):
    for title, author, cents in [("The Dispossessed", "Ursula K. Le Guin", 1299),
                                 ("Piranesi", "Susanna Clarke", 1850),
                                 ("The Name of the Rose", "Umberto Eco", 1625)]:
        add_via_api(shop, title, author, cents)
    page = Page(phone)
    page.log_in(user, PASSWORD)
    page.wait_until(lambda: len(page.rows()) == 3)
    assert phone.execute_script("return window.innerWidth") == 360
    width = phone.execute_script("return document.documentElement.scrollWidth")
    assert width <= 360, f"the page is {width} px wide in a 360 px window"
    phone.save_screenshot("/tmp/phone.png")
    for label in ("Title", "Price", "Filter by author"):
        assert page.field(label).size["width"] > 200
    page.click("Edit", within=page.rows()[1])
    page.fill(Price="17.50")
    page.click("Save")
    page.wait_until(lambda: "17.50" in page.rows()[1].text)

    shot = os.environ.get("BOOKSTORE_SCREENSHOT")
    if shot:
        desktop = Page(browser)
        desktop.log_in(user, PASSWORD)
        desktop.wait_until(lambda: len(desktop.rows()) == 3)
        browser.set_window_size(1000, 1100)
        browser.save_screenshot(shot)


def test_the_access_token_is_renewed_before_it_expires(browser, user):
    """.ci/web runs `bookstore up` with 30 s access tokens: the page renews at half-life, with
    no call failing first."""
    page = Page(browser)
    page.log_in(user, PASSWORD)
    first = browser.execute_script("return sessionStorage.getItem('bookstore.refresh_token')")
    page.wait_until(
        lambda: browser.execute_script("return sessionStorage.getItem('bookstore.refresh_token')") != first,
        timeout=25)
    page.fill(Title="After renewal", Author="Someone", Price="3")
    page.click("Add book")
    page.wait_until(lambda: page.titles() == ["After renewal"])
    assert page.alert() == ""

"""The whole Bookstore flow from Python: register, login, CRUD, error handling, a read-only token
refused on a write, refresh, logout.

Run against `bookstore up` (or docker compose):  python3 example.py
"""

import uuid

import grpc
from google.protobuf import field_mask_pb2

from bookstore_client import Bookstore, auth_pb2, book_pb2, error_reason, field_violations

PASSWORD = "correct horse battery"


def main():
    shop = Bookstore()
    username = f"py_{uuid.uuid4().hex[:12]}"
    user = shop.register(username, PASSWORD)
    print(f"registered {user.username} ({user.id})")
    login = shop.login(username, PASSWORD)
    print(f"logged in: {login.token_type} token, expires in {login.expires_in}s")

    auth = shop.auth_metadata()
    book = shop.books.CreateBook(
        book_pb2.CreateBookRequest(
            book=book_pb2.Book(title="Kindred", author="Octavia E. Butler", price_cents=1599, isbn="978-0-8070-8369-7"),
            request_id=str(uuid.uuid4()),  # makes a retry safe
        ),
        metadata=auth,
    ).book
    print(f"created {book.id}: {book.title} (isbn stored as {book.isbn})")

    # Bad input: every broken rule comes back at once as field violations.
    try:
        shop.books.CreateBook(
            book_pb2.CreateBookRequest(book=book_pb2.Book(title="", author="", price_cents=-1, isbn="123")),
            metadata=auth,
        )
    except grpc.RpcError as error:
        print(f"refused as expected: {error.code().name} ({error_reason(error)})")
        for field, description in field_violations(error):
            print(f"  {field}: {description}")

    listed = shop.books.ListBooks(book_pb2.ListBooksRequest(page_size=10), metadata=auth)
    print(f"{listed.total_size} book(s): {[b.title for b in listed.books]}")

    # A narrower token: a read-only one (scope books:read) lists but cannot write.
    read_only = shop.auth.Login(auth_pb2.LoginRequest(username=username, password=PASSWORD, scopes=["books:read"]))
    reader = (("authorization", f"Bearer {read_only.access_token}"),)
    shop.books.ListBooks(book_pb2.ListBooksRequest(), metadata=reader)
    try:
        shop.books.CreateBook(book_pb2.CreateBookRequest(book=book_pb2.Book(title="Dawn", author="Octavia E. Butler")), metadata=reader)
        raise SystemExit("a books:read token was allowed to write")
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, error
        print(f"read-only token ({read_only.scope}) refused a write: {error.code().name} ({error_reason(error)})")

    book.price_cents = 1299
    updated = shop.books.UpdateBook(
        book_pb2.UpdateBookRequest(book=book, update_mask=field_mask_pb2.FieldMask(paths=["price_cents"])),
        metadata=auth,
    ).book
    print(f"updated price to {updated.price_cents / 100:.2f} (etag {book.etag} -> {updated.etag})")

    shop.refresh()
    shop.books.DeleteBook(book_pb2.DeleteBookRequest(id=book.id, etag=updated.etag), metadata=shop.auth_metadata())
    print("deleted it with a refreshed token")

    shop.logout()
    print("logged out")
    shop.close()


if __name__ == "__main__":
    main()

"""The Python client against the real services (started by .ci/clients, or `bookstore up`)."""

import os
import subprocess
import sys
import uuid

import grpc
import pytest
from google.protobuf import field_mask_pb2

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bookstore_client import Bookstore, auth_pb2, book_pb2, error_reason, field_violations  # noqa: E402

PASSWORD = "correct horse battery"


@pytest.fixture
def shop():
    client = Bookstore()
    name = f"pt_{uuid.uuid4().hex[:12]}"
    client.register(name, PASSWORD)
    client.login(name, PASSWORD)
    yield client
    client.close()


def test_the_example_runs_the_whole_flow():
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "example.py"], cwd=here, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "refused as expected: INVALID_ARGUMENT" in result.stdout
    assert "logged out" in result.stdout


def test_crud_round_trip(shop):
    auth = shop.auth_metadata()
    created = shop.books.CreateBook(
        book_pb2.CreateBookRequest(book=book_pb2.Book(title="Dune", author="Frank Herbert", price_cents=999)), metadata=auth
    ).book
    got = shop.books.GetBook(book_pb2.GetBookRequest(id=created.id), metadata=auth).book
    assert got == created
    created.title = "Dune Messiah"
    updated = shop.books.UpdateBook(
        book_pb2.UpdateBookRequest(book=created, update_mask=field_mask_pb2.FieldMask(paths=["title"])), metadata=auth
    ).book
    assert updated.title == "Dune Messiah" and updated.etag != created.etag
    with pytest.raises(grpc.RpcError) as stale:
        shop.books.UpdateBook(
            book_pb2.UpdateBookRequest(book=created, update_mask=field_mask_pb2.FieldMask(paths=["title"])), metadata=auth
        )
    assert stale.value.code() == grpc.StatusCode.ABORTED
    shop.books.DeleteBook(book_pb2.DeleteBookRequest(id=created.id), metadata=auth)
    with pytest.raises(grpc.RpcError) as gone:
        shop.books.GetBook(book_pb2.GetBookRequest(id=created.id), metadata=auth)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


def test_invalid_book_lists_every_field_violation(shop):
    with pytest.raises(grpc.RpcError) as error:
        shop.books.CreateBook(
            book_pb2.CreateBookRequest(book=book_pb2.Book(title=" ", author="", price_cents=-5, isbn="978-0-306-40615-8")),
            metadata=shop.auth_metadata(),
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = [field for field, _ in field_violations(error.value)]
    assert fields == ["book.title", "book.author", "book.price_cents", "book.isbn"]
    assert error_reason(error.value) == "INVALID_ARGUMENT"


def test_books_without_a_token_are_unauthenticated():
    client = Bookstore()
    with pytest.raises(grpc.RpcError) as error:
        client.books.ListBooks(book_pb2.ListBooksRequest())
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_reason(error.value) == "TOKEN_MISSING"
    client.close()


def test_wrong_password_and_unknown_user_look_the_same():
    client = Bookstore()
    errors = []
    for name in (f"ghost_{uuid.uuid4().hex[:8]}", "nobody_here"):
        with pytest.raises(grpc.RpcError) as error:
            client.auth.Login(auth_pb2.LoginRequest(username=name, password="wrong password!"))
        errors.append((error.value.code(), error.value.details()))
    assert errors[0] == errors[1] and errors[0][0] == grpc.StatusCode.UNAUTHENTICATED
    client.close()


def test_refresh_token_rotation_and_reuse_detection(shop):
    old_refresh = shop.refresh_token
    shop.refresh()
    assert shop.refresh_token != old_refresh
    with pytest.raises(grpc.RpcError) as error:
        shop.auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=old_refresh))
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # Reuse revoked the family, including the newest token.
    with pytest.raises(grpc.RpcError):
        shop.refresh()

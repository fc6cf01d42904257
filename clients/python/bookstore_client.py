"""A small Python client for Bookstore, over the stubs that generate.sh makes in ./gen.

    from bookstore_client import Bookstore
    shop = Bookstore()                        # localhost:50051 and localhost:50052
                                              # TLS when BOOKSTORE_CA_CERT names a CA file
    shop.register("alice", "correct horse battery")
    shop.login("alice", "correct horse battery")
    book = shop.books.CreateBook(book_pb2.CreateBookRequest(...), metadata=shop.auth_metadata())
"""

import os
import sys

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen"))

from bookstore.auth.v1 import auth_pb2, auth_pb2_grpc  # noqa: E402
from bookstore.book.v1 import book_pb2, book_pb2_grpc  # noqa: E402

__all__ = ["Bookstore", "auth_pb2", "book_pb2", "field_violations", "error_reason"]


class Bookstore:
    """Stubs for both services plus the session's tokens."""

    def __init__(self, auth_addr=None, book_addr=None, ca_cert=None):
        auth_addr = auth_addr or os.environ.get("BOOKSTORE_AUTH_ADDR", "localhost:50051")
        book_addr = book_addr or os.environ.get("BOOKSTORE_BOOK_ADDR", "localhost:50052")
        ca_cert = ca_cert or os.environ.get("BOOKSTORE_CA_CERT")
        if ca_cert:
            # TLS, trusting the CA in that PEM file (`bookstore up --tls` prints its path).
            with open(ca_cert, "rb") as f:
                credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
            self._auth_channel = grpc.secure_channel(auth_addr, credentials)
            self._book_channel = grpc.secure_channel(book_addr, credentials)
        else:
            self._auth_channel = grpc.insecure_channel(auth_addr)
            self._book_channel = grpc.insecure_channel(book_addr)
        self.auth = auth_pb2_grpc.AuthServiceStub(self._auth_channel)
        self.users = auth_pb2_grpc.UserServiceStub(self._auth_channel)
        self.books = book_pb2_grpc.BookServiceStub(self._book_channel)
        self.access_token = None
        self.refresh_token = None

    def register(self, username, password):
        return self.auth.Register(auth_pb2.RegisterRequest(username=username, password=password)).user

    def login(self, username, password):
        response = self.auth.Login(auth_pb2.LoginRequest(username=username, password=password))
        self._keep(response)
        return response

    def refresh(self):
        response = self.auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=self.refresh_token))
        self._keep(response)
        return response

    def logout(self):
        self.auth.Logout(auth_pb2.LogoutRequest(refresh_token=self.refresh_token or ""))
        self.access_token = self.refresh_token = None

    def auth_metadata(self):
        """Call metadata carrying the access token."""
        return (("authorization", f"Bearer {self.access_token}"),)

    def _keep(self, response):
        self.access_token = response.access_token
        self.refresh_token = response.refresh_token

    def close(self):
        self._auth_channel.close()
        self._book_channel.close()


def _details(error, message_type):
    status = rpc_status.from_call(error)
    if status is None:
        return []
    found = []
    for detail in status.details:
        if detail.Is(message_type.DESCRIPTOR):
            message = message_type()
            detail.Unpack(message)
            found.append(message)
    return found


def field_violations(error):
    """[(field, description)] from the BadRequest detail of a grpc.RpcError."""
    return [(v.field, v.description) for bad in _details(error, error_details_pb2.BadRequest) for v in bad.field_violations]


def error_reason(error):
    """The ErrorInfo reason (e.g. ISBN_ALREADY_EXISTS) of a grpc.RpcError, or None."""
    infos = _details(error, error_details_pb2.ErrorInfo)
    return infos[0].reason if infos else None

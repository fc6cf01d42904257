"""gRPC-Web and CORS on the wire, as a browser and a gRPC-Web proxy see them: preflights from
an allowed and a refused origin, binary and text-mode calls, and an error's status read from
the trailer frame in the body. Raw HTTP/1.1 (http.client) against `bookstore up`, whose page
origin both services allow."""

import base64
import os
import struct
import http.client
from urllib.parse import unquote, urlsplit

import pytest

from bookstore_client import auth_pb2, book_pb2
from conftest import PASSWORD

ALLOWED = urlsplit(os.environ.get("BOOKSTORE_WEB_URL", "http://127.0.0.1:8080/"))
ALLOWED_ORIGIN = f"{ALLOWED.scheme}://{ALLOWED.netloc}"
REFUSED_ORIGIN = "http://evil.example"
SERVICES = {
    "auth-service": os.environ.get("BOOKSTORE_AUTH_ADDR", "localhost:50051"),
    "book-service": os.environ.get("BOOKSTORE_BOOK_ADDR", "localhost:50052"),
}


def post(addr, path, headers, body=b"", method="POST"):
    host, port = addr.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    return response, payload


def frames(payload):
    """[(flag, bytes)] of a gRPC-Web body."""
    found = []
    while payload:
        flag, length = payload[0], struct.unpack(">I", payload[1:5])[0]
        found.append((flag, payload[5:5 + length]))
        payload = payload[5 + length:]
    return found


def trailers(payload):
    (block,) = [data for flag, data in frames(payload) if flag & 0x80]
    lines = [line for line in block.decode().split("\r\n") if line]
    return {name.strip().lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}


def grpc_web(addr, path, message, text=False, origin=ALLOWED_ORIGIN, token=None):
    body = b"\x00" + struct.pack(">I", len(message)) + message
    content_type = "application/grpc-web-text" if text else "application/grpc-web+proto"
    headers = {"content-type": content_type, "x-grpc-web": "1", "x-user-agent": "wire-test"}
    if text:
        body = base64.b64encode(body)
        headers["accept"] = "application/grpc-web-text"
    if origin:
        headers["origin"] = origin
    if token:
        headers["authorization"] = f"Bearer {token}"
    response, payload = post(addr, path, headers, body)
    if text:
        payload = decode_text(payload)
    return response, payload


def decode_text(payload):
    """A text-mode body: base64 chunks, each padded on its own (a server encodes each frame as
    it is sent), so decode it a padded chunk at a time."""
    decoded, chunk = b"", b""
    for i in range(0, len(payload), 4):
        chunk += payload[i:i + 4]
        if chunk.endswith(b"="):
            decoded, chunk = decoded + base64.b64decode(chunk), b""
    return decoded + base64.b64decode(chunk)


@pytest.mark.parametrize("service", SERVICES)
def test_a_preflight_from_the_allowed_origin_is_answered(service):
    response, _ = post(SERVICES[service], "/bookstore.auth.v1.AuthService/Login", {
        "origin": ALLOWED_ORIGIN,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,x-grpc-web,x-user-agent,authorization",
    }, method="OPTIONS")
    assert response.status in (200, 204)
    assert response.getheader("access-control-allow-origin") == ALLOWED_ORIGIN
    assert "POST" in response.getheader("access-control-allow-methods")
    allowed = {h.strip() for h in response.getheader("access-control-allow-headers").split(",")}
    assert {"content-type", "x-grpc-web", "x-user-agent", "authorization"} <= allowed


@pytest.mark.parametrize("service", SERVICES)
def test_another_origin_gets_no_cors_headers(service):
    response, _ = post(SERVICES[service], "/bookstore.auth.v1.AuthService/Login", {
        "origin": REFUSED_ORIGIN,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,x-grpc-web",
    }, method="OPTIONS")
    assert response.status >= 400
    assert not [h for h, _ in response.getheaders() if h.lower().startswith("access-control-")]
    # A call from that origin is answered as any client's, but with no CORS header either,
    # so the browser keeps the answer from the page.
    response, _ = grpc_web(SERVICES["auth-service"], "/bookstore.auth.v1.AuthService/GetJwks",
                           b"", origin=REFUSED_ORIGIN)
    assert not [h for h, _ in response.getheaders() if h.lower().startswith("access-control-")]


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
def test_a_call_in_either_mode_answers_a_message_and_an_ok_trailer(text, username):
    request = auth_pb2.RegisterRequest(username=username, password=PASSWORD).SerializeToString()
    response, payload = grpc_web(SERVICES["auth-service"], "/bookstore.auth.v1.AuthService/Register",
                                 request, text=text)
    assert response.status == 200
    expected = "application/grpc-web-text" if text else "application/grpc-web+proto"
    assert response.getheader("content-type").startswith(expected)
    assert response.getheader("access-control-allow-origin") == ALLOWED_ORIGIN
    exposed = {h.strip() for h in response.getheader("access-control-expose-headers").split(",")}
    assert {"grpc-status", "grpc-message", "grpc-status-details-bin"} <= exposed
    (message,) = [data for flag, data in frames(payload) if flag == 0]
    assert auth_pb2.RegisterResponse.FromString(message).user.username == username
    assert trailers(payload)["grpc-status"] == "0"


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
def test_an_error_status_is_read_from_the_trailer_frame_in_the_body(text, username):
    request = auth_pb2.LoginRequest(username=username, password="not a password here")
    response, payload = grpc_web(SERVICES["auth-service"], "/bookstore.auth.v1.AuthService/Login",
                                 request.SerializeToString(), text=text)
    assert response.status == 200
    status = trailers(payload)
    assert status["grpc-status"] == "16"  # UNAUTHENTICATED
    assert "invalid username or password" in unquote(status["grpc-message"])
    assert status["grpc-status-details-bin"]


def test_book_service_behind_its_interceptor(user, shop):
    request = book_pb2.ListBooksRequest(page_size=5).SerializeToString()
    _, payload = grpc_web(SERVICES["book-service"], "/bookstore.book.v1.BookService/ListBooks", request)
    assert trailers(payload)["grpc-status"] == "16", "no token: UNAUTHENTICATED"
    create = book_pb2.CreateBookRequest(book=book_pb2.Book(title="Wire", author="Web", price_cents=100))
    _, payload = grpc_web(SERVICES["book-service"], "/bookstore.book.v1.BookService/CreateBook",
                          create.SerializeToString(), text=True, token=shop.access_token)
    assert trailers(payload)["grpc-status"] == "0"
    _, payload = grpc_web(SERVICES["book-service"], "/bookstore.book.v1.BookService/ListBooks",
                          request, token=shop.access_token)
    (message,) = [data for flag, data in frames(payload) if flag == 0]
    assert [b.title for b in book_pb2.ListBooksResponse.FromString(message).books] == ["Wire"]


def handled(metrics_url, method, code):
    """grpc_server_handled_total of `method` answered `code`, from the HTTP side door."""
    address = urlsplit(metrics_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    connection.close()
    for line in text.splitlines():
        if (line.startswith("grpc_server_handled_total{") and f'grpc_method="{method}"' in line
                and f'grpc_code="{code}"' in line):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_grpc_web_calls_are_counted_as_grpc_calls(username):
    metrics = os.environ.get("BOOKSTORE_AUTH_METRICS", "http://127.0.0.1:9051/metrics")
    before = handled(metrics, "Login", "Unauthenticated")
    request = auth_pb2.LoginRequest(username=username, password="not a password here")
    for text in (False, True):
        grpc_web(SERVICES["auth-service"], "/bookstore.auth.v1.AuthService/Login",
                 request.SerializeToString(), text=text)
    assert handled(metrics, "Login", "Unauthenticated") == before + 2

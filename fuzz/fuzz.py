"""Sends random and mutated messages, tokens and metadata to every RPC of a running Bookstore
and fails on any answer a client should never see: INTERNAL, UNKNOWN or DATA_LOSS (bytes that
are not a protobuf message excepted, as in every gRPC implementation), a service that stops
answering, or a response far larger than its request.

    python3 fuzz/fuzz.py [--calls N] [--seed S] [--auth HOST:PORT] [--book HOST:PORT]

Messages are generated from the services' descriptors (every field, nested messages, repeated
fields, wild strings and integers), half of them mutations of valid requests; metadata is a
valid token, a mutated one, garbage, or none. Uses the Python stubs of clients/python
(`./generate.sh`). Bounded: N calls in all (default 3000), loopback only.
"""

import argparse
import os
import random
import sys

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "clients", "python"))
from bookstore_client import Bookstore, auth_pb2, book_pb2  # noqa: E402
from google.protobuf import descriptor as D  # noqa: E402

NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}
WILD_STRINGS = [
    "", " ", "\x00", "a\x00b", "'; DROP TABLE books; --", "%s%n", "😀" * 50, "é" * 300,
    "x" * 5000, "\udcff".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
    "00000000-0000-0000-0000-000000000000", "01930000-0000-7000-8000-000000000000",
    "*", "title", "price_cents", "books:read", "books:admin users:read", "../../etc/passwd",
    "\r\nx-injected: 1", "9780306406157", "978-0-306-40615-7", "-1", "1e400", "NaN",
]
WILD_INTS = [0, 1, -1, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63), 50, 1000, 1001]


def wild_string(rng):
    if rng.random() < 0.5:
        return rng.choice(WILD_STRINGS)
    n = rng.choice([1, 3, 12, 40, 200, 201, 1000])
    return "".join(chr(rng.choice([rng.randint(32, 126), rng.randint(0, 0x2FF), rng.randint(0x1F300, 0x1F64F)])) for _ in range(n))


def fill(message, rng, depth=0):
    """Sets a random subset of `message`'s fields to random values."""
    for field in message.DESCRIPTOR.fields:
        if rng.random() < 0.35:
            continue
        count = rng.choice([1, 1, 2, 5]) if field.is_repeated else None
        values = []
        for _ in range(count or 1):
            if field.type == D.FieldDescriptor.TYPE_MESSAGE:
                if depth > 3:
                    continue
                if count is not None:
                    sub = getattr(message, field.name).add()
                else:
                    sub = getattr(message, field.name)
                    sub.SetInParent()
                fill(sub, rng, depth + 1)
                continue
            if field.type == D.FieldDescriptor.TYPE_STRING:
                values.append(wild_string(rng))
            elif field.type == D.FieldDescriptor.TYPE_BOOL:
                values.append(rng.random() < 0.5)
            elif field.type == D.FieldDescriptor.TYPE_BYTES:
                values.append(rng.randbytes(rng.choice([0, 8, 32])))
            elif field.type in (D.FieldDescriptor.TYPE_INT32, D.FieldDescriptor.TYPE_SINT32, D.FieldDescriptor.TYPE_SFIXED32):
                values.append(max(-(2**31), min(2**31 - 1, rng.choice(WILD_INTS))))
            elif field.type in (D.FieldDescriptor.TYPE_UINT32, D.FieldDescriptor.TYPE_FIXED32):
                values.append(abs(rng.choice(WILD_INTS)) % 2**32)
            elif field.type in (D.FieldDescriptor.TYPE_UINT64, D.FieldDescriptor.TYPE_FIXED64):
                values.append(abs(rng.choice(WILD_INTS)) % 2**64)
            elif field.type == D.FieldDescriptor.TYPE_ENUM:
                values.append(rng.choice(field.enum_type.values).number)
            else:
                values.append(rng.choice(WILD_INTS))
        if not values:
            continue
        if count is not None:
            getattr(message, field.name).extend(values)
        else:
            try:
                setattr(message, field.name, values[0])
            except (ValueError, TypeError):
                pass
    return message


def mutate(data, rng):
    """Flips, drops or duplicates a few bytes of a serialized message."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not data:
            data.extend(rng.randbytes(4))
        i = rng.randrange(len(data))
        op = rng.random()
        if op < 0.5:
            data[i] ^= 1 << rng.randrange(8)
        elif op < 0.75:
            del data[i]
        else:
            data[i:i] = data[i:i + rng.randint(1, 8)]
    return bytes(data)


def mutate_token(token, rng):
    chars = list(token)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(chars))
        chars[i] = rng.choice("ABCxyz019-_.=")
    return "".join(chars)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=random.randrange(2**32))
    parser.add_argument("--auth", default=os.environ.get("BOOKSTORE_AUTH_ADDR", "localhost:50051"))
    parser.add_argument("--book", default=os.environ.get("BOOKSTORE_BOOK_ADDR", "localhost:50052"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(f"fuzz: seed {args.seed}, {args.calls} calls")

    shop = Bookstore(args.auth, args.book)
    username = f"fuzz{os.getpid()}{random.randrange(10**6)}"
    shop.register(username, "fuzzing passphrase long enough")
    shop.login(username, "fuzzing passphrase long enough")
    created = shop.books.CreateBook(book_pb2.CreateBookRequest(book=book_pb2.Book(title="Seed", author="Fuzz", price_cents=1)), metadata=shop.auth_metadata()).book
    valid = {
        "Register": auth_pb2.RegisterRequest(username="fuzzer", password="a long enough passphrase"),
        "Login": auth_pb2.LoginRequest(username=username, password="fuzzing passphrase long enough"),
        "RefreshToken": auth_pb2.RefreshTokenRequest(refresh_token=shop.refresh_token),
        "IssueClientToken": auth_pb2.IssueClientTokenRequest(client_id="book-service", client_secret="x" * 43),
        "Logout": auth_pb2.LogoutRequest(refresh_token="not-a-token"),
        "GetBook": book_pb2.GetBookRequest(id=created.id),
        "ListBooks": book_pb2.ListBooksRequest(page_size=5, author="Fuzz"),
        "UpdateBook": book_pb2.UpdateBookRequest(book=book_pb2.Book(id=created.id, etag=created.etag, title="T"), update_mask={"paths": ["title"]}),
        "DeleteBook": book_pb2.DeleteBookRequest(id=created.id, etag="W/\"x\""),
        "CreateBook": book_pb2.CreateBookRequest(book=book_pb2.Book(title="A", author="B", price_cents=5), request_id=created.id),
    }
    channels = {"auth": grpc.insecure_channel(args.auth), "book": grpc.insecure_channel(args.book)}
    rpcs = []
    for module, addr_key in ((auth_pb2, "auth"), (book_pb2, "book")):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                rpcs.append((addr_key, service, method))

    counts, failures = {}, []
    for n in range(args.calls):
        where, service, method = rng.choice(rpcs)
        request_type = getattr(auth_pb2 if where == "auth" else book_pb2, method.input_type.name)
        if method.name in valid and rng.random() < 0.5:
            body = mutate(valid[method.name].SerializeToString(), rng)
            raw = True
        else:
            body = fill(request_type(), rng).SerializeToString()
            raw = False
        token = shop.access_token
        metadata = rng.choice([
            [("authorization", f"Bearer {token}")],
            [("authorization", f"Bearer {mutate_token(token, rng)}")],
            [("authorization", "".join(c for c in wild_string(rng) if " " <= c <= "~").strip())],
            [("authorization", "Bearer " + "A" * rng.choice([10, 9000]))],
            [("x-forwarded-for", rng.choice(["1.2.3.4", "::1, 300.1.1.1", "garbage", "1.1.1.1, " * 200]))],
            [],
        ])
        path = f"/{service.full_name}/{method.name}"
        call = (channels[where].unary_stream if method.server_streaming else channels[where].unary_unary)(
            path, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        details = ""
        try:
            if method.server_streaming:
                answers = []
                for item in call(body, metadata=metadata, timeout=2):
                    answers.append(item)
                    if len(answers) >= 3:
                        break
                code, size = grpc.StatusCode.OK, sum(map(len, answers))
            else:
                answer = call(body, metadata=metadata, timeout=10)
                code, size = grpc.StatusCode.OK, len(answer)
        except grpc.RpcError as error:
            code, details = error.code(), error.details() or ""
            size = len(details)
            if code == grpc.StatusCode.DEADLINE_EXCEEDED and method.server_streaming:
                code = grpc.StatusCode.OK  # a stream that stays open is fine
        except ValueError:
            continue  # metadata grpcio refuses to send
        counts[code.name] = counts.get(code.name, 0) + 1
        not_protobuf = raw and code == grpc.StatusCode.INTERNAL and "decode" in details
        if code in NEVER and not not_protobuf:
            failures.append(f"{path}: {code.name} ({details}) for {body[:80]!r}")
        if size > 64 * 1024 + 20 * len(body) and method.name != "ListBooks":
            failures.append(f"{path}: a {size}-byte answer to a {len(body)}-byte request")
    for addr in (args.auth, args.book):
        check = grpc.insecure_channel(addr).unary_unary(
            "/grpc.health.v1.Health/Check", request_serializer=lambda b: b, response_deserializer=lambda b: b)
        if check(b"", timeout=5) != b"\x08\x01":  # HealthCheckResponse{status: SERVING}
            failures.append(f"{addr} is not SERVING after the fuzz")
    print("fuzz: codes " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for f in failures[:30]:
        print("fuzz: FOUND", f)
    print(f"fuzz: {args.calls} calls, {len(failures)} findings (seed {args.seed})")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

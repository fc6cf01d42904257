// A small Node client for Bookstore: @grpc/grpc-js with @grpc/proto-loader, which reads the
// .proto files from ../../proto at run time (no generated code to keep in sync).
'use strict';

const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.join(__dirname, '..', '..', 'proto');

const definition = protoLoader.loadSync(
  ['bookstore/auth/v1/auth.proto', 'bookstore/book/v1/book.proto'],
  {
    includeDirs: [PROTO_ROOT],
    keepCase: true, // field names as in the .proto files (price_cents, update_mask)
    longs: String, // int64 as strings, so prices and sizes never lose precision
    enums: String,
    defaults: true,
  },
);
const proto = grpc.loadPackageDefinition(definition);

// Promise wrapper around a unary method of a grpc-js client.
function unary(client, method) {
  return (request, metadata = new grpc.Metadata()) =>
    new Promise((resolve, reject) => {
      client[method](request, metadata, (error, response) => (error ? reject(error) : resolve(response)));
    });
}

// Both services with promise-returning methods, plus the session's tokens.
class Bookstore {
  constructor({
    authAddr = process.env.BOOKSTORE_AUTH_ADDR || 'localhost:50051',
    bookAddr = process.env.BOOKSTORE_BOOK_ADDR || 'localhost:50052',
    caCert = process.env.BOOKSTORE_CA_CERT,
  } = {}) {
    // TLS trusting the CA in that PEM file (`bookstore up --tls` prints its path), else plaintext.
    const credentials = caCert
      ? grpc.credentials.createSsl(require('node:fs').readFileSync(caCert))
      : grpc.credentials.createInsecure();
    const auth = new proto.bookstore.auth.v1.AuthService(authAddr, credentials);
    const users = new proto.bookstore.auth.v1.UserService(authAddr, credentials);
    const books = new proto.bookstore.book.v1.BookService(bookAddr, credentials);
    this.clients = [auth, users, books];
    this.auth = Object.fromEntries(
      ['Register', 'Login', 'RefreshToken', 'Logout', 'GetJwks'].map((m) => [m, unary(auth, m)]),
    );
    this.users = Object.fromEntries(
      ['GetCurrentUser', 'ChangePassword', 'ListUsers'].map((m) => [m, unary(users, m)]),
    );
    this.books = Object.fromEntries(
      ['CreateBook', 'GetBook', 'ListBooks', 'UpdateBook', 'DeleteBook'].map((m) => [m, unary(books, m)]),
    );
    this.accessToken = null;
    this.refreshToken = null;
  }

  async register(username, password) {
    return (await this.auth.Register({ username, password })).user;
  }

  async login(username, password) {
    const response = await this.auth.Login({ username, password });
    this.accessToken = response.access_token;
    this.refreshToken = response.refresh_token;
    return response;
  }

  async refresh() {
    const response = await this.auth.RefreshToken({ refresh_token: this.refreshToken });
    this.accessToken = response.access_token;
    this.refreshToken = response.refresh_token;
    return response;
  }

  async logout() {
    await this.auth.Logout({ refresh_token: this.refreshToken || '' });
    this.accessToken = this.refreshToken = null;
  }

  // Call metadata carrying the access token.
  authMetadata() {
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${this.accessToken}`);
    return metadata;
  }

  close() {
    this.clients.forEach((c) => c.close());
  }
}

module.exports = { Bookstore, grpc };

// The Node client against the real services (started by .ci/clients, or `bookstore up`).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { Bookstore, grpc } = require('../client');

const PASSWORD = 'correct horse battery';

async function loggedIn() {
  const shop = new Bookstore();
  const name = `nt_${crypto.randomBytes(6).toString('hex')}`;
  await shop.register(name, PASSWORD);
  await shop.login(name, PASSWORD);
  return shop;
}

test('the example runs the whole flow', () => {
  const out = execFileSync(process.execPath, ['example.js'], { cwd: path.join(__dirname, '..'), encoding: 'utf8' });
  assert.match(out, /refused as expected: INVALID_ARGUMENT/);
  assert.match(out, /logged out/);
});

test('create, get, update with a stale etag, delete', async () => {
  const shop = await loggedIn();
  const md = () => shop.authMetadata();
  const { book } = await shop.books.CreateBook({ book: { title: 'Dune', author: 'Frank Herbert', price_cents: 999 } }, md());
  assert.equal(book.price_cents, '999');
  const { book: got } = await shop.books.GetBook({ id: book.id }, md());
  assert.deepEqual(got, book);
  const { book: updated } = await shop.books.UpdateBook(
    { book: { ...book, title: 'Dune Messiah' }, update_mask: { paths: ['title'] } },
    md(),
  );
  assert.equal(updated.title, 'Dune Messiah');
  await assert.rejects(
    shop.books.UpdateBook({ book: { ...book, title: 'Stale' }, update_mask: { paths: ['title'] } }, md()),
    (error) => error.code === grpc.status.ABORTED,
  );
  await shop.books.DeleteBook({ id: book.id }, md());
  await assert.rejects(shop.books.GetBook({ id: book.id }, md()), (error) => error.code === grpc.status.NOT_FOUND);
  shop.close();
});

test('an invalid book names every broken field', async () => {
  const shop = await loggedIn();
  await assert.rejects(
    shop.books.CreateBook({ book: { title: ' ', author: '', price_cents: -5 } }, shop.authMetadata()),
    (error) => {
      assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
      for (const field of ['book.title', 'book.author', 'book.price_cents']) assert.match(error.details, new RegExp(field));
      assert.ok(error.metadata.get('grpc-status-details-bin').length > 0, 'rich details are attached');
      return true;
    },
  );
  shop.close();
});

test('calls without a token are unauthenticated', async () => {
  const shop = new Bookstore();
  await assert.rejects(shop.books.ListBooks({}), (error) => error.code === grpc.status.UNAUTHENTICATED);
  await assert.rejects(shop.users.GetCurrentUser({}), (error) => error.code === grpc.status.UNAUTHENTICATED);
  shop.close();
});

test('whoami and logout', async () => {
  const shop = await loggedIn();
  const { user } = await shop.users.GetCurrentUser({}, shop.authMetadata());
  assert.match(user.username, /^nt_/);
  const refresh = shop.refreshToken;
  await shop.logout();
  await assert.rejects(shop.auth.RefreshToken({ refresh_token: refresh }), (error) => error.code === grpc.status.UNAUTHENTICATED);
  shop.close();
});

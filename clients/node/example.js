// The whole Bookstore flow from Node: register, login, CRUD, error handling, a read-only token
// refused on a write, refresh, logout.
// Run against `bookstore up` (or docker compose):  node example.js
'use strict';

const crypto = require('node:crypto');
const { Bookstore, grpc } = require('./client');

const PASSWORD = 'correct horse battery';

async function main() {
  const shop = new Bookstore();
  const username = `js_${crypto.randomBytes(6).toString('hex')}`;
  const user = await shop.register(username, PASSWORD);
  console.log(`registered ${user.username} (${user.id})`);
  const login = await shop.login(username, PASSWORD);
  console.log(`logged in: ${login.token_type} token, expires in ${login.expires_in}s`);

  const { book } = await shop.books.CreateBook(
    {
      book: { title: 'The Left Hand of Darkness', author: 'Ursula K. Le Guin', price_cents: 1099 },
      request_id: crypto.randomUUID(), // makes a retry safe
    },
    shop.authMetadata(),
  );
  console.log(`created ${book.id}: ${book.title}`);

  // Bad input: the status message lists every broken rule.
  try {
    await shop.books.CreateBook({ book: { title: '', author: '', price_cents: -1 } }, shop.authMetadata());
  } catch (error) {
    console.log(`refused as expected: ${grpc.status[error.code]}: ${error.details}`);
  }

  const listed = await shop.books.ListBooks({ page_size: 10 }, shop.authMetadata());
  console.log(`${listed.total_size} book(s): ${listed.books.map((b) => b.title).join(', ')}`);

  // A narrower token: a read-only one (scope books:read) lists but cannot write.
  const readOnly = await shop.auth.Login({ username, password: PASSWORD, scopes: ['books:read'] });
  const reader = new grpc.Metadata();
  reader.set('authorization', `Bearer ${readOnly.access_token}`);
  await shop.books.ListBooks({}, reader);
  try {
    await shop.books.CreateBook({ book: { title: 'Dawn', author: 'Octavia E. Butler' } }, reader);
    throw new Error('a books:read token was allowed to write');
  } catch (error) {
    if (error.code !== grpc.status.PERMISSION_DENIED) throw error;
    console.log(`read-only token (${readOnly.scope}) refused a write: ${grpc.status[error.code]}: ${error.details}`);
  }

  const { book: updated } = await shop.books.UpdateBook(
    { book: { ...book, price_cents: 999 }, update_mask: { paths: ['price_cents'] } },
    shop.authMetadata(),
  );
  console.log(`updated price to ${(Number(updated.price_cents) / 100).toFixed(2)} (etag ${book.etag} -> ${updated.etag})`);

  await shop.refresh();
  await shop.books.DeleteBook({ id: book.id, etag: updated.etag }, shop.authMetadata());
  console.log('deleted it with a refreshed token');

  await shop.logout();
  console.log('logged out');
  shop.close();
}

main().catch((error) => {
  console.error(`error: ${error.code !== undefined ? grpc.status[error.code] + ': ' + error.details : error}`);
  process.exit(1);
});

// The bookshelf page: sign in, list, add, edit and delete books, change the password. Every
// action clears the previous messages, calls a service, and shows either the result, field
// violations beside their inputs, or one sentence in the alert region.

import { Code } from "@connectrpc/connect";
import type { Book } from "./gen/bookstore/book/v1/book_pb";
import { capitalise, problem, type Problem } from "./errors";
import { formatPrice, parsePrice } from "./price";
import { endpoints, Session } from "./session";

const PAGE_SIZE = 20;
/** Wait this long after the last keystroke in a filter before listing again. */
const FILTER_DELAY_MS = 250;

const $ = <T extends HTMLElement>(id: string): T => {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`the page has no #${id}`);
  return element as T;
};
const input = (id: string) => $<HTMLInputElement>(id);
const button = (id: string) => $<HTMLButtonElement>(id);
const tbody = () => $<HTMLTableElement>("books").tBodies[0]!;

/** Which input shows a service's field violation: auth-service names request fields,
 *  book-service names them under `book.`. */
const FIELD_INPUTS: Record<string, string> = {
  username: "username",
  password: "password",
  current_password: "current-password",
  new_password: "new-password",
  "book.title": "title",
  "book.author": "author",
  "book.publisher": "publisher",
  "book.price_cents": "price",
  "book.isbn": "isbn",
};

/** The book being edited, as last read from book-service (its etag guards the save). */
let editing: Book | undefined;
/** Page tokens of the pages before the current one, and the current one's. */
let pageTokens: string[] = [];
let pageToken = "";
let nextPageToken = "";
/** Bumped by every listing, so an older answer arriving late is dropped. */
let listing = 0;

function clearMessages(): void {
  $("alert").textContent = "";
  $("status").textContent = "";
  for (const error of document.querySelectorAll<HTMLElement>(".field-error")) {
    error.textContent = "";
  }
  for (const field of document.querySelectorAll<HTMLInputElement>("input[aria-invalid]")) {
    field.removeAttribute("aria-invalid");
  }
}

function say(message: string): void {
  $("status").textContent = message;
}

function fieldError(inputId: string, message: string): void {
  $(`${inputId}-error`).textContent = message;
  input(inputId).setAttribute("aria-invalid", "true");
}

/** Shows `p`: its field violations beside their inputs, the rest in the alert region. */
function show(p: Problem): void {
  const unplaced: string[] = [];
  for (const [field, description] of p.fields) {
    const inputId = FIELD_INPUTS[field];
    if (inputId !== undefined) fieldError(inputId, capitalise(description));
    else unplaced.push(`${field}: ${description}`);
  }
  if (p.fields.size === 0) $("alert").textContent = p.message;
  else if (unplaced.length > 0) $("alert").textContent = `Please check: ${unplaced.join("; ")}.`;
  else $("alert").textContent = "Please correct the highlighted fields.";
}

/** Runs `action` after the actions before it (a Log in clicked while Register is still
 *  hashing waits for it; a list never overtakes the add before it), with `button` disabled
 *  meanwhile, showing any error it throws. */
let queue: Promise<void> = Promise.resolve();
function act(busy: HTMLButtonElement | null, service: string, action: () => Promise<void>): void {
  if (busy !== null) busy.disabled = true;
  const run = async () => {
    clearMessages();
    try {
      await action();
    } catch (error) {
      show(problem(error, service));
    } finally {
      if (busy !== null) busy.disabled = false;
    }
  };
  queue = queue.then(run);
}

function showSignedIn(username: string): void {
  $("whoami").textContent = username;
  input("account-name").value = username;
  $("session").hidden = false;
  $("signed-out").hidden = true;
  $("signed-in").hidden = false;
}

function showSignedOut(): void {
  $("whoami").textContent = "";
  $("session").hidden = true;
  $("signed-in").hidden = true;
  $("signed-out").hidden = false;
  tbody().replaceChildren();
  stopEditing();
  pageTokens = [];
  pageToken = "";
}

async function enter(session: Session): Promise<void> {
  const answer = await session.users.getCurrentUser({});
  showSignedIn(answer.user?.username ?? "");
  input("password").value = "";
  pageTokens = [];
  pageToken = "";
  await list(session);
}

async function list(session: Session): Promise<void> {
  const mine = ++listing;
  const answer = await session.books.listBooks({
    pageSize: PAGE_SIZE,
    pageToken,
    author: input("filter-author").value.trim(),
    titleQuery: input("search-title").value.trim(),
  });
  if (mine !== listing) return;
  if (answer.books.length === 0 && pageTokens.length > 0) {
    // The page emptied (its last book deleted): show the one before it.
    pageToken = pageTokens.pop() ?? "";
    return list(session);
  }
  nextPageToken = answer.nextPageToken;
  const rows = answer.books.map((book) => row(session, book));
  tbody().replaceChildren(...rows);
  $("empty").hidden = rows.length > 0;
  const page = pageTokens.length + 1;
  const pages = Math.max(1, Math.ceil(answer.totalSize / PAGE_SIZE));
  $("page-info").textContent = `Page ${page} of ${pages} · ${answer.totalSize} ${answer.totalSize === 1 ? "book" : "books"}`;
  $<HTMLButtonElement>("previous").disabled = pageTokens.length === 0;
  $<HTMLButtonElement>("next").disabled = nextPageToken === "";
}

function row(session: Session, book: Book): HTMLTableRowElement {
  const tr = document.createElement("tr");
  tr.dataset.bookId = book.id;
  const cell = (text: string, className?: string) => {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  };
  const edit = document.createElement("button");
  edit.type = "button";
  edit.className = "secondary";
  edit.textContent = "Edit";
  edit.setAttribute("aria-label", `Edit ${book.title}`);
  edit.addEventListener("click", () => startEditing(book));
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "danger";
  remove.textContent = "Delete";
  remove.addEventListener("click", () =>
    act(remove, "book-service", async () => {
      try {
        await session.books.deleteBook({ id: book.id, etag: book.etag });
        say(`Deleted “${book.title}”.`);
        if (editing?.id === book.id) stopEditing();
      } catch (error) {
        const p = problem(error, "book-service");
        if (p.code === Code.Aborted) {
          $("alert").textContent = `“${book.title}” changed since the list was shown, so it was not deleted. The list now shows its current version.`;
        } else if (p.code !== Code.NotFound) {
          throw error;
        }
      }
      await list(session);
    }),
  );
  const actions = cell("", "actions");
  actions.append(edit, " ", remove);
  tr.append(cell(book.title), cell(book.author), cell(formatPrice(book.priceCents), "price"), actions);
  tr.addEventListener("click", (event) => {
    if (!(event.target instanceof HTMLButtonElement)) startEditing(book);
  });
  return tr;
}

function fillForm(book: Book): void {
  input("title").value = book.title;
  input("author").value = book.author;
  input("publisher").value = book.publisher;
  input("price").value = formatPrice(book.priceCents);
  input("isbn").value = book.isbn;
}

function startEditing(book: Book): void {
  editing = book;
  fillForm(book);
  $("book-form-title").textContent = `Edit “${book.title}”`;
  $("add").hidden = true;
  $("save").hidden = false;
  $("cancel").hidden = false;
  input("title").focus();
}

function stopEditing(): void {
  editing = undefined;
  $<HTMLFormElement>("book-form").reset();
  $("book-form-title").textContent = "Add a book";
  $("add").hidden = false;
  $("save").hidden = true;
  $("cancel").hidden = true;
}

/** The form's values as book fields, or undefined after marking an unreadable price. */
function formBook() {
  const priceCents = parsePrice(input("price").value);
  if (priceCents === undefined) {
    fieldError("price", "Enter a price like 12.99.");
    $("alert").textContent = "Please correct the highlighted fields.";
    return undefined;
  }
  return {
    title: input("title").value,
    author: input("author").value,
    publisher: input("publisher").value,
    priceCents,
    isbn: input("isbn").value,
  };
}

/** 128 random bits as a UUIDv4: CreateBook's request_id, so a retried add stores one book.
 *  (crypto.randomUUID exists only in secure contexts; this page may be served over http.) */
function requestId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

async function main(): Promise<void> {
  const session = new Session(await endpoints());
  session.onEnded = () => {
    showSignedOut();
    $("alert").textContent = "Your session has ended. Log in again.";
  };

  $<HTMLFormElement>("auth-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act(button("login"), "auth-service", async () => {
      if (session.active) await session.logout();
      await session.login(input("username").value, input("password").value);
      await enter(session);
    });
  });
  $("register").addEventListener("click", () =>
    act(button("register"), "auth-service", async () => {
      const answer = await session.auth.register({
        username: input("username").value,
        password: input("password").value,
      });
      say(`Registered ${answer.user?.username ?? ""}. Log in to open your shelf.`);
    }),
  );
  $("logout").addEventListener("click", () =>
    act(button("logout"), "auth-service", async () => {
      await session.logout();
      showSignedOut();
      say("Logged out.");
    }),
  );

  const relist = () => act(null, "book-service", () => list(session));
  $("next").addEventListener("click", () => {
    if (nextPageToken === "") return;
    pageTokens.push(pageToken);
    pageToken = nextPageToken;
    relist();
  });
  $("previous").addEventListener("click", () => {
    if (pageTokens.length === 0) return;
    pageToken = pageTokens.pop() ?? "";
    relist();
  });
  let filterTimer: ReturnType<typeof setTimeout> | undefined;
  for (const id of ["filter-author", "search-title"]) {
    input(id).addEventListener("input", () => {
      clearTimeout(filterTimer);
      filterTimer = setTimeout(() => {
        // New filters start from the first page (page tokens belong to their filters).
        pageTokens = [];
        pageToken = "";
        relist();
      }, FILTER_DELAY_MS);
    });
  }

  $<HTMLFormElement>("book-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (editing !== undefined) {
      $("save").click();
      return;
    }
    act(button("add"), "book-service", async () => {
      const book = formBook();
      if (book === undefined) return;
      const answer = await session.books.createBook({ book, requestId: requestId() });
      $<HTMLFormElement>("book-form").reset();
      say(`Added “${answer.book?.title ?? book.title}”.`);
      await list(session);
    });
  });
  $("save").addEventListener("click", () =>
    act(button("save"), "book-service", async () => {
      const before = editing;
      if (before === undefined) return;
      const book = formBook();
      if (book === undefined) return;
      const paths = (Object.keys(book) as (keyof typeof book)[]).filter((key) => book[key] !== before[key]);
      if (paths.length === 0) {
        stopEditing();
        say("Nothing changed.");
        return;
      }
      try {
        const answer = await session.books.updateBook({
          book: { ...book, id: before.id, etag: before.etag },
          updateMask: { paths: paths.map((key) => (key === "priceCents" ? "price_cents" : key)) },
        });
        stopEditing();
        say(`Saved “${answer.book?.title ?? book.title}”.`);
      } catch (error) {
        if (problem(error, "book-service").code !== Code.Aborted) throw error;
        // Someone changed the book since this page read it: show what it is now.
        const current = await session.books.getBook({ id: before.id });
        if (current.book === undefined) throw error;
        startEditing(current.book);
        $("alert").textContent =
          "This book was changed elsewhere since you opened it, so your edit was not saved. " +
          "The form now shows its current version: make your change again and save.";
      }
      await list(session);
    }),
  );
  $("cancel").addEventListener("click", () => {
    clearMessages();
    stopEditing();
  });

  $<HTMLFormElement>("password-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act(button("change-password"), "auth-service", async () => {
      const newPassword = input("new-password").value;
      // Read before the call: a renewal racing the change is refused (the change ended this
      // session too), and that shows the page signed out meanwhile.
      const username = $("whoami").textContent ?? "";
      await session.users.changePassword({
        currentPassword: input("current-password").value,
        newPassword,
      });
      // The change ended every session, this one too: sign in again with the new password,
      // and show the signed-in page again (whatever a refused renewal showed meanwhile).
      session.forget();
      await session.login(username, newPassword);
      await enter(session);
      clearMessages();
      $<HTMLFormElement>("password-form").reset();
      say("Password changed. Every other session was signed out.");
    });
  });

  try {
    if (await session.resume()) {
      await enter(session);
      return;
    }
  } catch (error) {
    show(problem(error, "the bookstore"));
  }
  if (!session.active) showSignedOut();
}

void main().catch((error: unknown) => show(problem(error, "the bookstore")));

// The signed-in session: gRPC-Web clients of both services, the access token (kept in memory
// only, renewed before it expires) and the refresh token (in sessionStorage, so a reload of
// the tab stays signed in and closing the tab forgets it). Tokens never reach the console,
// the DOM or localStorage.

import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { AuthService, UserService } from "./gen/bookstore/auth/v1/auth_pb";
import { BookService } from "./gen/bookstore/book/v1/book_pb";
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema } from "./gen/google/rpc/error_details_pb";

/** Where the services are: `bookstore up` serves this as /config.json. */
export interface Endpoints {
  auth_url: string;
  book_url: string;
}

const REFRESH_TOKEN_KEY = "bookstore.refresh_token";
/** Renew the access token this long before it expires (or at half its life, if shorter). */
const RENEW_AHEAD_MS = 60_000;

/** The endpoints from /config.json, or the default ports on this page's host. */
export async function endpoints(): Promise<Endpoints> {
  try {
    const answer = await fetch("config.json", { cache: "no-store" });
    if (answer.ok) {
      const config = (await answer.json()) as Partial<Endpoints>;
      if (typeof config.auth_url === "string" && typeof config.book_url === "string") {
        return { auth_url: config.auth_url, book_url: config.book_url };
      }
    }
  } catch {
    // Fall through to the defaults: a page served by something other than `bookstore up`.
  }
  const host = `${location.protocol}//${location.hostname}`;
  return { auth_url: `${host}:50051`, book_url: `${host}:50052` };
}

export class Session {
  readonly auth: Client<typeof AuthService>;
  readonly users: Client<typeof UserService>;
  readonly books: Client<typeof BookService>;
  private accessToken = "";
  private renewTimer: ReturnType<typeof setTimeout> | undefined;
  /** Told when the session ends by itself (the refresh token was refused). */
  onEnded: () => void = () => {};

  constructor(endpoints: Endpoints) {
    // Every call to a token-protected service carries the current access token; a refused
    // token (expired or revoked: reason TOKEN_*) is retried once after a refresh. Other
    // UNAUTHENTICATED answers, such as a wrong current password, are the caller's to show.
    const bearer: Interceptor = (next) => async (request) => {
      request.header.set("authorization", `Bearer ${this.accessToken}`);
      try {
        return await next(request);
      } catch (error) {
        if (!tokenRefused(error) || !(await this.renew())) throw error;
        request.header.set("authorization", `Bearer ${this.accessToken}`);
        return await next(request);
      }
    };
    const transport = (baseUrl: string, interceptors: Interceptor[]) =>
      createGrpcWebTransport({ baseUrl, useBinaryFormat: true, interceptors });
    this.auth = createClient(AuthService, transport(endpoints.auth_url, []));
    this.users = createClient(UserService, transport(endpoints.auth_url, [bearer]));
    this.books = createClient(BookService, transport(endpoints.book_url, [bearer]));
  }

  /** True while tokens are held. */
  get active(): boolean {
    return this.accessToken !== "";
  }

  /** Logs in; throws the service's error. */
  async login(username: string, password: string): Promise<void> {
    const answer = await this.auth.login({ username, password });
    this.hold(answer.accessToken, answer.refreshToken, answer.expiresIn);
  }

  /** Restores the session of this tab after a reload; false when there is none to restore. */
  async resume(): Promise<boolean> {
    if (sessionStorage.getItem(REFRESH_TOKEN_KEY) === null) return false;
    return this.renew();
  }

  /** Ends the session at auth-service (best effort) and forgets the tokens. */
  async logout(): Promise<void> {
    const refreshToken = sessionStorage.getItem(REFRESH_TOKEN_KEY);
    this.forget();
    if (refreshToken !== null) {
      try {
        await this.auth.logout({ refreshToken });
      } catch {
        // Signed out here either way; the refresh token expires by itself.
      }
    }
  }

  /** Forgets the tokens without telling auth-service. */
  forget(): void {
    this.accessToken = "";
    clearTimeout(this.renewTimer);
    sessionStorage.removeItem(REFRESH_TOKEN_KEY);
  }

  private renewing: Promise<boolean> | undefined;

  /** Trades the refresh token for new tokens; concurrent callers share one exchange (a
   *  refresh token is accepted once). False, with the session ended, when it is refused. */
  private renew(): Promise<boolean> {
    this.renewing ??= (async () => {
      const refreshToken = sessionStorage.getItem(REFRESH_TOKEN_KEY);
      if (refreshToken === null) return false;
      try {
        const answer = await this.auth.refreshToken({ refreshToken });
        this.hold(answer.accessToken, answer.refreshToken, answer.expiresIn);
        return true;
      } catch (error) {
        // Ended only if the refused token is still the one held: a login that finished while
        // this exchange was on its way (after a password change) holds new tokens to keep.
        const held = sessionStorage.getItem(REFRESH_TOKEN_KEY) === refreshToken;
        if (error instanceof ConnectError && error.code === Code.Unauthenticated && held) {
          this.forget();
          this.onEnded();
        }
        return false;
      }
    })().finally(() => {
      this.renewing = undefined;
    });
    return this.renewing;
  }

  private hold(accessToken: string, refreshToken: string, expiresIn: bigint): void {
    this.accessToken = accessToken;
    sessionStorage.setItem(REFRESH_TOKEN_KEY, refreshToken);
    const lifeMs = Number(expiresIn) * 1000;
    const renewInMs = Math.max(1_000, Math.min(lifeMs - RENEW_AHEAD_MS, lifeMs / 2));
    clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(() => void this.renew(), renewInMs);
  }
}

function tokenRefused(error: unknown): boolean {
  return (
    error instanceof ConnectError &&
    error.code === Code.Unauthenticated &&
    error.findDetails(ErrorInfoSchema).some((info) => info.reason.startsWith("TOKEN_"))
  );
}

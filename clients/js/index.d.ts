// Type declarations for @sessiongate/client (hand-written; index.js is plain JavaScript).

/** A user as the auth API returns it. */
export interface User {
  id: string | number;
  username: string;
  email: string | null;
  emailVerified: boolean;
  mfa: boolean;
  /** RFC 3339 timestamp. */
  createdAt: string;
}

/** One server-side session of the user (`id` is a public identifier, never the cookie token). */
export interface Session {
  id: string;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
  authenticatedAt: string;
  ip: string | null;
  userAgent: string | null;
  remember: boolean;
  /** True for the session of the request that listed it. */
  current: boolean;
  /** How the user logged in: `password`, `totp`, `recovery_code`, `passkey`, `oidc` (with `provider`). */
  authenticationMethods: { method: string; provider?: string }[];
}

/** RFC 9457 problem details, as sessiongate sends them. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  /** `invalid_credentials`, `not_authenticated`, `csrf_failed`, `reauth_required`, `rate_limited`, `weak_password`, … */
  code?: string;
  /** Validation messages per field. */
  errors?: Record<string, string>;
  [key: string]: unknown;
}

export interface LoginResult {
  user: User;
  csrfToken: string;
}

/** `/login` answer when the account has 2FA: continue with `loginMfa`. */
export interface MfaRequired {
  mfaRequired: true;
}

export interface CurrentSession {
  user: User;
  session: Session;
}

export type MfaCredentials = { code: string } | { recoveryCode: string };

export type ReauthCredentials = { password: string } | MfaCredentials;

/** `POST /mfa/totp/setup`: show `qrSvg` (or `secret`) to the user, then `confirmTotp(code)`. */
export interface TotpSetup {
  /** Base32 secret, for typing into an authenticator app. */
  secret: string;
  /** `otpauth://totp/…` URL (what the QR code encodes). */
  otpauthUrl: string;
  /** The QR code as a standalone SVG document. */
  qrSvg: string;
}

export type FetchLike = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

export interface ClientOptions {
  /** Origin (and optional path prefix) of sessiongate. Default `''`: this page's origin. */
  baseUrl?: string;
  /** sessiongate's `auth.base_path`. Default `'/api/auth'`. */
  authPath?: string;
  /** fetch implementation. Default `globalThis.fetch` (looked up at call time). */
  fetch?: FetchLike;
  /**
   * Called when a request meets 401 `not_authenticated` (the fetch wrapper and every auth
   * method except `session()`, `login()`, `loginMfa()`, `signup()`, `logout()`).
   */
  onUnauthenticated?: (error: NotAuthenticatedError) => void | Promise<void>;
  /** sessiongate's `csrf.cookie_name` (`__Host-` + it is also tried). Default `'csrftoken'`. */
  csrfCookieName?: string;
  /** sessiongate's `csrf.header_name`. Default `'X-CSRFToken'`. */
  csrfHeaderName?: string;
  /**
   * More origins `fetch` may send the CSRF token and cookies to, besides sessiongate's
   * (`baseUrl`) and the page's own. To any other origin `fetch` is a plain fetch.
   */
  trustedOrigins?: string[];
}

/** `GET /config`. */
export interface GatewayConfig {
  passwordMinLength: number;
  signup: boolean;
  passkeys: boolean;
}

export interface SessiongateClient extends PasskeyClient {
  /** The public policy: password length, whether signup and passkeys are on. */
  config(): Promise<GatewayConfig>;
  /**
   * The CSRF token currently kept in memory (null until known). Assigning replaces it
   * (`null` forgets it); useful in tests.
   */
  token: string | null;

  /** GET /csrf: fetch and remember a fresh masked (64-char) CSRF token. */
  csrf(): Promise<string>;
  /** POST /login (username or email). */
  login(username: string, password: string, options?: { remember?: boolean }): Promise<LoginResult | MfaRequired>;
  /** POST /login/mfa after `login` answered `{mfaRequired: true}`. */
  loginMfa(credentials: MfaCredentials): Promise<LoginResult>;
  /** POST /logout (succeeds also when not logged in). */
  logout(): Promise<void>;
  /** GET /session: the current user and session, or null when not logged in. */
  session(): Promise<CurrentSession | null>;
  /** POST /signup: creates the account and logs in. */
  signup(data: { username: string; password: string; email?: string }): Promise<LoginResult>;
  /** GET /sessions: all sessions of the user. */
  sessions(): Promise<Session[]>;
  /** DELETE /sessions/{id}. */
  revokeSession(id: string): Promise<void>;
  /** POST /sessions/revoke-others: resolves to the number of sessions revoked. */
  revokeOthers(): Promise<number>;
  /** POST /password (needs a recent login: may throw ReauthRequiredError). */
  changePassword(currentPassword: string, newPassword: string): Promise<void>;
  /**
   * POST /reauth: refreshes the session's `authenticatedAt` and rotates it (the new CSRF token
   * is kept). A string is the password; or pass `{password}`, `{code}` or `{recoveryCode}`.
   * With 2FA on, a code (or recovery code) is required: the password alone is refused.
   */
  reauth(credentials: string | ReauthCredentials): Promise<void>;
  /** POST /mfa/totp/setup (needs a recent login: may throw ReauthRequiredError). */
  setupTotp(): Promise<TotpSetup>;
  /** POST /mfa/totp/confirm with the first code: resolves to the 10 single-use recovery codes. */
  confirmTotp(code: string): Promise<string[]>;
  /** POST /mfa/totp/disable (needs a recent login). Other sessions are revoked. */
  disableTotp(): Promise<void>;
  /** POST /email (needs a recent login): the new address takes effect once confirmed by mail. */
  changeEmail(email: string): Promise<void>;
  /** POST /email/verify with the token from the confirmation mail. */
  verifyEmail(token: string): Promise<{ email: string; emailVerified: true }>;
  /** POST /email/cancel with the token from the notice to the old address (no login needed). */
  cancelEmailChange(token: string): Promise<void>;
  /** POST /password/reset: always succeeds (no account enumeration). */
  requestPasswordReset(email: string): Promise<void>;
  /** POST /password/reset/confirm with the token from the reset mail. */
  confirmPasswordReset(token: string, newPassword: string): Promise<void>;
  /** Any other auth API call, `path` relative to `authPath` (e.g. `'/mfa/totp/setup'`). */
  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;

  /**
   * fetch() for the app's own API: `credentials: 'include'`, `X-CSRFToken` on unsafe methods,
   * one token refresh and retry on 403 `csrf_failed` (when the body is replayable). Relative
   * URLs are resolved against `baseUrl`. Resolves to the Response whatever its status. To an
   * origin other than sessiongate's, the page's or `trustedOrigins`, it sends no token and
   * `credentials: 'same-origin'` unless `init.credentials` says otherwise.
   */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
}

export function createClient(options?: ClientOptions): SessiongateClient;

/** Thrown by the auth methods for every non-2xx answer. */
export class SessiongateError extends Error {
  constructor(problem: Problem, status?: number);
  /** HTTP status. */
  readonly status: number;
  /** The problem `code`, or null when the answer was not a sessiongate problem. */
  readonly code: string | null;
  readonly problem: Problem;
  /** `problem.errors`, or `{}`. */
  readonly errors: Record<string, string>;
  /** The typed error for a non-2xx Response (reads its body). */
  static fromResponse(response: Response): Promise<SessiongateError>;
}

/** 401 `not_authenticated`. */
export class NotAuthenticatedError extends SessiongateError {}
/** 403 `reauth_required`: call `reauth(password)` and try again. */
export class ReauthRequiredError extends SessiongateError {}
/** 403 `csrf_failed` or `origin_not_allowed`. */
export class CsrfError extends SessiongateError {}
/** 429 `rate_limited`. */
export class RateLimitedError extends SessiongateError {
  constructor(problem: Problem, status?: number, retryAfter?: number | null);
  /** Seconds to wait, from `Retry-After`; null when absent. */
  readonly retryAfter: number | null;
}

/** A registered passkey (never its key material). */
export interface Passkey {
  id: number;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
  /** Whether it can log in without a username (the browser's hint; null when unknown). */
  discoverable: boolean | null;
  transports: string[];
}

/** A passkey ceremony that failed in the browser (server refusals are SessiongateErrors). */
export declare class PasskeyError extends Error {
  readonly reason: 'unsupported' | 'cancelled' | 'exists' | 'security' | 'failed';
}

export interface PasskeyLoginOptions {
  /** Only this account's passkeys; omitted: any passkey of the site. */
  username?: string;
  remember?: boolean;
  /** Offer passkeys in the username field's autofill (`autocomplete="username webauthn"`). */
  autofill?: boolean;
  signal?: AbortSignal;
}

export interface PasskeyClient {
  passkeysSupported(): boolean;
  passkeyAutofillSupported(): Promise<boolean>;
  /** Needs a recent login (ReauthRequiredError otherwise). */
  registerPasskey(options?: { name?: string; signal?: AbortSignal }): Promise<Passkey>;
  loginWithPasskey(options?: PasskeyLoginOptions): Promise<LoginResult>;
  reauthWithPasskey(options?: { signal?: AbortSignal }): Promise<void>;
  passkeys(): Promise<Passkey[]>;
  renamePasskey(id: number, name: string): Promise<Passkey>;
  /** 409 `last_login_method` when it is the account's only way to log in. */
  deletePasskey(id: number): Promise<void>;
}

// @sessiongate/client — a tiny browser (and Node ≥ 20) client for sessiongate's auth API.
//
// Plain ES module, no dependencies, no build step. sessiongate serves this very file at
// `/_sessiongate/client.js`, so a page behind the gateway can simply
//
//     import { createClient } from '/_sessiongate/client.js';
//
// What it does for you:
//   - sends the cookies (`credentials: 'include'`) on every request;
//   - keeps the CSRF token in memory (from the `csrfToken` field of login/signup/... responses,
//     or the `csrftoken` cookie when the API is same-origin, or a GET /csrf) and attaches it as
//     `X-CSRFToken` to every unsafe request (anything but GET, HEAD, OPTIONS, TRACE);
//   - on a 403 `csrf_failed` it fetches a fresh token and retries the request exactly once
//     (when the body can be sent again);
//   - turns RFC 9457 problem responses into typed errors.

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/** Base class of every error the auth methods throw for a non-2xx answer. */
export class SessiongateError extends Error {
  /**
   * @param {object} problem RFC 9457 problem object (`{type, title, status, detail, code, errors?}`)
   * @param {number} [status] HTTP status (defaults to `problem.status`)
   */
  constructor(problem, status) {
    const p = problem && typeof problem === 'object' ? problem : {};
    const st = status ?? p.status ?? 0;
    super(p.detail || p.title || `HTTP ${st}`);
    this.name = new.target.name;
    /** HTTP status code. */
    this.status = st;
    /** Machine-readable problem code (`invalid_credentials`, `csrf_failed`, …) or null. */
    this.code = typeof p.code === 'string' ? p.code : null;
    /** The full problem object as the server sent it (a synthesized one for non-JSON answers). */
    this.problem = p;
  }

  /** Validation messages per field (`problem.errors`), or an empty object. */
  get errors() {
    return this.problem.errors && typeof this.problem.errors === 'object' ? this.problem.errors : {};
  }

  /**
   * Build the matching typed error from a non-2xx Response (reads its body).
   * Useful for the app's own API calls made with `client.fetch`.
   * @param {Response} response
   * @returns {Promise<SessiongateError>}
   */
  static async fromResponse(response) {
    const body = await readBody(response);
    return errorFor(response, body);
  }
}

/** 401 `not_authenticated`: no (valid) session. */
export class NotAuthenticatedError extends SessiongateError {}

/** 403 `reauth_required`: the operation needs a recent login; call `client.reauth(password)`. */
export class ReauthRequiredError extends SessiongateError {}

/** 403 `csrf_failed` or `origin_not_allowed`: the CSRF checks refused the request. */
export class CsrfError extends SessiongateError {}

/** 429 `rate_limited`; `retryAfter` is the number of seconds to wait (or null if unknown). */
export class RateLimitedError extends SessiongateError {
  constructor(problem, status, retryAfter = null) {
    super(problem, status);
    /** Seconds to wait before trying again (from `Retry-After`), or null. */
    this.retryAfter = retryAfter;
  }
}

/**
 * A passkey ceremony failed in the browser (not on the server: those are SessiongateErrors).
 * `reason`: 'unsupported' (no WebAuthn here), 'cancelled' (the user dismissed the dialog, it
 * timed out, or no passkey matched), 'exists' (this authenticator is already registered),
 * 'security' (the page's origin does not fit the relying party), or 'failed'. The browser's
 * DOMException is `cause`.
 */
export class PasskeyError extends Error {
  constructor(reason, message, cause) {
    super(message, cause ? { cause } : undefined);
    this.name = 'PasskeyError';
    /** @type {'unsupported' | 'cancelled' | 'exists' | 'security' | 'failed'} */
    this.reason = reason;
  }
}

/**
 * Create a client.
 * @param {object} [options]
 * @param {string} [options.baseUrl=''] origin (and optional path prefix) of sessiongate; '' = this page's origin
 * @param {string} [options.authPath='/api/auth'] sessiongate's `auth.base_path`
 * @param {typeof fetch} [options.fetch=globalThis.fetch] fetch implementation (e.g. a cookie-jar fetch in Node)
 * @param {(error: NotAuthenticatedError) => void} [options.onUnauthenticated] called when a request meets 401 `not_authenticated`
 * @param {string} [options.csrfCookieName='csrftoken'] sessiongate's `csrf.cookie_name`
 * @param {string} [options.csrfHeaderName='X-CSRFToken'] sessiongate's `csrf.header_name`
 * @param {string[]} [options.trustedOrigins=[]] more origins `client.fetch` may send the CSRF token
 *   and cookies to (besides sessiongate's and this page's); to any other it is a plain fetch
 */
export function createClient(options = {}) {
  const {
    baseUrl = '',
    authPath = '/api/auth',
    fetch: fetchOption,
    onUnauthenticated,
    csrfCookieName = 'csrftoken',
    csrfHeaderName = 'X-CSRFToken',
    trustedOrigins = [],
  } = options;

  const base = String(baseUrl).replace(/\/+$/, '');
  const auth = '/' + String(authPath).replace(/^\/+|\/+$/g, '');
  /** @type {string | null} */
  let token = null;
  /** @type {Promise<string> | null} */
  let pendingCsrf = null;

  // Called as a plain function: `window.fetch` throws "Illegal invocation" when its `this` is
  // another object. Resolved lazily so a polyfill installed after createClient() is honoured.
  const doFetch = (input, init) => {
    const f = fetchOption ?? globalThis.fetch;
    if (typeof f !== 'function') throw new TypeError('sessiongate client: no fetch implementation');
    return f(input, init);
  };

  function resolveUrl(input) {
    if (typeof input !== 'string') return input; // URL objects are absolute
    if (/^[a-z][a-z0-9+.-]*:/i.test(input) || input.startsWith('//') || !base) return input;
    return base + (input.startsWith('/') ? input : '/' + input);
  }

  function sameOriginApi() {
    if (!base) return true;
    if (typeof location === 'undefined') return false;
    try {
      return new URL(base, location.href).origin === location.origin;
    } catch {
      return false;
    }
  }

  // The origins the token (and the cookies) may go to: sessiongate's, and this page's own.
  // A token sent elsewhere could be replayed from there; client.fetch to any other origin is a
  // plain fetch.
  function tokenOrigins() {
    const here = typeof location !== 'undefined' ? location.href : undefined;
    const origins = new Set();
    for (const o of trustedOrigins) {
      try {
        origins.add(new URL(String(o)).origin);
      } catch {
        // Not an absolute URL: nothing to trust.
      }
    }
    if (here) origins.add(new URL(here).origin);
    try {
      if (base) origins.add(new URL(base, here).origin);
    } catch {
      // A relative baseUrl without a page: requests to it are relative too.
    }
    return origins;
  }

  // Decided on the URL as fetch() will read it (WHATWG parsing: `\\evil.test`, ` //evil.test`,
  // `/\tevil.test` are all another host), never on how the string looks.
  function mayCarryToken(target) {
    const href = typeof target === 'string' ? target : String(target.url ?? target.href ?? target);
    const here = typeof location !== 'undefined' ? location.href : undefined;
    let url;
    try {
      url = new URL(href, here);
    } catch {
      return false; // fetch() cannot resolve it either
    }
    return tokenOrigins().has(url.origin);
  }


  /** The CSRF cookie, when this page can read it and it belongs to the API (same origin). */
  function cookieToken() {
    if (typeof document === 'undefined' || typeof document.cookie !== 'string') return null;
    if (!sameOriginApi()) return null;
    return readCookie(document.cookie, csrfCookieName) ?? readCookie(document.cookie, '__Host-' + csrfCookieName);
  }

  function remember(body) {
    if (body && typeof body === 'object' && typeof body.csrfToken === 'string' && body.csrfToken) {
      token = body.csrfToken;
    }
  }

  function notifyUnauthenticated(error) {
    if (typeof onUnauthenticated !== 'function') return;
    try {
      const r = onUnauthenticated(error);
      if (r && typeof r.then === 'function') r.then(undefined, () => {});
    } catch {
      // a failing hook must not break the request that triggered it
    }
  }

  /** GET /csrf; concurrent callers share one request. */
  function refreshCsrf() {
    if (!pendingCsrf) {
      pendingCsrf = (async () => {
        const res = await doFetch(base + auth + '/csrf', {
          method: 'GET',
          credentials: 'include',
          headers: { Accept: 'application/json' },
        });
        const body = await readBody(res);
        if (!res.ok) throw errorFor(res, body);
        remember(body);
        if (!token) throw new SessiongateError({ title: 'No csrfToken in the /csrf response', status: res.status }, res.status);
        return token;
      })().finally(() => {
        pendingCsrf = null;
      });
    }
    return pendingCsrf;
  }

  async function currentToken() {
    if (token) return token;
    return cookieToken() ?? (await refreshCsrf());
  }

  /**
   * After a csrf_failed answer to a request sent with `used`: get a fresh token, unless another
   * request already replaced the one we used.
   */
  async function recoverToken(used) {
    if (token && token !== used) return token;
    token = null;
    return refreshCsrf();
  }

  /** One JSON call to the auth API. Resolves to the parsed body (null for 204). */
  async function api(method, path, body, { unauthOk = false } = {}) {
    const unsafe = !SAFE_METHODS.has(method);
    const url = base + auth + path;
    const payload = body === undefined ? (unsafe && method !== 'DELETE' ? '{}' : undefined) : JSON.stringify(body);
    let used = unsafe ? await currentToken() : null;
    for (let attempt = 0; ; attempt++) {
      const headers = { Accept: 'application/json' };
      // Every unsafe request says JSON (sessiongate answers 415 to anything else), even a bodyless DELETE.
      if (unsafe || payload !== undefined) headers['Content-Type'] = 'application/json';
      if (unsafe) headers[csrfHeaderName] = used;
      const res = await doFetch(url, { method, credentials: 'include', headers, body: payload });
      const data = await readBody(res);
      if (res.ok) {
        remember(data);
        return res.status === 204 ? null : data;
      }
      const error = errorFor(res, data);
      if (unsafe && attempt === 0 && error.code === 'csrf_failed') {
        used = await recoverToken(used);
        continue;
      }
      if (error instanceof NotAuthenticatedError && !unauthOk) notifyUnauthenticated(error);
      throw error;
    }
  }

  /**
   * fetch() for the app's own API calls: cookies included, X-CSRFToken on unsafe methods,
   * one refresh-and-retry on 403 csrf_failed. Resolves to the Response, whatever its status.
   * To an origin other than sessiongate's, this page's or `trustedOrigins`, it is a plain
   * fetch: no token, and cookies only as `credentials` (default 'same-origin') says.
   */
  async function clientFetch(input, init = {}) {
    const isRequest = typeof Request !== 'undefined' && input instanceof Request;
    const method = String(init.method ?? (isRequest ? input.method : 'GET')).toUpperCase();
    const unsafe = !SAFE_METHODS.has(method);
    const target = isRequest ? input : resolveUrl(input);
    const trusted = mayCarryToken(target);
    const carries = unsafe && trusted;
    // A Request carrying a body can be sent twice only from a clone taken before the first send.
    let spare = null;
    let replayable = isReplayable(init.body);
    if (isRequest && init.body === undefined && input.body !== null) {
      replayable = false;
      if (unsafe && !input.bodyUsed) {
        spare = input.clone();
        replayable = true;
      }
    }

    let used = carries ? await currentToken() : null;
    const send = (req) => {
      const headers = new Headers(isRequest ? req.headers : undefined);
      if (init.headers) new Headers(init.headers).forEach((v, k) => headers.set(k, v));
      if (carries) headers.set(csrfHeaderName, used);
      const credentials = init.credentials ?? (trusted ? 'include' : 'same-origin');
      return doFetch(req, { ...init, method, headers, credentials });
    };

    let res = await send(target);
    if (carries && res.status === 403) {
      const problem = await peekProblem(res);
      if (problem && problem.code === 'csrf_failed') {
        used = await recoverToken(used); // also fixes the token for the next request
        if (replayable) res = await send(spare ?? target);
      }
    }
    if (res.status === 401 && typeof onUnauthenticated === 'function') {
      const problem = await peekProblem(res);
      if (problem && problem.code === 'not_authenticated') notifyUnauthenticated(new NotAuthenticatedError(problem, 401));
    }
    return res;
  }

  return {
    /** The current CSRF token in memory (null until one is known). Assignable, e.g. in tests. */
    get token() {
      return token;
    },
    set token(value) {
      token = value == null || value === '' ? null : String(value);
    },

    /** GET /config: `{passwordMinLength, signup, passkeys}`, what a login or account page shows. */
    config() {
      return api('GET', '/config', undefined, { unauthOk: true });
    },

    /** GET /csrf: fetch (and remember) a fresh masked CSRF token; resolves to it. */
    csrf() {
      return refreshCsrf();
    },

    /** POST /login. Resolves to `{user, csrfToken}` or `{mfaRequired: true}`. */
    login(username, password, { remember: rememberMe } = {}) {
      const body = { username, password };
      if (rememberMe !== undefined) body.remember = !!rememberMe;
      return api('POST', '/login', body, { unauthOk: true });
    },

    /** POST /login/mfa with `{code}` or `{recoveryCode}`. Resolves to `{user, csrfToken}`. */
    loginMfa(second) {
      return api('POST', '/login/mfa', second, { unauthOk: true });
    },

    /** POST /logout (204 also when not logged in). */
    async logout() {
      await api('POST', '/logout', undefined, { unauthOk: true });
    },

    /** GET /session: `{user, session}`, or null when not logged in. */
    async session() {
      try {
        return await api('GET', '/session', undefined, { unauthOk: true });
      } catch (e) {
        if (e instanceof NotAuthenticatedError) return null;
        throw e;
      }
    },

    /** POST /signup `{username, password, email?}`; resolves to `{user, csrfToken}` (logged in). */
    signup({ username, password, email } = {}) {
      const body = { username, password };
      if (email !== undefined && email !== null && email !== '') body.email = email;
      return api('POST', '/signup', body, { unauthOk: true });
    },

    /** GET /sessions: resolves to the array of the user's sessions. */
    async sessions() {
      const data = await api('GET', '/sessions');
      return (data && data.sessions) || [];
    },

    /** DELETE /sessions/{id}. */
    async revokeSession(id) {
      await api('DELETE', '/sessions/' + encodeURIComponent(id));
    },

    /** POST /sessions/revoke-others: resolves to the number of sessions revoked. */
    async revokeOthers() {
      const data = await api('POST', '/sessions/revoke-others');
      return data && typeof data.revoked === 'number' ? data.revoked : 0;
    },

    /** POST /password: other sessions are revoked, this one rotated (new token kept). */
    async changePassword(currentPassword, newPassword) {
      await api('POST', '/password', { currentPassword, newPassword });
    },

    /**
     * POST /reauth: refreshes `authenticatedAt` and rotates the session (new CSRF token kept).
     * Pass the password as a string (or `{password}`); with 2FA on, `{code}` (2FA app) or
     * `{recoveryCode}` — the password alone is then refused with 400 `invalid_request`.
     */
    async reauth(credentials) {
      const body = typeof credentials === 'string' ? { password: credentials } : { ...credentials };
      await api('POST', '/reauth', body);
    },

    /** POST /mfa/totp/setup (recent login needed): resolves to `{secret, otpauthUrl, qrSvg}`. */
    setupTotp() {
      return api('POST', '/mfa/totp/setup');
    },

    /** POST /mfa/totp/confirm with the app's first code: resolves to the recovery codes (array). */
    async confirmTotp(code) {
      const data = await api('POST', '/mfa/totp/confirm', { code: String(code) });
      return (data && data.recoveryCodes) || [];
    },

    /** POST /mfa/totp/disable (recent login needed). */
    async disableTotp() {
      await api('POST', '/mfa/totp/disable');
    },

    /** POST /email (recent login needed): mails a confirmation link to the new address (202). */
    async changeEmail(email) {
      await api('POST', '/email', { email });
    },

    /** POST /email/verify with the token from the confirmation mail: `{email, emailVerified}`. */
    verifyEmail(verifyToken) {
      return api('POST', '/email/verify', { token: verifyToken }, { unauthOk: true });
    },

    /**
     * POST /email/cancel with the token from the notice mailed to the old address: voids every
     * pending email change of the account; no login needed.
     */
    async cancelEmailChange(cancelToken) {
      await api('POST', '/email/cancel', { token: cancelToken }, { unauthOk: true });
    },

    /** POST /password/reset: always resolves (202), whether or not the address is known. */
    async requestPasswordReset(email) {
      await api('POST', '/password/reset', { email }, { unauthOk: true });
    },

    /** POST /password/reset/confirm with the token from the mail. */
    async confirmPasswordReset(resetToken, newPassword) {
      await api('POST', '/password/reset/confirm', { token: resetToken, newPassword }, { unauthOk: true });
    },

    /** Whether this browser can use passkeys at all. */
    passkeysSupported() {
      return webauthnAvailable();
    },

    /** Whether it offers passkeys in the username field's autofill (conditional mediation). */
    async passkeyAutofillSupported() {
      if (!webauthnAvailable() || typeof PublicKeyCredential.isConditionalMediationAvailable !== 'function') {
        return false;
      }
      return PublicKeyCredential.isConditionalMediationAvailable();
    },

    /**
     * Register a passkey for the logged-in user (needs a recent login, like other sensitive
     * changes: a `ReauthRequiredError` says to reauthenticate first). Resolves to the stored
     * passkey `{id, name, createdAt, lastUsedAt, discoverable, transports}`.
     */
    async registerPasskey({ name, signal } = {}) {
      requireWebauthn();
      const options = await api('POST', '/passkeys/register/start', name ? { name } : {});
      const publicKey = creationOptions(options.publicKey);
      const credential = await ceremony(() => navigator.credentials.create({ publicKey, signal }));
      return api('POST', '/passkeys/register/finish', { credential: credentialJSON(credential) });
    },

    /**
     * Log in with a passkey: `{user, csrfToken}`, like `login`. Without `username` any passkey
     * of this site may answer; with `autofill: true` the browser offers them in the username
     * field's suggestions (input `autocomplete="username webauthn"`) and the promise settles
     * when the user picks one — pass an AbortSignal to cancel it before a password login.
     */
    async loginWithPasskey({ username, remember: rememberMe, autofill = false, signal } = {}) {
      requireWebauthn();
      const options = await api('POST', '/login/passkey/start', username ? { username } : {}, { unauthOk: true });
      const publicKey = requestOptions(options.publicKey);
      const request = { publicKey, signal };
      if (autofill) request.mediation = 'conditional';
      const credential = await ceremony(() => navigator.credentials.get(request));
      const body = { credential: credentialJSON(credential) };
      if (rememberMe !== undefined) body.remember = !!rememberMe;
      return api('POST', '/login/passkey/finish', body, { unauthOk: true });
    },

    /** Prove presence again with a passkey (as `reauth`): opens the window for sensitive changes. */
    async reauthWithPasskey({ signal } = {}) {
      requireWebauthn();
      const options = await api('POST', '/reauth/passkey/start');
      const publicKey = requestOptions(options.publicKey);
      const credential = await ceremony(() => navigator.credentials.get({ publicKey, signal }));
      await api('POST', '/reauth/passkey/finish', { credential: credentialJSON(credential) });
    },

    /** GET /passkeys: the user's passkeys. */
    async passkeys() {
      const data = await api('GET', '/passkeys');
      return (data && data.passkeys) || [];
    },

    /** PATCH /passkeys/{id} `{name}`: resolves to the renamed passkey. */
    renamePasskey(id, name) {
      return api('PATCH', '/passkeys/' + encodeURIComponent(id), { name });
    },

    /** DELETE /passkeys/{id} (recent login needed; the account's last login method is kept: 409). */
    async deletePasskey(id) {
      await api('DELETE', '/passkeys/' + encodeURIComponent(id));
    },

    /**
     * Any other auth API call (`path` relative to authPath, e.g. '/mfa/totp/setup'), with the
     * same CSRF handling and typed errors. Resolves to the parsed body (null for 204).
     */
    request(method, path, body) {
      return api(String(method).toUpperCase(), path.startsWith('/') ? path : '/' + path, body);
    },

    fetch: clientFetch,
  };
}

// ---- helpers ---------------------------------------------------------------------------------

// WebAuthn speaks ArrayBuffers; sessiongate speaks base64url JSON (the WebAuthn Level 3 JSON
// forms). The browser's own parse*/toJSON are used where they exist.

function webauthnAvailable() {
  return typeof PublicKeyCredential !== 'undefined' && !!globalThis.navigator?.credentials;
}

function requireWebauthn() {
  if (!webauthnAvailable()) {
    throw new PasskeyError('unsupported', 'This browser does not support passkeys.');
  }
}

function fromB64url(s) {
  const b64 = String(s).replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0)).buffer;
}

function toB64url(buf) {
  const bytes = new Uint8Array(buf);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function creationOptions(json) {
  if (typeof PublicKeyCredential.parseCreationOptionsFromJSON === 'function') {
    return PublicKeyCredential.parseCreationOptionsFromJSON(json);
  }
  return {
    ...json,
    challenge: fromB64url(json.challenge),
    user: { ...json.user, id: fromB64url(json.user.id) },
    excludeCredentials: (json.excludeCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) })),
  };
}

function requestOptions(json) {
  if (typeof PublicKeyCredential.parseRequestOptionsFromJSON === 'function') {
    return PublicKeyCredential.parseRequestOptionsFromJSON(json);
  }
  return {
    ...json,
    challenge: fromB64url(json.challenge),
    allowCredentials: (json.allowCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) })),
  };
}

function credentialJSON(cred) {
  if (typeof cred.toJSON === 'function') return cred.toJSON();
  const r = cred.response;
  const response = { clientDataJSON: toB64url(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = toB64url(r.attestationObject);
    if (typeof r.getTransports === 'function') response.transports = r.getTransports();
  } else {
    response.authenticatorData = toB64url(r.authenticatorData);
    response.signature = toB64url(r.signature);
    if (r.userHandle) response.userHandle = toB64url(r.userHandle);
  }
  return {
    id: cred.id,
    rawId: toB64url(cred.rawId),
    type: cred.type,
    response,
    clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
  };
}

/** Run a navigator.credentials call, turning its DOMExceptions into PasskeyErrors. */
async function ceremony(call) {
  let cred;
  try {
    cred = await call();
  } catch (e) {
    const name = e && e.name;
    if (name === 'NotAllowedError' || name === 'AbortError') {
      throw new PasskeyError('cancelled', 'The passkey dialog was dismissed, timed out, or found no passkey.', e);
    }
    if (name === 'InvalidStateError') throw new PasskeyError('exists', 'This passkey is already registered.', e);
    if (name === 'SecurityError') {
      throw new PasskeyError('security', "This page's address does not fit the gateway's passkey settings.", e);
    }
    throw new PasskeyError('failed', (e && e.message) || 'The passkey ceremony failed.', e);
  }
  if (!cred) throw new PasskeyError('cancelled', 'No passkey was chosen.');
  return cred;
}

function isReplayable(body) {
  if (body === undefined || body === null || typeof body === 'string') return true;
  if (typeof URLSearchParams !== 'undefined' && body instanceof URLSearchParams) return true;
  if (typeof FormData !== 'undefined' && body instanceof FormData) return true;
  if (typeof Blob !== 'undefined' && body instanceof Blob) return true;
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return true;
  return false;
}

function isJson(res) {
  const ct = (res.headers.get('content-type') || '').toLowerCase();
  return /[/+]json\b/.test(ct);
}

/** Parse a response body: JSON when declared so, else text; null when empty. */
async function readBody(res) {
  if (res.status === 204 || res.status === 205 || res.status === 304) return null;
  let text;
  try {
    text = await res.text();
  } catch {
    return null;
  }
  if (!text) return null;
  if (isJson(res)) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

/** The problem object of a JSON error response, read from a clone (the Response stays unread). */
async function peekProblem(res) {
  if (!isJson(res)) return null;
  try {
    const body = await res.clone().json();
    return body && typeof body === 'object' ? body : null;
  } catch {
    return null;
  }
}

function retryAfterSeconds(res) {
  const v = res.headers.get('retry-after');
  if (!v) return null;
  if (/^\s*\d+\s*$/.test(v)) return parseInt(v, 10);
  const when = Date.parse(v);
  return Number.isNaN(when) ? null : Math.max(0, Math.ceil((when - Date.now()) / 1000));
}

function errorFor(res, body) {
  const problem =
    body && typeof body === 'object'
      ? body
      : {
          type: 'about:blank',
          title: res.statusText || `HTTP ${res.status}`,
          status: res.status,
          ...(typeof body === 'string' && body ? { detail: body.slice(0, 500) } : {}),
        };
  const status = res.status;
  switch (problem.code) {
    case 'not_authenticated':
      return new NotAuthenticatedError(problem, status);
    case 'reauth_required':
      return new ReauthRequiredError(problem, status);
    case 'csrf_failed':
    case 'origin_not_allowed':
      return new CsrfError(problem, status);
    case 'rate_limited':
      return new RateLimitedError(problem, status, retryAfterSeconds(res));
    default:
      if (status === 429) return new RateLimitedError(problem, status, retryAfterSeconds(res));
      return new SessiongateError(problem, status);
  }
}

function readCookie(cookieString, name) {
  for (const part of cookieString.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    if (part.slice(0, i).trim() === name) {
      const value = part.slice(i + 1).trim();
      try {
        return decodeURIComponent(value) || null;
      } catch {
        return value || null;
      }
    }
  }
  return null;
}

// End-to-end tests of @sessiongate/client against a REAL sessiongate server.
//
// Run with:
//   SESSIONGATE_URL=http://127.0.0.1:18080 \
//   SESSIONGATE_TEST_USER=alice SESSIONGATE_TEST_PASSWORD='…' \
//   node --test test/client.test.mjs
//
// Optional: SESSIONGATE_AUTH_PATH (default /api/auth). The user must already exist, without 2FA.
// Without SESSIONGATE_URL every test FAILS (on purpose: a missing server is never a silent pass).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createClient, SessiongateError, NotAuthenticatedError } from '../index.js';
import { createCookieFetch } from './cookie-fetch.mjs';

const URL_ = process.env.SESSIONGATE_URL;
const USER = process.env.SESSIONGATE_TEST_USER;
const PASSWORD = process.env.SESSIONGATE_TEST_PASSWORD;
const AUTH_PATH = process.env.SESSIONGATE_AUTH_PATH || '/api/auth';

function requireEnv() {
  const missing = [];
  if (!URL_) missing.push('SESSIONGATE_URL (e.g. http://127.0.0.1:18080)');
  if (!USER) missing.push('SESSIONGATE_TEST_USER');
  if (!PASSWORD) missing.push('SESSIONGATE_TEST_PASSWORD');
  if (missing.length) {
    throw new Error(
      `client.test.mjs needs a running sessiongate server; not set: ${missing.join(', ')}. ` +
        'Start one (e.g. `sessiongate serve --listen 127.0.0.1:18080`), create a user ' +
        '(`sessiongate user add NAME --password-stdin`) and run again with these variables.',
    );
  }
}

/** A fresh "browser": its own cookie jar, its own client. Fetches are counted. */
function newBrowser() {
  requireEnv();
  const cookieFetch = createCookieFetch();
  const log = [];
  const headers = [];
  const fetch = async (input, init = {}) => {
    const url = typeof input === 'string' ? input : input.url ?? String(input);
    const res = await cookieFetch(input, init);
    log.push(`${(init.method ?? 'GET').toUpperCase()} ${new URL(url).pathname} ${res.status}`);
    headers.push(new Headers(init.headers));
    return res;
  };
  const client = createClient({ baseUrl: URL_, authPath: AUTH_PATH, fetch });
  return { client, jar: cookieFetch.jar, log, headers };
}

const loggedIn = new Set();
async function login(browser) {
  const res = await browser.client.login(USER, PASSWORD, { remember: false });
  assert.ok(!res.mfaRequired, 'the test user must not have 2FA enabled');
  loggedIn.add(browser);
  return res;
}

after(async () => {
  // Leave no sessions behind, whatever failed.
  for (const b of loggedIn) await b.client.logout().catch(() => {});
});

test('environment: SESSIONGATE_URL, SESSIONGATE_TEST_USER and SESSIONGATE_TEST_PASSWORD are set', () => {
  requireEnv();
});

test('csrf() returns a 64-char masked token and sets the csrftoken cookie', async () => {
  const { client, jar } = newBrowser();
  const token = await client.csrf();
  assert.match(token, /^[a-zA-Z0-9]{64}$/);
  assert.equal(client.token, token);
  const cookie = jar.get('csrftoken') ?? jar.get('__Host-csrftoken');
  assert.match(cookie ?? '', /^[a-zA-Z0-9]{32}$/, 'the CSRF cookie holds the 32-char secret');
});

test('config() returns the public policy without a session', async () => {
  const { client } = newBrowser();
  const c = await client.config();
  assert.equal(typeof c.passwordMinLength, 'number');
  assert.ok(c.passwordMinLength >= 1);
  assert.equal(typeof c.signup, 'boolean');
  assert.equal(typeof c.passkeys, 'boolean');
});

test('login with a wrong password throws SessiongateError invalid_credentials', async () => {
  const { client } = newBrowser();
  await assert.rejects(
    client.login(USER, PASSWORD + '-wrong'),
    (e) => {
      assert.ok(e instanceof SessiongateError, `expected a SessiongateError, got ${e}`);
      assert.equal(e.code, 'invalid_credentials');
      assert.equal(e.status, 401);
      assert.equal(e.problem.code, 'invalid_credentials');
      return true;
    },
  );
  assert.equal(await client.session(), null);
});

test('login returns the user; session() returns it too', async () => {
  const b = newBrowser();
  const res = await login(b);
  assert.equal(res.user.username, USER);
  assert.match(res.csrfToken, /^[a-zA-Z0-9]{64}$/);
  assert.equal(b.client.token, res.csrfToken, 'the rotated token is kept in memory');
  assert.ok(b.jar.get('sessionid') ?? b.jar.get('__Host-sessionid'), 'a session cookie was set');

  const s = await b.client.session();
  assert.ok(s, 'session() must not be null after login');
  assert.equal(s.user.username, USER);
  assert.equal(s.user.id, res.user.id);
  assert.equal(s.session.current, true);
  await b.client.logout();
});

test('sessions() lists this session exactly once as current', async () => {
  const b = newBrowser();
  await login(b);
  const list = await b.client.sessions();
  assert.ok(Array.isArray(list) && list.length >= 1);
  const current = list.filter((s) => s.current);
  assert.equal(current.length, 1, 'exactly one current session');
  const me = (await b.client.session()).session;
  assert.equal(current[0].id, me.id);
  for (const key of ['id', 'createdAt', 'lastSeenAt', 'expiresAt', 'authenticatedAt', 'ip', 'userAgent', 'remember', 'current']) {
    assert.ok(key in current[0], `Session has ${key}`);
  }
  await b.client.logout();
});

test('client.fetch attaches X-CSRFToken: POST revoke-others works', async () => {
  const other = newBrowser();
  await login(other);
  const b = newBrowser();
  await login(b);

  const res = await b.client.fetch(`${AUTH_PATH}/sessions/revoke-others`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: '{}',
  });
  assert.equal(res.status, 200, await res.clone().text());
  const body = await res.json();
  assert.ok(typeof body.revoked === 'number' && body.revoked >= 1, `revoked ${body.revoked}`);
  assert.equal(await other.client.session(), null, 'the other session is gone');
  assert.ok(await b.client.session(), 'this session survives');
  loggedIn.delete(other);
  await b.client.logout();
});

test('a stale CSRF token is refreshed and the request retried once', async () => {
  const b = newBrowser();
  await login(b);
  b.client.token = 'x'.repeat(64);
  b.log.length = 0;

  const res = await b.client.fetch(`${AUTH_PATH}/sessions/revoke-others`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({}),
  });
  assert.equal(res.status, 200, await res.clone().text());
  assert.deepEqual(
    b.log,
    [
      `POST ${AUTH_PATH}/sessions/revoke-others 403`,
      `GET ${AUTH_PATH}/csrf 200`,
      `POST ${AUTH_PATH}/sessions/revoke-others 200`,
    ],
  );
  assert.notEqual(b.client.token, 'x'.repeat(64));
  assert.match(b.client.token, /^[a-zA-Z0-9]{64}$/);

  // The auth methods recover the same way.
  b.client.token = 'y'.repeat(64);
  assert.equal(typeof (await b.client.revokeOthers()), 'number');
  await b.client.logout();
});

test('client.fetch: token only on unsafe methods, a caller-supplied one is replaced', async () => {
  const b = newBrowser();
  await b.client.csrf();
  b.log.length = 0;
  b.headers.length = 0;
  const get = await b.client.fetch(`${AUTH_PATH}/csrf`);
  assert.equal(get.status, 200);
  const res = await b.client.fetch(`${AUTH_PATH}/logout`, {
    method: 'post',
    headers: { 'Content-Type': 'application/json', 'X-CSRFToken': 'stale' },
    body: '{}',
  });
  assert.equal(res.status, 204, 'logout answers 204 also when not logged in');
  assert.equal(b.headers[0].get('x-csrftoken'), null, 'no token on GET');
  const lastPost = b.headers.at(-1);
  assert.equal(b.log.at(-1), `POST ${AUTH_PATH}/logout 204`);
  assert.equal(lastPost.get('x-csrftoken'), b.client.token);
  assert.notEqual(lastPost.get('x-csrftoken'), 'stale');
});

test('logout() ends the session; session() is then null; login works again', async () => {
  const b = newBrowser();
  await login(b);
  assert.ok(await b.client.session());
  await b.client.logout();
  loggedIn.delete(b);
  assert.equal(await b.client.session(), null);
  await assert.rejects(b.client.sessions(), NotAuthenticatedError);

  const again = await login(b);
  assert.equal(again.user.username, USER);
  assert.equal((await b.client.session()).user.username, USER);
  await b.client.logout();
  loggedIn.delete(b);
});

test('reauth() with the right password succeeds and keeps the session', async () => {
  const b = newBrowser();
  await login(b);
  const before = b.client.token;
  await b.client.reauth(PASSWORD);
  assert.match(b.client.token, /^[a-zA-Z0-9]{64}$/);
  assert.ok(before);
  assert.equal((await b.client.session()).user.username, USER);
  await assert.rejects(b.client.reauth(PASSWORD + '-wrong'), SessiongateError);
  await b.client.logout();
});

test('onUnauthenticated is called when an authenticated call meets 401', async () => {
  requireEnv();
  const calls = [];
  const f = createCookieFetch();
  const client = createClient({ baseUrl: URL_, authPath: AUTH_PATH, fetch: f, onUnauthenticated: (e) => calls.push(e) });
  await assert.rejects(client.sessions(), NotAuthenticatedError);
  assert.equal(calls.length, 1);
  assert.ok(calls[0] instanceof NotAuthenticatedError);
  assert.equal(await client.session(), null, 'session() answers null without calling the hook');
  assert.equal(calls.length, 1);
});

// ---- account lifecycle (issue 5) against the real server ------------------------------------

import { createHmac } from 'node:crypto';
import { ReauthRequiredError } from '../index.js';

function base32Decode(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of s.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/** RFC 6238 code (SHA-1, 6 digits, 30 s) for `steps` time steps from now. */
function totp(secretB32, steps = 0) {
  const counter = Math.floor(Date.now() / 1000 / 30) + steps;
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const h = createHmac('sha1', base32Decode(secretB32)).update(msg).digest();
  const o = h[h.length - 1] & 15;
  const n = (h.readUInt32BE(o) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, '0');
}

test('changePassword() keeps this session, ends the other; weak passwords are refused', async () => {
  const a = newBrowser();
  const b = newBrowser();
  await login(a);
  await login(b);
  const other = 'a temporary passphrase for the client test';
  await assert.rejects(a.client.changePassword(PASSWORD, 'short'), (e) => e.code === 'weak_password' && /at least/.test(e.errors.newPassword));
  const before = a.client.token;
  await a.client.changePassword(PASSWORD, other);
  try {
    assert.notEqual(a.client.token, before, 'the rotated CSRF token is kept');
    assert.equal((await a.client.session()).user.username, USER);
    assert.equal(await b.client.session(), null, 'the other browser is signed out');
    assert.equal((await a.client.sessions()).length, 1);
  } finally {
    await a.client.changePassword(other, PASSWORD);
  }
  assert.equal((await a.client.session()).user.username, USER);
});

test('TOTP: setupTotp, confirmTotp, two-step login, reauth({code}), disableTotp', async () => {
  // Stay within one 30 s step (codes of the steps -1, 0, +1 are used below).
  const into = Math.floor(Date.now() / 1000) % 30;
  if (into > 12) await new Promise((r) => setTimeout(r, (30 - into) * 1000));
  const a = newBrowser();
  await login(a);
  const setup = await a.client.setupTotp();
  assert.match(setup.otpauthUrl, /^otpauth:\/\/totp\//);
  assert.match(setup.qrSvg, /<svg[\s\S]*<\/svg>/);
  let recovery;
  try {
    recovery = await a.client.confirmTotp(totp(setup.secret, -1));
    assert.equal(recovery.length, 10);
    const b = newBrowser();
    const first = await b.client.login(USER, PASSWORD, { remember: false });
    assert.deepEqual(first, { mfaRequired: true });
    assert.equal(await b.client.session(), null);
    const done = await b.client.loginMfa({ code: totp(setup.secret, 0) });
    loggedIn.add(b);
    assert.equal(done.user.username, USER);
    assert.equal(done.user.mfa, true);
    const c = newBrowser();
    await c.client.login(USER, PASSWORD);
    await assert.rejects(c.client.loginMfa({ code: totp(setup.secret, 0) }), (e) => e.code === 'invalid_credentials', 'single use');
    await c.client.loginMfa({ recoveryCode: recovery[0] });
    loggedIn.add(c);
    await b.client.reauth({ code: totp(setup.secret, 1) });
  } finally {
    await a.client.disableTotp();
  }
  const d = newBrowser();
  assert.equal((await login(d)).user.mfa, false, 'one-step login again');
});

test('changeEmail() answers 202; verifyEmail() and cancelEmailChange() refuse an unknown token', async () => {
  const a = newBrowser();
  await login(a);
  const me = (await a.client.session()).user;
  await a.client.changeEmail('client-test@example.com');
  assert.equal((await a.client.session()).user.email, me.email, 'unchanged until the mailed link is used');
  await assert.rejects(a.client.verifyEmail('not-a-real-token'), (e) => e.status === 400 && e.code === 'invalid_request');
  const anon = newBrowser();
  await assert.rejects(anon.client.cancelEmailChange('not-a-real-token'), (e) => e.status === 400 && e.code === 'invalid_request');
  assert.ok(ReauthRequiredError);
});

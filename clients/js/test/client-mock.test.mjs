// Offline tests of the client's own logic against an in-process mock of the auth API
// (test/mock-server.mjs). The real contract is tested by client.test.mjs against sessiongate.
// Run with: node --test test/client-mock.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  createClient,
  SessiongateError,
  NotAuthenticatedError,
  ReauthRequiredError,
  CsrfError,
  RateLimitedError,
} from '../index.js';
import { createCookieFetch } from './cookie-fetch.mjs';
import { createMockServer, maskSecret, unmaskToken } from './mock-server.mjs';

const PASSWORD = 'correct horse battery staple';
let mock;
let base;

before(async () => {
  mock = createMockServer({
    users: {
      alice: { password: PASSWORD, email: 'alice@example.com' },
      bob: { password: PASSWORD, mfa: '123456' },
    },
    extra: (req, res, { session, json, problem }) => {
      const path = new URL(req.url, 'http://x').pathname;
      if (path === '/api/echo') {
        if (!session) return problem(res, 401, 'not_authenticated', 'Authentication required.'), true;
        return json(res, 200, { method: req.method, user: session.user }), true;
      }
      if (path === '/api/always-csrf') return problem(res, 403, 'csrf_failed', 'CSRF verification failed.'), true;
      return false;
    },
  });
  base = await mock.start();
});
after(() => mock.stop());

function newBrowser(options = {}) {
  const cookieFetch = createCookieFetch();
  const log = [];
  const fetch = async (input, init = {}) => {
    const isReq = input instanceof Request;
    const method = (init.method ?? (isReq ? input.method : 'GET')).toUpperCase();
    const res = await cookieFetch(input, init);
    log.push(`${method} ${new URL(isReq ? input.url : String(input)).pathname} ${res.status}`);
    return res;
  };
  const client = createClient({ baseUrl: base, fetch, ...options });
  return { client, jar: cookieFetch.jar, log };
}

test('the mock masks CSRF tokens like Django', () => {
  assert.equal(unmaskToken('UJT4GcSfy8oQ35qgPp1GKAwamMdSczJ9yU1tMhMhtb07l4mfzsjbKvIiCCrmvGQG'), 'Olizgf4c5dMrs969UdsFa5miq0oEthhH');
  assert.equal(unmaskToken(maskSecret('Olizgf4c5dMrs969UdsFa5miq0oEthhH')), 'Olizgf4c5dMrs969UdsFa5miq0oEthhH');
});

test('csrf() returns and remembers a 64-char token', async () => {
  const { client } = newBrowser();
  assert.equal(client.token, null);
  const t = await client.csrf();
  assert.match(t, /^[a-zA-Z0-9]{64}$/);
  assert.equal(client.token, t);
});

test('login, session, sessions, revokeOthers, logout', async () => {
  const other = newBrowser();
  await other.client.login('alice', PASSWORD);
  const { client, log } = newBrowser();
  const res = await client.login('alice', PASSWORD, { remember: false });
  assert.equal(res.user.username, 'alice');
  assert.equal(client.token, res.csrfToken);
  assert.deepEqual(log, ['GET /api/auth/csrf 200', 'POST /api/auth/login 200'], 'no token yet: one GET /csrf first');
  const s = await client.session();
  assert.equal(s.user.username, 'alice');
  const list = await client.sessions();
  assert.equal(list.filter((x) => x.current).length, 1);
  assert.ok(list.length >= 2);
  assert.ok((await client.revokeOthers()) >= 1);
  assert.equal(await other.client.session(), null);
  await client.logout();
  assert.equal(await client.session(), null);
});

test('wrong password → SessiongateError invalid_credentials; 429 → RateLimitedError.retryAfter', async () => {
  const { client } = newBrowser();
  await assert.rejects(client.login('alice', 'nope'), (e) => e instanceof SessiongateError && e.code === 'invalid_credentials' && e.status === 401);
  await assert.rejects(client.login('limited', 'x'), (e) => {
    assert.ok(e instanceof RateLimitedError);
    assert.equal(e.retryAfter, 7);
    assert.equal(e.code, 'rate_limited');
    assert.equal(e.message, 'Too many login attempts.');
    return true;
  });
});

test('MFA: login answers mfaRequired, loginMfa completes it', async () => {
  const { client } = newBrowser();
  const first = await client.login('bob', PASSWORD);
  assert.deepEqual(first, { mfaRequired: true });
  assert.equal(await client.session(), null);
  await assert.rejects(client.loginMfa({ code: '000000' }), SessiongateError);
  const done = await client.loginMfa({ code: '123456' });
  assert.equal(done.user.username, 'bob');
  assert.equal((await client.session()).user.username, 'bob');
});

test('client.fetch: stale token → refresh and retry exactly once', async () => {
  const { client, log } = newBrowser();
  await client.login('alice', PASSWORD);
  client.token = 'x'.repeat(64);
  log.length = 0;
  const res = await client.fetch('/api/auth/sessions/revoke-others', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: '{}',
  });
  assert.equal(res.status, 200);
  assert.deepEqual(log, ['POST /api/auth/sessions/revoke-others 403', 'GET /api/auth/csrf 200', 'POST /api/auth/sessions/revoke-others 200']);
  assert.match(client.token, /^[a-zA-Z0-9]{64}$/);

  // The auth methods recover too.
  client.token = 'y'.repeat(64);
  assert.equal(typeof (await client.revokeOthers()), 'number');
});

test('client.fetch retries at most once and returns the 403', async () => {
  const { client, log } = newBrowser();
  await client.csrf();
  log.length = 0;
  const res = await client.fetch('/api/always-csrf', { method: 'PUT', body: 'x' });
  assert.equal(res.status, 403);
  assert.deepEqual(log, ['PUT /api/always-csrf 403', 'GET /api/auth/csrf 200', 'PUT /api/always-csrf 403']);
  const err = await SessiongateError.fromResponse(res);
  assert.ok(err instanceof CsrfError);
  assert.equal(err.code, 'csrf_failed');
});

test('client.fetch does not replay a stream body, but fixes the token for next time', async () => {
  const { client, log } = newBrowser();
  await client.login('alice', PASSWORD);
  client.token = 'x'.repeat(64);
  log.length = 0;
  const stream = new ReadableStream({
    start(c) {
      c.enqueue(new TextEncoder().encode('{}'));
      c.close();
    },
  });
  const res = await client.fetch('/api/auth/sessions/revoke-others', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: stream,
    duplex: 'half',
  });
  assert.equal(res.status, 403);
  assert.deepEqual(log, ['POST /api/auth/sessions/revoke-others 403', 'GET /api/auth/csrf 200']);
  const again = await client.fetch('/api/auth/sessions/revoke-others', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
  assert.equal(again.status, 200);
});

test('client.fetch replays a Request body from a clone', async () => {
  const { client, log } = newBrowser();
  await client.login('alice', PASSWORD);
  client.token = 'x'.repeat(64);
  log.length = 0;
  const req = new Request(`${base}/api/auth/sessions/revoke-others`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: '{}',
  });
  const res = await client.fetch(req);
  assert.equal(res.status, 200);
  assert.equal(log.length, 3);
});

test('client.fetch: GET carries no token and calls no /csrf; 401 triggers onUnauthenticated', async () => {
  const calls = [];
  const { client, log } = newBrowser({ onUnauthenticated: (e) => calls.push(e) });
  const res = await client.fetch('/api/echo');
  assert.equal(res.status, 401);
  assert.deepEqual(log, ['GET /api/echo 401']);
  assert.equal(calls.length, 1);
  assert.ok(calls[0] instanceof NotAuthenticatedError);
  assert.equal((await res.json()).code, 'not_authenticated', 'the body is still readable');
  assert.equal(await client.session(), null);
  assert.equal(calls.length, 1, 'session() returning null does not call the hook');
  await assert.rejects(client.sessions(), NotAuthenticatedError);
  assert.equal(calls.length, 2);

  await client.login('alice', PASSWORD);
  const ok = await client.fetch('/api/echo');
  assert.deepEqual(await ok.json(), { method: 'GET', user: 'alice' });
});

test('concurrent unsafe requests without a token share one GET /csrf', async () => {
  const { client, log } = newBrowser();
  await Promise.all([client.logout(), client.logout(), client.fetch('/api/auth/logout', { method: 'POST', body: '{}', headers: { 'Content-Type': 'application/json' } })]);
  assert.equal(log.filter((l) => l.startsWith('GET /api/auth/csrf')).length, 1);
  assert.equal(log.filter((l) => l.endsWith(' 204')).length, 3);
});

test('same-origin in a browser: the csrftoken cookie is used before any GET /csrf', async () => {
  const cookieFetch = createCookieFetch();
  const log = [];
  // Simulate a page at `base`: relative URLs, document.cookie, location.
  const fetch = async (input, init = {}) => {
    const res = await cookieFetch(new URL(input, base).toString(), init);
    log.push(`${init.method ?? 'GET'} ${input} ${res.status}`);
    return res;
  };
  await cookieFetch(`${base}/api/auth/csrf`); // the page got the cookie earlier
  globalThis.document = {
    get cookie() {
      return cookieFetch.jar.cookiesFor(base).filter((c) => !c.httpOnly).map((c) => `${c.name}=${c.value}`).join('; ');
    },
  };
  try {
    const client = createClient({ fetch });
    const res = await client.login('alice', PASSWORD);
    assert.equal(res.user.username, 'alice');
    assert.deepEqual(log, ['POST /api/auth/login 200']);
  } finally {
    delete globalThis.document;
  }
});

test('reauth_required → ReauthRequiredError; weak password → errors per field', async () => {
  const { client } = newBrowser();
  await client.login('alice', PASSWORD);
  for (const x of mock.sessions.values()) x.authenticatedAt = '2020-01-01T00:00:00Z'; // long ago
  await assert.rejects(client.changePassword(PASSWORD, 'another long password'), ReauthRequiredError);
  await client.reauth(PASSWORD);
  await assert.rejects(client.changePassword(PASSWORD, 'short'), (e) => {
    assert.equal(e.code, 'weak_password');
    assert.equal(e.status, 422);
    assert.deepEqual(e.errors, { newPassword: 'at least 8 characters' });
    return true;
  });
  const before = client.token;
  await client.changePassword(PASSWORD, PASSWORD); // unchanged, to keep other tests valid
  assert.notEqual(client.token, before, 'the rotated token from the body is kept');
  assert.equal((await client.session()).user.username, 'alice');
});

test('revokeSession deletes another session by id', async () => {
  const other = newBrowser();
  await other.client.login('alice', PASSWORD);
  const { client } = newBrowser();
  await client.login('alice', PASSWORD);
  const target = (await client.sessions()).find((x) => !x.current);
  await client.revokeSession(target.id);
  assert.ok(!(await client.sessions()).some((x) => x.id === target.id));
  await assert.rejects(client.revokeSession('nope'), (e) => e.status === 404 && e.code === 'not_found');
});

test('non-JSON errors still become SessiongateError', async () => {
  const client = createClient({
    baseUrl: 'http://gw.test',
    fetch: async () => new Response('<h1>Bad Gateway</h1>', { status: 502, statusText: 'Bad Gateway', headers: { 'content-type': 'text/html' } }),
  });
  await assert.rejects(client.session(), (e) => {
    assert.ok(e instanceof SessiongateError);
    assert.equal(e.status, 502);
    assert.equal(e.code, null);
    assert.equal(e.problem.title, 'Bad Gateway');
    return true;
  });
});

test('URL building: baseUrl trailing slash, authPath without leading slash, absolute URLs untouched', async () => {
  const seen = [];
  const client = createClient({
    baseUrl: 'https://gw.test/',
    authPath: 'auth/',
    fetch: async (input) => {
      seen.push(String(input instanceof Request ? input.url : input));
      return new Response(JSON.stringify({ csrfToken: 'a'.repeat(64) }), { headers: { 'content-type': 'application/json' } });
    },
  });
  await client.csrf();
  await client.fetch('/api/x');
  await client.fetch('api/y');
  await client.fetch('https://other.test/z');
  assert.deepEqual(seen, ['https://gw.test/auth/csrf', 'https://gw.test/api/x', 'https://gw.test/api/y', 'https://other.test/z']);
});

// Adversarial finding: client.fetch attached the CSRF token (and credentials: 'include') to
// requests for any origin, handing the token to a third-party API the app happened to call.
test('client.fetch sends the token and cookies only to sessiongate, this page or trustedOrigins', async () => {
  const seen = [];
  const client = createClient({
    baseUrl: 'https://gw.test',
    trustedOrigins: ['https://api2.test/'],
    fetch: async (input, init = {}) => {
      const url = String(input instanceof Request ? input.url : input);
      if (url.endsWith('/csrf')) {
        return new Response(JSON.stringify({ csrfToken: 'a'.repeat(64) }), { headers: { 'content-type': 'application/json' } });
      }
      seen.push([url, new Headers(init.headers).get('x-csrftoken'), init.credentials]);
      return new Response('{}', { headers: { 'content-type': 'application/json' } });
    },
  });
  const token = 'a'.repeat(64);
  await client.fetch('/api/x', { method: 'POST' });
  await client.fetch('https://gw.test/api/y', { method: 'DELETE' });
  await client.fetch('https://api2.test/z', { method: 'POST' });
  await client.fetch('https://evil.test/collect', { method: 'POST' });
  await client.fetch('//evil.test/collect', { method: 'PUT' });
  await client.fetch(new URL('https://evil.test/u'), { method: 'POST' });
  await client.fetch(new Request('https://evil.test/r', { method: 'POST' }));
  await client.fetch('https://GW.test:443/api/case', { method: 'POST' });
  await client.fetch('https://gw.test.evil.test/api', { method: 'POST' });
  await client.fetch('https://evil.test/x', { method: 'POST', credentials: 'include' });
  assert.deepEqual(seen, [
    ['https://gw.test/api/x', token, 'include'],
    ['https://gw.test/api/y', token, 'include'],
    ['https://api2.test/z', token, 'include'],
    ['https://evil.test/collect', null, 'same-origin'],
    ['//evil.test/collect', null, 'same-origin'],
    ['https://evil.test/u', null, 'same-origin'],
    ['https://evil.test/r', null, 'same-origin'],
    ['https://GW.test:443/api/case', token, 'include'],
    ['https://gw.test.evil.test/api', null, 'same-origin'],
    ['https://evil.test/x', null, 'include'],
  ]);
});

// Second adversarial pass: spellings a URL parser reads as another host ('\\\\evil', ' //evil',
// '/\\tevil'…) were taken for relative paths on a page without baseUrl.
test('client.fetch reads URLs as fetch does: backslash and whitespace spellings of other hosts get no token', async () => {
  const seen = [];
  const saved = Object.getOwnPropertyDescriptor(globalThis, 'location');
  Object.defineProperty(globalThis, 'location', { value: new URL('https://app.test/page'), configurable: true });
  try {
    const client = createClient({
      fetch: async (input, init = {}) => {
        const url = String(input instanceof Request ? input.url : input);
        if (url.endsWith('/csrf')) {
          return new Response(JSON.stringify({ csrfToken: 'a'.repeat(64) }), { headers: { 'content-type': 'application/json' } });
        }
        seen.push([new URL(url, 'https://app.test/page').host, new Headers(init.headers).get('x-csrftoken')]);
        return new Response('{}', { headers: { 'content-type': 'application/json' } });
      },
    });
    for (const u of ['\\\\evil.test/x', '/\\evil.test/x', '\\/evil.test', ' //evil.test/x', '\t//evil.test/x', '/\t/evil.test/x',
      '/\n/evil.test/x', ' https://evil.test/x', '\u0000https://evil.test/x']) {
      await client.fetch(u, { method: 'POST' });
    }
    await client.fetch('/api/ok', { method: 'POST' });
    await client.fetch('api/ok', { method: 'POST' });
  } finally {
    if (saved) Object.defineProperty(globalThis, 'location', saved);
    else delete globalThis.location;
  }
  for (const [host, token] of seen.slice(0, -2)) assert.equal(token, host === 'app.test' ? 'a'.repeat(64) : null, host);
  assert.deepEqual(seen.slice(-2), [['app.test', 'a'.repeat(64)], ['app.test', 'a'.repeat(64)]]);
  assert.ok(seen.slice(0, -2).some(([host]) => host === 'evil.test'), 'the spellings do reach evil.test');
});

test('2FA enrollment, reauth with a code, email change (mock)', async () => {
  const { client } = newBrowser();
  await client.login('alice', PASSWORD);
  const setup = await client.setupTotp();
  assert.match(setup.otpauthUrl, /^otpauth:\/\/totp\//);
  assert.ok(setup.qrSvg.startsWith('<svg'));
  await assert.rejects(client.confirmTotp('000000'), (e) => e instanceof SessiongateError && e.code === 'invalid_request');
  const codes = await client.confirmTotp('654321');
  assert.equal(codes.length, 10);
  const before = client.token;
  await client.reauth({ code: '654321' });
  assert.notEqual(client.token, before, 'reauth rotates: the new token is kept');
  await assert.rejects(client.reauth({ code: '111111' }), (e) => e.code === 'invalid_credentials');
  await client.reauth(PASSWORD);
  await client.changeEmail('alice@new.example');
  const anon = newBrowser();
  const v = await anon.client.verifyEmail('verify-alice');
  assert.deepEqual(v, { email: 'alice@new.example', emailVerified: true });
  await client.disableTotp();
  const again = newBrowser();
  const res = await again.client.login('alice', PASSWORD);
  assert.equal(res.user.username, 'alice', 'one-step login again');
});

test('reauth_required surfaces as ReauthRequiredError for 2FA changes (mock)', async () => {
  const { client } = newBrowser();
  await client.login('alice', PASSWORD);
  for (const s of mock.sessions.values()) s.authenticatedAt = new Date(Date.now() - 3_600_000).toISOString();
  await assert.rejects(client.setupTotp(), ReauthRequiredError);
  await assert.rejects(client.disableTotp(), ReauthRequiredError);
  await assert.rejects(client.changeEmail('x@example.com'), ReauthRequiredError);
  await client.reauth(PASSWORD);
  await client.disableTotp();
});

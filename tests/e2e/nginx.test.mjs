// Deployment shape 2: real nginx on one origin with the repo's deploy/nginx/sessiongate.conf
// (templated): the SPA's static files at /, /api/auth/ proxied to sessiongate, /api/ proxied to
// the backend behind `auth_request` to sessiongate's GET /api/auth/verify.
// Checked with plain HTTP (node fetch + cookie jar) and with real Chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  freePort,
  startEcho,
  startGateway,
  startNginx,
  demoSpaDir,
  launchBrowser,
  newContext,
  demoLogin,
  demoCallApi,
  pageFetch,
  withLogs,
  REPO,
} from './harness.mjs';
import { createCookieFetch } from '../../clients/js/test/cookie-fetch.mjs';

const USER = 'bob';
const PASSWORD = 'a long enough passphrase 7';

let echo;
let gateway;
let nginx;
let spa;
let browser;
let origin; // the one origin browsers use: nginx
const logs = () => [nginx, gateway, echo];

before(async () => {
  echo = await startEcho();
  spa = await demoSpaDir();
  const port = await freePort();
  origin = `http://127.0.0.1:${port}`;
  gateway = await startGateway({
    publicUrl: origin, // browsers reach sessiongate through nginx
    trustedProxies: ['127.0.0.1/32'],
    spa: 'off', // nginx serves the SPA
    users: [
      { name: USER, password: PASSWORD, email: 'bob@example.com' },
      { name: 'carol', password: PASSWORD }, // no email address
    ],
  });
  nginx = await startNginx({
    port,
    spaDir: spa.dir,
    gateway: `127.0.0.1:${gateway.port}`,
    backend: `127.0.0.1:${echo.port}`,
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await nginx?.stop();
  await gateway?.stop();
  await echo?.stop();
  await spa?.stop();
});

/** A node "browser": fetch with a cookie jar, and a helper to log in. */
function agent() {
  const fetch = createCookieFetch();
  return {
    fetch,
    jar: fetch.jar,
    get: (p, init = {}) => fetch(origin + p, init),
    async json(p, init = {}) {
      const res = await fetch(origin + p, init);
      const text = await res.text();
      let body = null;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON
      }
      return { status: res.status, headers: res.headers, body, text };
    },
    async login(username = USER) {
      const csrf = await this.json('/api/auth/csrf');
      assert.equal(csrf.status, 200, csrf.text);
      const r = await this.json('/api/auth/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrftoken': csrf.body.csrfToken },
        body: JSON.stringify({ username, password: PASSWORD }),
      });
      assert.equal(r.status, 200, r.text);
      return r.body.csrfToken;
    },
  };
}

test('nginx serves the SPA files, with the history-API fallback', () =>
  withLogs(logs(), async () => {
    const a = agent();
    const index = await a.get('/');
    assert.equal(index.status, 200);
    assert.match(await index.text(), /sessiongate demo/);
    const client = await a.get('/_sessiongate/client.js');
    assert.equal(client.status, 200);
    assert.match(client.headers.get('content-type') ?? '', /javascript/);
    assert.match(await client.text(), /createClient/);
    const deep = await a.get('/settings/profile', { headers: { accept: 'text/html' } });
    assert.equal(deep.status, 200, 'an app route gets index.html');
    assert.match(await deep.text(), /sessiongate demo/);
    const missing = await a.get('/assets/app.0123abcd.js');
    assert.equal(missing.status, 404, 'a missing asset is a 404, not index.html');
    await missing.arrayBuffer();
  }));

test('anonymous /api/ requests get a 401 problem from auth_request, never the backend', () =>
  withLogs(logs(), async () => {
    const a = agent();
    const before = echo.requests.length;
    for (const init of [{}, { headers: { 'X-Auth-User': 'admin', 'X-Auth-User-Id': '1' } }]) {
      const r = await a.json('/api/echo', { ...init, redirect: 'manual' });
      assert.equal(r.status, 401, r.text);
      assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.equal(r.headers.get('location'), null, 'never a redirect');
      assert.equal(r.body?.status, 401);
      assert.equal(r.body?.code, 'not_authenticated');
    }
    assert.equal(echo.requests.length, before, 'the backend saw nothing');
  }));

test('logged in: the backend gets X-Auth-* from sessiongate, never client-sent ones or the session cookie', () =>
  withLogs(logs(), async () => {
    const a = agent();
    await a.login();
    assert.ok(a.jar.get('sessionid'), 'session cookie set through nginx');

    const ok = await a.json('/api/echo');
    assert.equal(ok.status, 200, ok.text);
    const h = ok.body.headers;
    assert.equal(h['x-auth-user'], USER);
    assert.equal(h['x-auth-email'], 'bob@example.com');
    assert.equal(h['x-auth-email-verified'], 'false', 'an address never proved by a mailed link says so');
    assert.match(h['x-auth-user-id'] ?? '', /^\d+$/);
    assert.ok(h['x-auth-session'], 'X-Auth-Session');
    assert.doesNotMatch(h.cookie ?? '', /sessionid/, 'the session cookie is not forwarded to the backend');
    assert.match(h.cookie ?? '', /csrftoken=/, 'other cookies are');

    // The session cookie is cut out of the Cookie header wherever it stands.
    const sid = a.jar.get('sessionid');
    const csrf = a.jar.get('csrftoken');
    for (const [sent, expected] of [
      [`sessionid=${sid}`, undefined],
      [`sessionid=${sid}; csrftoken=${csrf}`, `csrftoken=${csrf}`],
      [`csrftoken=${csrf}; sessionid=${sid}`, `csrftoken=${csrf}`],
      [`a=1; sessionid=${sid}; b=2`, 'a=1; b=2'],
      [`xsessionid=1;sessionid=${sid};b=2`, 'xsessionid=1;b=2'],
      // The gateway's other cookies (pending 2FA login, passkey ceremony) stay with it too.
      [`sessionid=${sid}; sessiongate_passkey=k; a=1`, 'a=1'],
      [`a=1; __Host-sessiongate_mfa=m; sessionid=${sid}; SESSIONGATE_PASSKEY=k`, 'a=1'],
    ]) {
      const r = await fetch(`${origin}/api/echo`, { headers: { cookie: sent } });
      const body = await r.json();
      assert.equal(r.status, 200, JSON.stringify(body));
      assert.equal(body.headers.cookie, expected, `Cookie: ${sent}`);
      assert.equal(body.headers['x-auth-user'], USER);
    }

    // Spoofing attempts: every case variant is replaced, underscore variants are dropped.
    const spoof = await a.json('/api/echo', {
      headers: {
        'X-Auth-User': 'admin',
        'x-auth-user-id': '1',
        'X-AUTH-EMAIL': 'admin@example.com',
        'X-Auth-Email-Verified': 'true',
        'X-Auth-Session': 'forged',
        'X-Auth-Methods': 'passkey',
        X_Auth_User: 'admin',
        'X-Auth-Assertion': 'forged.jwt.value',
      },
    });
    assert.equal(spoof.status, 200, spoof.text);
    const raw = spoof.body.rawHeaders;
    const authHeaders = raw.filter(([k]) => /^x[-_]auth/i.test(k));
    assert.deepEqual(
      authHeaders.map(([k]) => k.toLowerCase()).sort(),
      ['x-auth-email', 'x-auth-email-verified', 'x-auth-methods', 'x-auth-session', 'x-auth-user', 'x-auth-user-id'],
      `exactly one of each identity header: ${JSON.stringify(authHeaders)}`,
    );
    for (const [, v] of authHeaders) assert.notEqual(v, 'admin');
    assert.equal(spoof.body.headers['x-auth-user'], USER);
    assert.equal(spoof.body.headers['x-auth-email'], 'bob@example.com');
    assert.notEqual(spoof.body.headers['x-auth-session'], 'forged');
    assert.equal(spoof.body.headers['x-auth-methods'], 'password');
    assert.equal(spoof.body.headers['x-auth-user-id'], h['x-auth-user-id']);
  }));

test('a user without an email: a client-sent X-Auth-Email is removed, not passed on', () =>
  withLogs(logs(), async () => {
    const a = agent();
    await a.login('carol');
    const r = await a.json('/api/echo', { headers: { 'X-Auth-Email': 'admin@example.com', 'X-Auth-User': 'admin' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.headers['x-auth-user'], 'carol');
    assert.equal(r.body.headers['x-auth-email'], undefined, r.text);
  }));

test('unsafe /api/ requests are CSRF-checked by auth_request (X-Original-Method)', () =>
  withLogs(logs(), async () => {
    const a = agent();
    const token = await a.login();
    const before = echo.requests.length;
    const post = (headers) =>
      a.json('/api/echo', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"n":1}' });

    const noToken = await post({});
    assert.equal(noToken.status, 403, noToken.text);
    assert.match(noToken.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.equal(noToken.body?.code, 'csrf_failed');

    const wrong = await post({ 'x-csrftoken': 'x'.repeat(64) });
    assert.equal(wrong.status, 403, wrong.text);

    const foreign = await post({ 'x-csrftoken': token, origin: 'http://evil.example' });
    assert.equal(foreign.status, 403, 'a foreign Origin is refused even with the token');

    const crossSite = await post({ 'x-csrftoken': token, 'sec-fetch-site': 'cross-site', origin: 'http://evil.example' });
    assert.equal(crossSite.status, 403);
    assert.equal(echo.requests.length, before, 'no refused request reached the backend');

    for (const method of ['PUT', 'PATCH', 'DELETE']) {
      const r = await a.json('/api/echo', { method });
      assert.equal(r.status, 403, `${method} without a token`);
    }

    const ok = await post({ 'x-csrftoken': token });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.body.method, 'POST');
    assert.equal(ok.body.body, '{"n":1}', 'the body reaches the backend');
    assert.equal(ok.body.headers['x-auth-user'], USER);

    const raw = await post({ 'x-csrftoken': a.jar.get('csrftoken') });
    assert.equal(raw.status, 200, 'the raw 32-char cookie value works as the token (axios)');

    const sameOrigin = await post({ 'x-csrftoken': token, origin, 'sec-fetch-site': 'same-origin' });
    assert.equal(sameOrigin.status, 200, sameOrigin.text);

    // After logout the backend is closed again.
    const out = await a.json('/api/auth/logout', { method: 'POST', headers: { 'x-csrftoken': token } });
    assert.equal(out.status, 204, out.text);
    const gone = await a.json('/api/echo');
    assert.equal(gone.status, 401);
  }));

test('browser through nginx: demo SPA login, reload, proxied API, CSRF, logout', () =>
  withLogs(logs(), async () => {
    const context = await newContext(browser);
    try {
      const page = await context.newPage();
      await page.goto(origin + '/');
      await demoLogin(page, USER, PASSWORD);
      await page.reload();
      await page.locator('#app-view').waitFor({ state: 'visible' });
      assert.equal((await page.textContent('#whoami-username')).trim(), USER);

      const jsCookies = await page.evaluate(() => document.cookie);
      assert.match(jsCookies, /csrftoken=/);
      assert.doesNotMatch(jsCookies, /sessionid/);

      const api = await demoCallApi(page);
      assert.equal(api.status, 200, api.text);
      assert.equal(api.json?.headers['x-auth-user'], USER);

      // In the page, axios-style: the token from the cookie makes the unsafe request pass.
      const bare = await pageFetch(page, '/api/echo', { method: 'POST', json: { a: 1 } });
      assert.equal(bare.status, 403, bare.text);
      assert.equal(bare.json?.code, 'csrf_failed');
      const ok = await pageFetch(page, '/api/echo', { method: 'POST', csrf: true, json: { a: 1 } });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.json?.headers['x-auth-user'], USER);
      assert.equal(ok.json?.headers['sec-fetch-site'], 'same-origin');

      await page.click('#logout-button');
      await page.locator('#login-view').waitFor({ state: 'visible' });
      const after = await pageFetch(page, '/api/echo');
      assert.equal(after.status, 401);
      assert.equal(after.json?.code, 'not_authenticated');
    } finally {
      await context.close();
    }
  }));

test('backend down: 502 problem JSON from nginx, not an HTML error page', () =>
  withLogs(logs(), async () => {
    const closed = await freePort(); // nothing listens there
    const noGateway = await startNginx({ spaDir: spa.dir, gateway: `127.0.0.1:${closed}`, backend: `127.0.0.1:${echo.port}` });
    try {
      const r = await fetch(`${noGateway.url}/api/echo`);
      const body = await r.json();
      assert.equal(r.status, 502, 'sessiongate unreachable: auth_request fails closed');
      assert.equal(body.code, 'upstream_unavailable');
    } finally {
      await noGateway.stop();
    }

    const down = await startNginx({ spaDir: spa.dir, gateway: `127.0.0.1:${gateway.port}`, backend: `127.0.0.1:${closed}` });
    try {
      const anon = await fetch(`${down.url}/api/echo`);
      assert.equal(anon.status, 401, 'auth_request still answers first');
      await anon.arrayBuffer();

      // Log in on the main origin's gateway; the cookie is host-only for 127.0.0.1, so it is
      // sent to this second nginx (another port, same host) too.
      const a = agent();
      await a.login();
      const r = await a.fetch(`${down.url}/api/echo`);
      const body = await r.json();
      assert.equal(r.status, 502, JSON.stringify(body));
      assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.equal(body.code, 'upstream_unavailable');
    } finally {
      await down.stop();
    }
  }));

test('docs/deployment-nginx.md shows the deploy config verbatim', async () => {
  const conf = await fs.readFile(path.join(REPO, 'deploy', 'nginx', 'sessiongate.conf'), 'utf8');
  const doc = await fs.readFile(path.join(REPO, 'docs', 'deployment-nginx.md'), 'utf8');
  const m = doc.match(/<!-- BEGIN deploy\/nginx\/sessiongate.conf -->\n```nginx\n([\s\S]*?)```\n<!-- END/);
  assert.ok(m, 'the BEGIN/END markers with an nginx code block are in the doc');
  assert.equal(m[1], conf, 'copy deploy/nginx/sessiongate.conf between the markers in docs/deployment-nginx.md');
});

// Deployment shape 1 (embedded): sessiongate serves the built-in demo SPA and proxies /api/ to
// an upstream itself. Real sessiongate, real Chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startEcho,
  startGateway,
  launchBrowser,
  newContext,
  demoLogin,
  demoCallApi,
  pageFetch,
  withLogs,
} from './harness.mjs';

const USER = 'alice';
const PASSWORD = 'correct horse battery staple 42';

let echo;
let gateway;
let browser;
const logs = () => [gateway, echo];

before(async () => {
  echo = await startEcho();
  gateway = await startGateway({
    routes: [`/api/=${echo.url}`],
    users: [{ name: USER, password: PASSWORD, email: 'alice@example.com' }],
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await gateway?.stop();
  await echo?.stop();
});

test('demo SPA: log in, reload, cookies, proxied API with identity, log out', () =>
  withLogs(logs(), async () => {
    const context = await newContext(browser);
    try {
      const page = await context.newPage();
      await page.goto(gateway.url + '/');
      await demoLogin(page, USER, PASSWORD);

      // Still logged in after a reload: the session lives in the cookie, not in page memory.
      await page.reload();
      await page.locator('#app-view').waitFor({ state: 'visible' });
      assert.equal((await page.textContent('#whoami-username')).trim(), USER);

      // JavaScript sees the CSRF cookie but never the HttpOnly session cookie.
      const jsCookies = await page.evaluate(() => document.cookie);
      assert.match(jsCookies, /(^|;\s*)csrftoken=[A-Za-z0-9]{32}(;|$)/, `document.cookie = ${jsCookies}`);
      assert.doesNotMatch(jsCookies, /sessionid/, `document.cookie = ${jsCookies}`);
      const all = await context.cookies(gateway.url);
      const session = all.find((c) => c.name === 'sessionid');
      assert.ok(session, 'the browser holds a sessionid cookie');
      assert.equal(session.httpOnly, true);
      assert.equal(session.sameSite, 'Lax');

      // The proxied API: the upstream gets the identity in X-Auth-*, never the session cookie.
      const before = echo.requests.length;
      const api = await demoCallApi(page);
      assert.equal(api.status, 200, api.text);
      assert.equal(api.json?.headers['x-auth-user'], USER, api.text);
      assert.equal(api.json?.headers['x-auth-email'], 'alice@example.com', api.text);
      assert.match(api.json?.headers['x-auth-user-id'] ?? '', /^\d+$/, api.text);
      assert.ok(api.json?.headers['x-auth-session'], 'X-Auth-Session reached the upstream');
      assert.equal(echo.requests.length, before + 1);
      const seen = echo.requests.at(-1);
      assert.equal(seen.path, '/api/echo');
      assert.doesNotMatch(seen.headers.cookie ?? '', /sessionid/, 'the session cookie is never forwarded upstream');
      assert.match(seen.headers.cookie ?? '', /csrftoken=/, 'other cookies are');

      // Log out: the login form comes back, and the old session is gone server-side.
      await page.click('#logout-button');
      await page.locator('#login-view').waitFor({ state: 'visible' });
      const after = await pageFetch(page, '/api/auth/session');
      assert.equal(after.status, 401);
      assert.equal(after.json?.code, 'not_authenticated');
      const api2 = await pageFetch(page, '/api/echo');
      assert.equal(api2.status, 401, 'the proxied route needs a session');
      assert.match(api2.headers['content-type'] ?? '', /application\/problem\+json/);

      // A reload still shows the login form.
      await page.reload();
      await page.locator('#login-view').waitFor({ state: 'visible' });
    } finally {
      await context.close();
    }
  }));

test('axios-style requests: X-CSRFToken read from the csrftoken cookie', () =>
  withLogs(logs(), async () => {
    const context = await newContext(browser);
    try {
      const page = await context.newPage();
      await page.goto(gateway.url + '/');
      await page.locator('#login-view').waitFor({ state: 'visible' });

      // What axios does with xsrfCookieName 'csrftoken' and xsrfHeaderName 'X-CSRFToken':
      // read the cookie on every unsafe request and send it back in the header.
      const csrf = await pageFetch(page, '/api/auth/csrf');
      assert.equal(csrf.status, 200);
      const login = await pageFetch(page, '/api/auth/login', {
        method: 'POST',
        csrf: true,
        json: { username: USER, password: PASSWORD },
      });
      assert.equal(login.status, 200, login.text);
      assert.equal(login.json?.user?.username, USER);

      // A second device, so that revoke-others has something to revoke.
      const other = await newContext(browser);
      try {
        const p2 = await other.newPage();
        await p2.goto(gateway.url + '/');
        await demoLogin(p2, USER, PASSWORD);
      } finally {
        await other.close();
      }

      // Without the header: refused.
      const bare = await pageFetch(page, '/api/auth/sessions/revoke-others', { method: 'POST' });
      assert.equal(bare.status, 403, bare.text);
      assert.equal(bare.json?.code, 'csrf_failed', bare.text);

      // With the header (the raw 32-char cookie value, as axios sends it): 200.
      const ok = await pageFetch(page, '/api/auth/sessions/revoke-others', { method: 'POST', csrf: true });
      assert.equal(ok.status, 200, ok.text);
      assert.ok(ok.json?.revoked >= 1, ok.text);

      const sessions = await pageFetch(page, '/api/auth/sessions');
      assert.equal(sessions.status, 200);
      assert.equal(sessions.json.sessions.length, 1, 'only this session is left');
      assert.equal(sessions.json.sessions[0].current, true);

      // A proxied unsafe request: CSRF-checked on an auth = "required" route as well.
      const noToken = await pageFetch(page, '/api/echo', { method: 'POST', json: { hello: 1 } });
      assert.equal(noToken.status, 403, noToken.text);
      const withToken = await pageFetch(page, '/api/echo', { method: 'POST', csrf: true, json: { hello: 1 } });
      assert.equal(withToken.status, 200, withToken.text);
      assert.equal(withToken.json?.method, 'POST');
      assert.equal(withToken.json?.body, '{"hello":1}');
      assert.equal(withToken.json?.headers['x-auth-user'], USER);

      const logout = await pageFetch(page, '/api/auth/logout', { method: 'POST', csrf: true });
      assert.equal(logout.status, 204, logout.text);
    } finally {
      await context.close();
    }
  }));

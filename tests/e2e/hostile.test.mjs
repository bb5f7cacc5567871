// A hostile page on another origin (http://localhost:P2, another site than the gateway's
// http://127.0.0.1:P1) tries to log the victim out and revoke their other sessions, with
// auto-submitted cross-site forms and no-cors fetches, in the victim's own browser context.
// The victim must stay logged in with every session intact. Real sessiongate, real Chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startEcho,
  startGateway,
  startStatic,
  launchBrowser,
  newContext,
  demoLogin,
  pageFetch,
  withLogs,
} from './harness.mjs';
import { createCookieFetch } from '../../clients/js/test/cookie-fetch.mjs';

const USER = 'victim';
const PASSWORD = 'tr0ub4dor and 3 more words';

let echo;
let gateway;
let hostile;
let browser;

function hostilePage(gw) {
  // Four attacks, each one an unsafe request the browser sends with whatever cookies it may:
  // two forms (into iframes, so all run), two no-cors fetches; then a top-level form POST.
  return `<!doctype html>
<meta charset="utf-8">
<title>You won a prize</title>
<h1>Claim your prize</h1>
<form id="f-logout" method="POST" action="${gw}/api/auth/logout" target="sink1">
  <input name="next" value="/">
</form>
<form id="f-revoke" method="POST" action="${gw}/api/auth/sessions/revoke-others" target="sink2">
  <input name="csrfmiddlewaretoken" value="${'a'.repeat(64)}">
</form>
<form id="f-top" method="POST" action="${gw}/api/auth/logout" enctype="text/plain">
  <input name='{"a":"' value='b"}'>
</form>
<iframe name="sink1"></iframe>
<iframe name="sink2"></iframe>
<script>
  (async () => {
    const results = [];
    for (const p of ['/api/auth/logout', '/api/auth/sessions/revoke-others']) {
      try {
        await fetch(${JSON.stringify(gw)} + p, {
          method: 'POST',
          credentials: 'include',
          mode: 'no-cors',
          headers: { 'Content-Type': 'text/plain' },
          body: '{}',
        });
        results.push('sent');
      } catch (e) {
        results.push(String(e));
      }
    }
    window.fetchResults = results;
    document.getElementById('f-logout').submit();
    document.getElementById('f-revoke').submit();
    document.title = 'attacked';
  })();
</script>`;
}

before(async () => {
  echo = await startEcho();
  gateway = await startGateway({
    routes: [`/api/=${echo.url}`],
    users: [{ name: USER, password: PASSWORD }],
  });
  hostile = await startStatic({ '/': hostilePage(gateway.url) });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await hostile?.stop();
  await gateway?.stop();
  await echo?.stop();
});

test('cross-site forms and fetches cannot log the victim out or revoke sessions', () =>
  withLogs([gateway, hostile], async () => {
    // A second device (node, with its own cookie jar) so that revoke-others would matter.
    const phone = createCookieFetch();
    const csrf = await (await phone(`${gateway.url}/api/auth/csrf`)).json();
    const phoneLogin = await phone(`${gateway.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-csrftoken': csrf.csrfToken },
      body: JSON.stringify({ username: USER, password: PASSWORD }),
    });
    assert.equal(phoneLogin.status, 200, await phoneLogin.clone().text());

    const context = await newContext(browser);
    try {
      const page = await context.newPage();
      await page.goto(gateway.url + '/');
      await demoLogin(page, USER, PASSWORD);
      const before = await pageFetch(page, '/api/auth/sessions');
      assert.equal(before.status, 200);
      assert.equal(before.json.sessions.length, 2, 'browser + phone');

      // The victim visits the hostile site in another tab of the same browser.
      const evil = await context.newPage();
      const seen = [];
      evil.on('response', (res) => {
        const req = res.request();
        if (req.method() === 'POST' && res.url().startsWith(gateway.url)) {
          seen.push({ url: res.url().slice(gateway.url.length), status: res.status(), type: req.resourceType() });
        }
      });
      await evil.goto(`http://localhost:${hostile.port}/`);
      await evil.waitForFunction(() => document.title === 'attacked');
      // Wait for the four answers (two forms in iframes, two fetches).
      const deadline = Date.now() + 10000;
      while (seen.length < 4 && Date.now() < deadline) await evil.waitForTimeout(100);
      assert.deepEqual(await evil.evaluate(() => window.fetchResults), ['sent', 'sent'], 'the fetches were sent');

      // Last, a top-level cross-site form POST (navigates the tab to the gateway).
      const [topResponse] = await Promise.all([
        evil.waitForResponse((r) => r.request().method() === 'POST' && r.url().startsWith(gateway.url)),
        evil.evaluate(() => document.getElementById('f-top').submit()),
      ]);
      await topResponse.finished();
      while (seen.length < 5 && Date.now() < deadline + 5000) await evil.waitForTimeout(100);

      const summary = JSON.stringify(seen);
      assert.equal(seen.length, 5, `every attack reached the gateway: ${summary}`);
      for (const s of seen) {
        assert.equal(s.status, 403, `refused with 403 (CSRF/origin check): ${summary}`);
      }

      // The victim is still logged in, in the browser and on the phone, with both sessions.
      const session = await pageFetch(page, '/api/auth/session');
      assert.equal(session.status, 200, session.text);
      assert.equal(session.json.user.username, USER);
      const after = await pageFetch(page, '/api/auth/sessions');
      assert.equal(after.status, 200);
      assert.equal(after.json.sessions.length, before.json.sessions.length, 'no session was revoked');
      assert.deepEqual(
        after.json.sessions.map((s) => s.id).sort(),
        before.json.sessions.map((s) => s.id).sort(),
      );
      const phoneSession = await phone(`${gateway.url}/api/auth/session`);
      assert.equal(phoneSession.status, 200, 'the other device is still signed in');

      // And the page still works as normal after a reload.
      await page.reload();
      await page.locator('#app-view').waitFor({ state: 'visible' });
      assert.equal((await page.textContent('#whoami-username')).trim(), USER);
    } finally {
      await context.close();
    }
  }));

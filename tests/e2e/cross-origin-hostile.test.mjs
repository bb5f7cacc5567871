// Hostile origins against sessiongate in cross-origin mode, in Debian's Chromium over HTTPS (see
// cross-origin-spa.mjs for the setup). The victim is logged in through the real SPA; a page on an
// origin that no allowlist names, open in the same browser, then tries to
//   - read authenticated answers (fetch with credentials): the gateway sends it no CORS headers, so
//     the browser rejects the fetch with a CORS error and the page sees nothing;
//   - log the victim out and revoke their other sessions (JSON fetch: the preflight fails and the
//     POST is never sent; no-cors fetches and forms: sent, with the cookies whenever SameSite lets
//     them through, and refused 403 origin_not_allowed by the CSRF origin check).
// The victim stays logged in with every session. Three pairings:
//   A. SameSite=None gateway (an allowed cross-site SPA), attacker https://evil.other.test —
//      the cookies ARE sent with its requests (third-party cookies allowed): only the CSRF check stands.
//   B. SameSite=Lax gateway, attacker https://evil.example.test — a sibling subdomain, same-site, so
//      Lax cookies are sent too.
//   C. SameSite=Lax gateway, attacker https://evil.other.test — cross-site: no cookies at all.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, launchProfile, newContext, hostArgs, withLogs } from './harness.mjs';
import { USER, PASSWORD, startCrossOrigin, openSpa, spaCall } from './cross-origin-spa.mjs';

let env;
let browser;
const logs = () => env?.services() ?? [];

before(async () => {
  env = await startCrossOrigin({ gateways: ['same', 'cross'] });
  browser = await launchBrowser({ args: hostArgs(env.cert) });
});

after(async () => {
  await browser?.close();
  await env?.stop();
});

/** A second device: another context logged in through the same-site SPA (so revoke-others matters). */
async function secondDevice(gateway) {
  const context = await newContext(browser);
  const page = await context.newPage();
  await openSpa(page, env.origins.appSame, gateway);
  assert.deepEqual(await spaCall(page, 'client', 'login', USER, PASSWORD), { ok: true, value: USER });
  return { context, page };
}

/**
 * Open the hostile page at `evilOrigin` in `context` (where the victim is logged in), run every
 * attack against `gateway`, and check what the page got and what the gateway answered.
 * cookiesSent: whether the browser attaches the victim's session cookie to the attacker's POSTs.
 */
async function attack(context, gateway, evilOrigin, { cookiesSent, fetchSite }) {
  const evil = await context.newPage();
  const consoleErrors = [];
  evil.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  // Which cookies Chromium attached to each request, from DevTools' network events (the
  // `Cookie` header of a no-cors request is not always in Playwright's request headers).
  const sentCookies = new Map(); // requestId → names of the cookies sent (only requests really sent)
  const requests = new Map(); // requestId → 'METHOD url'
  const cdp = await context.newCDPSession(evil);
  await cdp.send('Network.enable');
  cdp.on('Network.requestWillBeSent', (e) => requests.set(e.requestId, `${e.request.method} ${e.request.url}`));
  cdp.on('Network.requestWillBeSentExtraInfo', (e) => {
    const names = (e.associatedCookies ?? []).filter((c) => c.blockedReasons.length === 0).map((c) => c.cookie.name);
    sentCookies.set(e.requestId, names);
  });
  const posts = [];
  evil.on('response', (res) => {
    const req = res.request();
    if (req.method() !== 'POST' || !res.url().startsWith(gateway.publicUrl)) return;
    posts.push(
      (async () => ({
        path: new URL(res.url()).pathname,
        type: req.resourceType(),
        status: res.status(),
        // Playwright cannot read an opaque (no-cors) answer's body; a form's page it can.
        body: req.resourceType() === 'document' ? await res.text() : null,
      }))(),
    );
  });
  const cookiesOf = (path) =>
    [...requests.entries()]
      .filter(([, what]) => what === `POST ${gateway.publicUrl}${path}`)
      .filter(([id]) => sentCookies.has(id)) // the preflighted JSON POST was never sent
      .map(([id]) => sentCookies.get(id));
  const echoBefore = env.echo.requests.length;
  await evil.goto(`${evilOrigin}/?api=${encodeURIComponent(gateway.publicUrl)}`);
  await evil.waitForFunction(() => document.title === 'ready');
  const r = await evil.evaluate(() => window.attack());
  const where = `${evilOrigin} → ${gateway.publicUrl}`;

  // Reading: every credentialed CORS fetch rejects; the page learns nothing.
  for (const k of ['readSession', 'readApi', 'readCsrf']) {
    assert.deepEqual(r[k], { ok: false, error: 'TypeError: Failed to fetch' }, `${k} (${where})`);
  }
  const blockedBy = (p, why) =>
    `Access to fetch at '${gateway.publicUrl}${p}' from origin '${evilOrigin}' has been blocked by CORS policy: ${why}`;
  const noAcao = "No 'Access-Control-Allow-Origin' header is present on the requested resource.";
  const expectedConsole = [
    ...['/api/auth/session', '/api/echo', '/api/auth/csrf'].map((p) => blockedBy(p, noAcao)),
    blockedBy('/api/auth/logout', `Response to preflight request doesn't pass access control check: ${noAcao}`),
  ];
  // Console messages arrive asynchronously: give them a moment.
  for (let i = 0; i < 50 && !expectedConsole.every((m) => consoleErrors.includes(m)); i++) await evil.waitForTimeout(100);
  for (const msg of expectedConsole) {
    assert.ok(consoleErrors.includes(msg), `console error (${where}):\n${msg}\nnot in:\n${consoleErrors.join('\n')}`);
  }
  // The GET itself did reach the upstream (CORS hides answers, it does not stop requests):
  // GET handlers must not change anything. With the cookie, it even ran as the victim.
  const reached = env.echo.requests.slice(echoBefore).filter((q) => q.headers.origin === evilOrigin);
  assert.equal(reached.length, cookiesSent ? 1 : 0, `the hostile GET reached the upstream only with a session (${where})`);
  if (cookiesSent) assert.equal(reached[0].headers['x-auth-user'], USER);

  // A JSON POST needs a preflight; the preflight gets no CORS headers, so the POST is never sent.
  // (Its console error is checked above.)
  assert.deepEqual(r.jsonLogout, { ok: false, error: 'TypeError: Failed to fetch' }, `json POST (${where})`);
  // no-cors fetches are sent; the page gets an opaque answer.
  for (const k of ['noCorsLogout', 'noCorsRevoke']) {
    assert.equal(r[k].ok, true, JSON.stringify(r[k]));
    assert.equal(r[k].type, 'opaque', k);
    assert.equal(r[k].status, 0, k);
  }
  // Forms into iframes.
  await evil.evaluate(() => window.postForms());
  const deadline = Date.now() + 10000;
  while (posts.length < 4 && Date.now() < deadline) await evil.waitForTimeout(100);
  const paths = ['/api/auth/logout', '/api/auth/sessions/revoke-others'];
  while (paths.some((p) => cookiesOf(p).length < 2) && Date.now() < deadline) await evil.waitForTimeout(100);
  const seen = await Promise.all(posts);
  const summary = JSON.stringify(seen.map(({ body, ...s }) => s));
  assert.equal(seen.length, 4, `2 no-cors fetches and 2 forms reached the gateway (${where}): ${summary}`);
  assert.deepEqual(seen.map((s) => s.type).sort(), ['document', 'document', 'fetch', 'fetch'], summary);
  for (const p of paths) {
    const sent = cookiesOf(p);
    assert.ok(sent.length >= 2, `POSTs to ${p}: ${JSON.stringify(sent)}`); // preflight-less fetch + form
    for (const names of sent) {
      assert.equal(names.includes('sessionid'), cookiesSent, `the session cookie was ${cookiesSent ? '' : 'not '}sent to ${p} (${where}): ${JSON.stringify(sent)}`);
    }
  }
  for (const s of seen) {
    assert.equal(s.status, 403, `refused (${where}): ${summary}`);
    if (s.type !== 'document') continue;
    const problem = JSON.parse(s.body);
    assert.equal(problem.code, 'origin_not_allowed', s.body);
    assert.equal(
      problem.detail,
      `Origin checking failed - Sec-Fetch-Site is ${fetchSite} and Origin ${evilOrigin} is not a trusted origin.`,
    );
  }
  await evil.close();
}

/** The victim's view after the attacks: still logged in, with the same sessions. */
async function assertIntact(page, sessionsBefore) {
  assert.deepEqual(await spaCall(page, 'client', 'session'), { ok: true, value: USER }, 'the victim is still logged in');
  assert.deepEqual(await spaCall(page, 'client', 'sessions'), { ok: true, value: sessionsBefore }, 'no session was revoked');
  const api = await spaCall(page, 'client', 'get', '/api/echo');
  assert.equal(api.value?.status, 200, JSON.stringify(api));
  await page.reload();
  await page.locator('#status', { hasText: 'ready' }).waitFor();
  assert.deepEqual(await spaCall(page, 'client', 'session'), { ok: true, value: USER }, 'and after a reload');
}

test('A. SameSite=None gateway, third-party cookies allowed: https://evil.other.test can neither read nor log out', () =>
  withLogs(logs(), async () => {
    const gateway = env.gw.cross;
    const phone = await secondDevice(gateway);
    const context = await launchProfile({ thirdPartyCookies: 'allow', args: hostArgs(env.cert) });
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      await openSpa(page, env.origins.appOther, gateway);
      assert.deepEqual(await spaCall(page, 'client', 'login', USER, PASSWORD), { ok: true, value: USER });
      const sessions = await spaCall(page, 'client', 'sessions');
      assert.equal(sessions.value?.length, 2, `browser + phone: ${JSON.stringify(sessions)}`);

      await attack(context, gateway, env.origins.evilOther, { cookiesSent: true, fetchSite: 'cross-site' });

      await assertIntact(page, sessions.value);
      assert.deepEqual(await spaCall(phone.page, 'client', 'session'), { ok: true, value: USER }, 'the other device too');
      assert.deepEqual(await spaCall(page, 'client', 'logout'), { ok: true, value: 'logged out' });
    } finally {
      await context.close();
      await phone.context.close();
    }
  }));

test('B+C. SameSite=Lax gateway: neither a sibling subdomain (cookies sent) nor another site (no cookies) can read or log out', () =>
  withLogs(logs(), async () => {
    const gateway = env.gw.same;
    const phone = await secondDevice(gateway);
    const context = await newContext(browser);
    try {
      const page = await context.newPage();
      await openSpa(page, env.origins.appSame, gateway);
      assert.deepEqual(await spaCall(page, 'client', 'login', USER, PASSWORD), { ok: true, value: USER });
      const sessions = await spaCall(page, 'client', 'sessions');
      assert.equal(sessions.value?.length, 2, `browser + phone: ${JSON.stringify(sessions)}`);

      // B: same site as the API, so SameSite=Lax does not keep the cookie away; the origin check does.
      await attack(context, gateway, env.origins.evilSibling, { cookiesSent: true, fetchSite: 'same-site' });
      // C: another site: Lax cookies are not sent with its POSTs or fetches.
      await attack(context, gateway, env.origins.evilOther, { cookiesSent: false, fetchSite: 'cross-site' });

      await assertIntact(page, sessions.value);
      assert.deepEqual(await spaCall(phone.page, 'client', 'session'), { ok: true, value: USER }, 'the other device too');
    } finally {
      await context.close();
      await phone.context.close();
    }
  }));

// Passkeys in a real Chromium with the DevTools virtual authenticator (a platform authenticator
// with resident keys and user verification), against the demo SPA and the real gateway:
// register, log out, log in with the passkey (button and autofill), reload; and what the
// browser can do wrong or an attacker can replay — another origin, a replayed assertion, a
// cloned authenticator. Embedded here; cross-origin-passkeys.test.mjs covers the SPA on another
// origin.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startGateway,
  launchBrowser,
  newContext,
  demoLogin,
  pageFetch,
  pageWithAuthenticator,
  withLogs,
  freePort,
} from './harness.mjs';

const USER = 'alice';
const PASSWORD = 'correct horse battery staple 42';

let gateway;
let browser;
const logs = () => [gateway];

before(async () => {
  // The default public_url (http://127.0.0.1:PORT): passkeys live on http://localhost:PORT.
  gateway = await startGateway({ users: [{ name: USER, password: PASSWORD, email: 'alice@example.com' }] });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await gateway?.stop();
});

const home = () => `http://localhost:${gateway.port}/`;

/** Run a login ceremony in the page by hand: start, navigator.credentials.get, the credential JSON. */
function assertionInPage(page, start) {
  return page.evaluate(async (options) => {
    const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options.publicKey);
    const cred = await navigator.credentials.get({ publicKey });
    return cred.toJSON();
  }, start);
}

async function startLogin(page) {
  await pageFetch(page, '/api/auth/csrf');
  const start = await pageFetch(page, '/api/auth/login/passkey/start', { method: 'POST', csrf: true, json: {} });
  assert.equal(start.status, 200, start.text);
  return start.json;
}

function finishLogin(page, credential) {
  return pageFetch(page, '/api/auth/login/passkey/finish', { method: 'POST', csrf: true, json: { credential } });
}

async function registerInDemo(page, name) {
  await page.fill('#passkey-name', name);
  await page.click('#passkey-add-button');
  await page.locator('#passkeys-message', { hasText: 'added' }).waitFor();
  await page.locator('#passkeys-list', { hasText: name }).waitFor();
}

async function methods(page) {
  const me = await pageFetch(page, '/api/auth/session');
  assert.equal(me.status, 200, me.text);
  return me.json.session.authenticationMethods.map((m) => m.method);
}

test('demo SPA: add a passkey, sign out, sign in with it (button, then autofill), reload', () =>
  withLogs(logs(), async () => {
    const context = await newContext(browser);
    try {
      const { page, presenceOn, credentials } = await pageWithAuthenticator(context);
      await page.goto(home());
      await demoLogin(page, USER, PASSWORD);
      await registerInDemo(page, 'This laptop');
      const [cred] = await credentials();
      assert.equal(cred.isResidentCredential, true, 'a discoverable credential');
      assert.equal(cred.rpId, 'localhost');

      // Sign out with no presence: the autofill request waits, as it would for a real user.
      await presenceOn(false);
      await page.click('#logout-button');
      await page.locator('#login-view').waitFor({ state: 'visible' });
      assert.equal(await page.isVisible('#passkey-login-button'), true);
      assert.equal(await page.getAttribute('#username', 'autocomplete'), 'username webauthn');

      // "Sign in with a passkey" (the modal ceremony).
      await presenceOn(true);
      await page.click('#passkey-login-button');
      await page.locator('#app-view').waitFor({ state: 'visible' });
      await page.locator('#whoami-username', { hasText: USER }).waitFor();
      assert.deepEqual(await methods(page), ['passkey']);
      await page.reload();
      await page.locator('#app-view').waitFor({ state: 'visible' });
      await page.locator('#passkeys-list', { hasText: 'last used' }).waitFor();
      await page.locator('#sessions-list .session.current', { hasText: 'with a passkey' }).waitFor();

      // Autofill: with presence on, the conditional request started by the login form is
      // answered as soon as the form shows.
      await page.click('#logout-button');
      await page.locator('#app-view').waitFor({ state: 'visible' });
      await page.locator('#status', { hasText: 'with a passkey' }).waitFor();
      assert.deepEqual(await methods(page), ['passkey']);
    } finally {
      await context.close();
    }
  }));

test('a ceremony run on another origin, a replayed assertion and a cloned authenticator are refused', async () => {
  // The relying party app.localhost, so that evil.app.localhost (a subdomain, which the browser
  // lets use rp id app.localhost) is another origin of the same site. Chromium resolves
  // *.localhost to loopback and treats it as a secure context.
  const port = await freePort();
  const site = await startGateway({
    port,
    publicUrl: `http://app.localhost:${port}`,
    users: [{ name: USER, password: PASSWORD }],
  });
  const home = () => `http://app.localhost:${port}/`;
  await withLogs([site], async () => {
    const context = await newContext(browser);
    try {
      const { page, cdp, authenticatorId, presenceOn, credentials } = await pageWithAuthenticator(context, { presence: false });
      await page.goto(home());
      await demoLogin(page, USER, PASSWORD);
      await presenceOn(true);
      await registerInDemo(page, 'Key');
      await pageFetch(page, '/api/auth/logout', { method: 'POST', csrf: true });
      await page.goto(`http://app.localhost:${port}/healthz`);

      // Another origin under the relying party (evil.app.localhost): the browser lets it use
      // rp id "app.localhost", the gateway refuses the origin in the signed client data.
      const start = await startLogin(page);
      await page.goto(`http://evil.app.localhost:${port}/healthz`);
      const foreign = await assertionInPage(page, start);
      // Back on the relying party's origin, on a page without the demo (whose autofill would
      // start a ceremony of its own).
      await page.goto(`http://app.localhost:${port}/healthz`);
      const refused = await finishLogin(page, foreign);
      assert.equal(refused.status, 401, refused.text);
      assert.equal(refused.json.code, 'invalid_credentials');
      assert.match(site.output(), /passkey assertion refused reason="The clients relying party origin does not match/);

      // A good assertion works once; replayed, with or without a new ceremony, it does not.
      const good = await assertionInPage(page, await startLogin(page));
      const ok = await finishLogin(page, good);
      assert.equal(ok.status, 200, ok.text);
      const again = await finishLogin(page, good);
      assert.equal(again.status, 400, again.text);
      assert.equal(again.json.code, 'ceremony_expired');
      await startLogin(page);
      const replay = await finishLogin(page, good);
      assert.equal(replay.status, 401, replay.text);

      // A clone: the same key with a sign count behind the one the gateway saw last.
      const [cred] = await credentials();
      assert.ok(cred.signCount >= 2, `sign count ${cred.signCount}`);
      await cdp.send('WebAuthn.removeCredential', { authenticatorId, credentialId: cred.credentialId });
      await cdp.send('WebAuthn.addCredential', { authenticatorId, credential: { ...cred, signCount: 1 } });
      const cloned = await finishLogin(page, await assertionInPage(page, await startLogin(page)));
      assert.equal(cloned.status, 401, cloned.text);
      assert.match(site.output(), /sign count did not increase: possibly a cloned authenticator/);
      const audit = site.cli(['audit', '--since', '1h', '--json']);
      assert.match(audit, /possible cloned authenticator/);
    } finally {
      await context.close();
      await site.stop();
    }
  });
});

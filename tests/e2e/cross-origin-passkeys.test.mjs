// Passkeys in the cross-origin shape, in Chromium over HTTPS with the virtual authenticator:
// the SPA on https://app.example.test registers and logs in with a passkey through the JS client
// against sessiongate on https://api.example.test. The relying party is the SPA's site
// (example.test): the page that calls navigator.credentials is the SPA, not the API. A
// cross-site SPA (app.other.test) is not on that site: the gateway says so at start.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, newContext, hostArgs, pageWithAuthenticator, withLogs } from './harness.mjs';
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

test('same-site SPA (app.example.test → api.example.test): register, log out, log in with the passkey, reload', () =>
  withLogs(logs(), async () => {
    const context = await newContext(browser);
    try {
      const { page, credentials } = await pageWithAuthenticator(context);
      await openSpa(page, env.origins.appSame, env.gw.same);
      assert.deepEqual(await spaCall(page, 'client', 'login', USER, PASSWORD), { ok: true, value: USER });
      assert.deepEqual(await spaCall(page, 'client', 'registerPasskey', 'Work laptop'), { ok: true, value: 'Work laptop' });
      const [cred] = await credentials();
      assert.equal(cred.rpId, 'example.test', 'the relying party is the SPA site');
      assert.equal(cred.isResidentCredential, true);

      assert.deepEqual(await spaCall(page, 'client', 'logout'), { ok: true, value: 'logged out' });
      assert.deepEqual(await spaCall(page, 'client', 'session'), { ok: true, value: null });
      assert.deepEqual(await spaCall(page, 'client', 'loginWithPasskey'), { ok: true, value: USER });
      assert.deepEqual(await spaCall(page, 'client', 'methods'), { ok: true, value: ['passkey'] });

      // Reload: the session is the API's cookie, not page memory.
      await openSpa(page, env.origins.appSame, env.gw.same);
      assert.deepEqual(await spaCall(page, 'client', 'session'), { ok: true, value: USER });
      assert.deepEqual(await spaCall(page, 'client', 'passkeys'), { ok: true, value: ['Work laptop'] });

      // The ceremony cookie is the API's, HttpOnly, and gone after the finish.
      const names = (await context.cookies(env.gw.same.publicUrl)).map((c) => c.name);
      assert.ok(!names.includes('sessiongate_passkey'), names.join(', '));
    } finally {
      await context.close();
    }
  }));

test('a cross-site SPA origin is not on the relying party: the gateway warns at start', () =>
  withLogs(logs(), async () => {
    const warnings = env.gw.cross.stderr().split('\n').filter((l) => /\bWARN\b/.test(l) && l.includes('passkeys'));
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0], new RegExp(`passkeys: ${env.origins.appOther.replace(/\./g, '\\.')} is not on example\\.test`));
  }));

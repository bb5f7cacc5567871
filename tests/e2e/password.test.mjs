// Account lifecycle in the demo SPA, real sessiongate + real Chromium: change the password
// (through the re-authentication path) and see the other browser signed out; turn on 2FA from
// the QR screen and sign in with a code and with a recovery code; reset a forgotten password
// with the mailed link (development outbox).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { startGateway, launchBrowser, newContext, demoLogin, withLogs, sleep } from './harness.mjs';

const PASSWORD = 'correct horse battery staple 42';
const NEW_PASSWORD = 'a completely new passphrase 7';
/** Short, so the password change below meets 403 reauth_required first. */
const REAUTH_WINDOW_S = 2;

let gateway;
let browser;
const logs = () => [gateway];

before(async () => {
  gateway = await startGateway({
    users: [
      { name: 'alice', password: PASSWORD, email: 'alice@example.com' },
      { name: 'bob', password: PASSWORD, email: 'bob@example.com' },
      { name: 'carol', password: PASSWORD, email: 'carol@example.com' },
      { name: 'dave', password: PASSWORD, email: 'dave@example.com' },
    ],
    auth: [`reauth_window = "${REAUTH_WINDOW_S}s"`],
    toml: '[rate_limit]\nlogin_per_ip = "300/1m"',
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await gateway?.stop();
});

/** Wait for `target` to show; when the demo asks to confirm it's you first, give the password. */
async function throughReauth(page, target, password = PASSWORD) {
  await page.locator(`${target}:not([hidden]), #reauth-panel:not([hidden])`).first().waitFor();
  if (await page.isVisible('#reauth-panel')) {
    await page.fill('#reauth-secret', password);
    await page.click('#reauth-button');
  }
  await page.locator(target).waitFor({ state: 'visible' });
}

async function openDemo() {
  const context = await newContext(browser);
  const page = await context.newPage();
  await page.goto(gateway.url + '/');
  return { context, page };
}

test('change the password in the demo: this browser stays, the other one is signed out', () =>
  withLogs(logs(), async () => {
    const laptop = await openDemo();
    const phone = await openDemo();
    try {
      await demoLogin(laptop.page, 'alice', PASSWORD);
      await demoLogin(phone.page, 'alice', PASSWORD);
      // Let the login age past auth.reauth_window: the demo then re-authenticates with the
      // current password it was given (POST /reauth) and retries the change.
      await sleep(REAUTH_WINDOW_S * 1000 + 500);

      const { page } = laptop;
      await page.fill('#current-password', PASSWORD);
      await page.fill('#new-password', 'short');
      await page.click('#password-button');
      // The reason is next to the field it is about (the form's message only says what failed).
      await page.locator('#new-password-hint.error', { hasText: 'at least 8 characters' }).waitFor();

      await page.fill('#current-password', PASSWORD);
      await page.fill('#new-password', NEW_PASSWORD);
      await page.click('#password-button');
      await page.locator('#password-message', { hasText: 'Password changed' }).waitFor();
      await page.locator('#sessions-list li.session.current').waitFor();
      assert.equal(await page.locator('#sessions-list li.session').count(), 1, 'only this session is left');

      // The other browser context is signed out on its very next request.
      await phone.page.reload();
      await phone.page.locator('#login-view').waitFor({ state: 'visible' });
      assert.equal(await phone.page.isVisible('#app-view'), false);

      // This one is still signed in after a reload, with the rotated session cookie.
      await page.reload();
      await page.locator('#app-view').waitFor({ state: 'visible' });

      // The new password works, the old one does not.
      await phone.page.fill('#username', 'alice');
      await phone.page.fill('#password', PASSWORD);
      await phone.page.click('#login-button');
      await phone.page.locator('#login-error', { hasText: 'incorrect' }).waitFor();
      await demoLogin(phone.page, 'alice', NEW_PASSWORD);
    } finally {
      await laptop.context.close();
      await phone.context.close();
    }
  }));

function base32Decode(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of s.replace(/[\s=]/g, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/** RFC 6238 code (SHA-1, 6 digits, 30 s) for `steps` time steps from now. */
function totp(secretB32, steps = 0) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30000) + steps));
  const h = createHmac('sha1', base32Decode(secretB32)).update(msg).digest();
  const o = h[h.length - 1] & 15;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

test('turn on 2FA in the demo (QR code), then sign in with a code and with a recovery code', () =>
  withLogs(logs(), async () => {
    // Codes of the previous, current and next 30 s step are used: start early in a step.
    const into = Math.floor(Date.now() / 1000) % 30;
    if (into > 10) await sleep((30 - into) * 1000);
    const a = await openDemo();
    const b = await openDemo();
    const c = await openDemo();
    try {
      const { page } = a;
      await demoLogin(page, 'bob', PASSWORD);
      await page.locator('#mfa-state', { hasText: 'Off' }).waitFor();
      await page.click('#mfa-enable-button');
      await throughReauth(page, '#mfa-setup');
      const src = await page.getAttribute('#mfa-qr', 'src');
      assert.match(src, /^data:image\/svg\+xml;base64,/);
      assert.match(Buffer.from(src.split(',')[1], 'base64').toString(), /<svg[\s\S]*<\/svg>/);
      const loaded = await page.$eval('#mfa-qr', (img) => img.complete && img.naturalWidth > 0);
      assert.ok(loaded, 'the QR code renders under the CSP');
      const secret = (await page.textContent('#mfa-secret')).replace(/\s/g, '');
      assert.match(secret, /^[A-Z2-7]{32}$/);

      await page.fill('#mfa-confirm-code', totp(secret, -1));
      await page.click('#mfa-confirm-button');
      await throughReauth(page, '#mfa-recovery');
      const codes = await page.locator('#mfa-recovery-list li').allTextContents();
      assert.equal(codes.length, 10);
      await page.click('#mfa-recovery-done');
      await page.locator('#mfa-state', { hasText: 'On' }).waitFor();

      // Another browser: password, then the code from the app.
      await b.page.locator('#login-view').waitFor({ state: 'visible' });
      await b.page.fill('#username', 'bob');
      await b.page.fill('#password', PASSWORD);
      await b.page.click('#login-button');
      await b.page.locator('#mfa-view').waitFor({ state: 'visible' });
      assert.equal((await b.context.cookies()).some((k) => k.name === 'sessionid'), false, 'no session yet');
      await b.page.fill('#mfa-code', totp(secret, 0));
      await b.page.click('#mfa-button');
      await b.page.locator('#app-view').waitFor({ state: 'visible' });
      await b.page.locator('#whoami-username', { hasText: 'bob' }).waitFor();

      // A third: a recovery code instead.
      await c.page.locator('#login-view').waitFor({ state: 'visible' });
      await c.page.fill('#username', 'bob');
      await c.page.fill('#password', PASSWORD);
      await c.page.click('#login-button');
      await c.page.locator('#mfa-view').waitFor({ state: 'visible' });
      await c.page.fill('#mfa-code', totp(secret, 0));
      await c.page.click('#mfa-button');
      await c.page.locator('#mfa-error', { hasText: 'already used' }).waitFor();
      await c.page.fill('#mfa-code', codes[2]);
      await c.page.click('#mfa-button');
      await c.page.locator('#app-view').waitFor({ state: 'visible' });

      // Turning it off (after the re-authentication window): with 2FA on, the password alone
      // does not re-authenticate; the demo asks for a code, and a recovery code works too.
      await sleep(REAUTH_WINDOW_S * 1000 + 500);
      await page.click('#mfa-disable-button');
      await page.locator('#reauth-panel').waitFor({ state: 'visible' });
      await page.locator('#reauth-label', { hasText: 'authenticator app' }).waitFor();
      await page.fill('#reauth-secret', codes[3]);
      await page.click('#reauth-button');
      await page.locator('#mfa-state', { hasText: 'Off' }).waitFor();
      await b.page.reload();
      await b.page.locator('#login-view').waitFor({ state: 'visible' });
    } finally {
      for (const x of [a, b, c]) await x.context.close();
    }
  }));

/** The reset link in the newest `.eml` of the gateway's development outbox. */
async function resetLinkFromOutbox(to) {
  const dir = path.join(gateway.dir, 'data', 'outbox');
  const deadline = Date.now() + 10000;
  for (;;) {
    const names = (await fsp.readdir(dir).catch(() => [])).filter((n) => n.includes('password_reset')).sort();
    for (const name of names.reverse()) {
      const raw = (await fsp.readFile(path.join(dir, name), 'utf8')).replace(/=\r?\n/g, '').replace(/=3D/g, '=');
      if (!raw.includes(`To: ${to}`)) continue;
      const m = raw.match(/(http:\/\/[^\s"<>]+\/#\/reset\?token=[A-Za-z0-9_-]{43})/);
      if (m) return m[1];
    }
    if (Date.now() > deadline) throw new Error(`no reset mail to ${to} in ${dir}`);
    await sleep(100);
  }
}

test('forgot password in the demo: the mailed link sets a new password', () =>
  withLogs(logs(), async () => {
    const { context, page } = await openDemo();
    try {
      await page.locator('#login-view').waitFor({ state: 'visible' });
      await page.click('#forgot-link');
      await page.locator('#forgot-view').waitFor({ state: 'visible' });
      await page.fill('#forgot-email', 'carol@example.com');
      await page.click('#forgot-button');
      await page.locator('#forgot-message', { hasText: 'on its way' }).waitFor();

      const link = await resetLinkFromOutbox('carol@example.com');
      assert.ok(link.startsWith(gateway.url + '/#/reset?token='), link);
      await page.goto(link);
      await page.locator('#reset-view').waitFor({ state: 'visible' });
      assert.equal(new URL(page.url()).hash, '', 'the token is dropped from the address bar');
      await page.fill('#reset-password', NEW_PASSWORD);
      await page.click('#reset-button');
      await page.locator('#login-view').waitFor({ state: 'visible' });
      await page.locator('#status', { hasText: 'password was changed' }).waitFor();
      await demoLogin(page, 'carol', NEW_PASSWORD);

      // The link worked once.
      await page.goto(link);
      await page.locator('#reset-view').waitFor({ state: 'visible' });
      await page.fill('#reset-password', 'yet another passphrase 99');
      await page.click('#reset-button');
      await page.locator('#reset-message', { hasText: 'already used' }).waitFor();
    } finally {
      await context.close();
    }
  }));

test('a weak new password: the reason once, next to its field; the hint follows the server policy', () =>
  withLogs(logs(), async () => {
    const context = await newContext(browser);
    try {
      const page = await context.newPage();
      await page.goto(gateway.url + '/');
      await demoLogin(page, 'dave', PASSWORD);
      assert.equal((await page.textContent('#new-password-hint')).trim(), 'At least 8 characters; a long passphrase is best.');
      await page.fill('#current-password', PASSWORD);
      await page.fill('#new-password', 'password123');
      await page.click('#password-button');
      await throughReauth(page, '#password-message:not([hidden])');
      const message = (await page.textContent('#password-message')).trim();
      const hint = (await page.textContent('#new-password-hint')).trim();
      assert.match(hint, /too common/i, hint);
      assert.doesNotMatch(message, /too common/i, `said once, by the field: ${message}`);
      assert.equal(await page.getAttribute('#new-password', 'aria-invalid'), 'true');
    } finally {
      await context.close();
    }
  }));

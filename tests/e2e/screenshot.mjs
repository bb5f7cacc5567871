// Regenerates docs/screenshot.png (1000x800) and docs/screenshot-phone.png (390x844) of the
// built-in demo SPA, logged in, after calling the proxied API. Not part of the test run.
//
//   cargo build --bins && (cd tests/e2e && npm ci && node screenshot.mjs)
import fs from 'node:fs/promises';
import path from 'node:path';
import { REPO, startEcho, startGateway, launchBrowser, demoLogin, demoCallApi } from './harness.mjs';
import { createCookieFetch } from '../../clients/js/test/cookie-fetch.mjs';

const USER = 'alice';
const PASSWORD = 'correct horse battery staple 42';

const echo = await startEcho({ summary: true });
const gateway = await startGateway({
  routes: [`/api/=${echo.url}`],
  users: [{ name: USER, password: PASSWORD, email: 'alice@example.com' }],
});
const browser = await launchBrowser();
try {
  // A second signed-in device, so the sessions list shows "sign out other sessions" in use.
  const phone = createCookieFetch();
  const { csrfToken } = await (await phone(`${gateway.url}/api/auth/csrf`)).json();
  const r = await phone(`${gateway.url}/api/auth/login`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-csrftoken': csrfToken,
      'user-agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1',
    },
    body: JSON.stringify({ username: USER, password: PASSWORD }),
  });
  if (r.status !== 200) throw new Error(`second login: ${r.status} ${await r.text()}`);

  const shots = [
    { file: 'screenshot.png', options: { viewport: { width: 1000, height: 800 } } },
    {
      file: 'screenshot-phone.png',
      options: { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true },
    },
  ];
  for (const { file, options } of shots) {
    const context = await browser.newContext({ colorScheme: 'light', ...options });
    const page = await context.newPage();
    await page.goto(gateway.url + '/');
    await demoLogin(page, USER, PASSWORD);
    await demoCallApi(page);
    await page.locator('#sessions-list li').nth(1).waitFor();
    await page.evaluate(() => {
      document.activeElement?.blur();
      window.scrollTo(0, 0);
    });
    const out = path.join(REPO, 'docs', file);
    await fs.mkdir(path.dirname(out), { recursive: true });
    await page.screenshot({ path: out });
    console.log(`wrote ${path.relative(REPO, out)}`);
    // Sign this browser session out again so the next shot shows the same two sessions.
    await page.click('#logout-button');
    await page.locator('#login-view').waitFor({ state: 'visible' });
    await context.close();
  }
} finally {
  await browser.close();
  await gateway.stop();
  await echo.stop();
}

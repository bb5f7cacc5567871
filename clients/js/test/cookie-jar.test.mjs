// Offline tests of the test cookie jar (no sessiongate needed; one loopback HTTP server).
// Run with: node --test test/cookie-jar.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import {
  CookieJar,
  createCookieFetch,
  defaultPath,
  domainMatch,
  parseSetCookie,
  pathMatch,
  splitSetCookie,
} from './cookie-fetch.mjs';

const T0 = Date.UTC(2026, 0, 1);

function clock(start = T0) {
  const c = { t: start, now: () => c.t };
  return c;
}

test('parseSetCookie reads name, value and attributes case-insensitively', () => {
  const c = parseSetCookie('sessionid=abc=def; HttpOnly; secure; Path=/; SameSite=Lax; max-age=60; Domain=.Example.COM');
  assert.equal(c.name, 'sessionid');
  assert.equal(c.value, 'abc=def');
  assert.deepEqual(c.attributes, {
    httpOnly: true,
    secure: true,
    path: '/',
    sameSite: 'Lax',
    maxAge: 60,
    domain: 'example.com',
  });
  assert.equal(parseSetCookie('novalue'), null);
  assert.equal(parseSetCookie('=x'), null);
  assert.equal(parseSetCookie('a=1; Max-Age=soon').attributes.maxAge, undefined);
});

test('path and domain helpers follow RFC 6265', () => {
  assert.equal(defaultPath('http://h/'), '/');
  assert.equal(defaultPath('http://h/api'), '/');
  assert.equal(defaultPath('http://h/api/auth/login'), '/api/auth');
  assert.ok(pathMatch('/api/auth', '/api'));
  assert.ok(pathMatch('/api/', '/api/'));
  assert.ok(!pathMatch('/apix', '/api'));
  assert.ok(pathMatch('/anything', '/'));
  assert.ok(domainMatch('app.example.com', 'example.com'));
  assert.ok(!domainMatch('badexample.com', 'example.com'));
  assert.ok(!domainMatch('1.2.3.4', '2.3.4'));
});

test('stores, sends and replaces cookies', () => {
  const jar = new CookieJar({ now: clock().now });
  jar.setCookie('csrftoken=one; Path=/; Max-Age=31449600; SameSite=Lax', 'http://127.0.0.1:8080/api/auth/csrf');
  jar.setCookie('sessionid=s1; Path=/; HttpOnly; SameSite=Lax', 'http://127.0.0.1:8080/api/auth/login');
  assert.equal(jar.cookieHeader('http://127.0.0.1:8080/'), 'csrftoken=one; sessionid=s1');
  jar.setCookie('csrftoken=two; Path=/; Max-Age=31449600', 'http://127.0.0.1:8080/api/auth/login');
  assert.equal(jar.get('csrftoken'), 'two');
  assert.equal(jar.cookiesFor('http://127.0.0.1:8080/x').length, 2, 'same name+domain+path replaces');
  // host-only: not sent to another host or port-insensitive same host is fine
  assert.equal(jar.cookieHeader('http://127.0.0.1:9999/'), 'csrftoken=two; sessionid=s1');
  assert.equal(jar.cookieHeader('http://localhost:8080/'), '');
});

test('Max-Age=0 deletes a cookie; a past Expires too', () => {
  const jar = new CookieJar({ now: clock().now });
  const url = 'http://localhost:8080/api/auth/logout';
  jar.setCookie('sessionid=s1; Path=/; HttpOnly', url);
  jar.setCookie('other=o; Path=/', url);
  assert.equal(jar.get('sessionid', url), 's1');
  assert.equal(jar.setCookie('sessionid=; Path=/; HttpOnly; Max-Age=0', url), null);
  assert.equal(jar.get('sessionid', url), undefined);
  assert.equal(jar.cookieHeader(url), 'other=o');
  jar.setCookie('other=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT', url);
  assert.equal(jar.cookieHeader(url), '');
  assert.equal(jar.cookies.size, 0);
});

test('deletion only hits the cookie with the same path and domain', () => {
  const jar = new CookieJar({ now: clock().now });
  jar.setCookie('a=1; Path=/', 'http://h.test/');
  jar.setCookie('a=2; Path=/api', 'http://h.test/');
  jar.setCookie('a=; Path=/api; Max-Age=0', 'http://h.test/');
  assert.equal(jar.cookieHeader('http://h.test/api/x'), 'a=1');
});

test('Max-Age wins over Expires and cookies expire with the clock', () => {
  const c = clock();
  const jar = new CookieJar({ now: c.now });
  jar.setCookie('a=1; Max-Age=10; Expires=Thu, 01 Jan 1970 00:00:00 GMT', 'http://h.test/');
  jar.setCookie(`b=2; Expires=${new Date(T0 + 5000).toUTCString()}`, 'http://h.test/');
  jar.setCookie('c=3', 'http://h.test/');
  assert.equal(jar.cookieHeader('http://h.test/'), 'a=1; b=2; c=3');
  c.t += 6000;
  assert.equal(jar.cookieHeader('http://h.test/'), 'a=1; c=3');
  c.t += 5000;
  assert.equal(jar.cookieHeader('http://h.test/'), 'c=3');
  jar.endSession();
  assert.equal(jar.cookieHeader('http://h.test/'), '');
});

test('Domain attribute: subdomains share, foreign domains are refused', () => {
  const jar = new CookieJar({ now: clock().now });
  jar.setCookie('shared=1; Domain=.example.com; Path=/', 'https://api.example.com/');
  jar.setCookie('evil=1; Domain=attacker.test; Path=/', 'https://api.example.com/');
  jar.setCookie('hostonly=1; Path=/', 'https://api.example.com/');
  assert.equal(jar.cookieHeader('https://app.example.com/'), 'shared=1');
  assert.equal(jar.cookieHeader('https://api.example.com/'), 'shared=1; hostonly=1');
  assert.equal(jar.cookieHeader('https://attacker.test/'), '');
});

test('Path attribute and default path; longer paths are sent first', () => {
  const jar = new CookieJar({ now: clock().now });
  jar.setCookie('root=1; Path=/', 'http://h.test/api/auth/login');
  jar.setCookie('deflt=1', 'http://h.test/api/auth/login'); // default path /api/auth
  jar.setCookie('api=1; Path=/api', 'http://h.test/');
  assert.equal(jar.cookieHeader('http://h.test/api/auth/session'), 'deflt=1; api=1; root=1');
  assert.equal(jar.cookieHeader('http://h.test/other'), 'root=1');
});

test('Secure cookies: only over https (loopback counts as secure) and prefix rules', () => {
  const jar = new CookieJar({ now: clock().now });
  assert.equal(jar.setCookie('s=1; Secure; Path=/', 'http://h.test/'), null, 'no Secure from plain http');
  jar.setCookie('s=1; Secure; Path=/', 'https://h.test/');
  assert.equal(jar.cookieHeader('http://h.test/'), '');
  assert.equal(jar.cookieHeader('https://h.test/'), 's=1');
  jar.setCookie('l=1; Secure; Path=/', 'http://localhost:8080/');
  assert.equal(jar.cookieHeader('http://localhost:8080/'), 'l=1');
  assert.equal(jar.setCookie('__Host-sessionid=x; Secure; Path=/; Domain=h.test', 'https://h.test/'), null);
  assert.equal(jar.setCookie('__Host-sessionid=x; Path=/', 'https://h.test/'), null);
  assert.equal(jar.setCookie('__Secure-a=x; Path=/', 'https://h.test/'), null);
  assert.ok(jar.setCookie('__Host-csrftoken=x; Secure; Path=/', 'https://h.test/'));
});

test('splitSetCookie keeps commas inside Expires', () => {
  assert.deepEqual(splitSetCookie('a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/, b=2; HttpOnly'), [
    'a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/',
    'b=2; HttpOnly',
  ]);
  assert.deepEqual(splitSetCookie(null), []);
});

// ---- createCookieFetch against a loopback server ----

async function withServer(handler, fn) {
  const server = http.createServer(handler);
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}`;
  try {
    return await fn(url);
  } finally {
    server.closeAllConnections?.();
    await new Promise((r) => server.close(r));
  }
}

test('createCookieFetch round-trips cookies, deletes on Max-Age=0, follows redirects', async () => {
  const seen = [];
  await withServer(
    (req, res) => {
      seen.push(`${req.method} ${req.url} cookie=${req.headers.cookie ?? ''}`);
      if (req.url === '/set') {
        res.setHeader('Set-Cookie', ['csrftoken=abc; Path=/; Max-Age=31449600; SameSite=Lax', 'sessionid=s1; Path=/; HttpOnly']);
        res.end('set');
      } else if (req.url === '/clear') {
        res.setHeader('Set-Cookie', 'sessionid=""; Path=/; HttpOnly; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT');
        res.statusCode = 204;
        res.end();
      } else if (req.url === '/redirect') {
        res.setHeader('Set-Cookie', 'hop=1; Path=/');
        res.statusCode = 303;
        res.setHeader('Location', '/echo');
        res.end();
      } else {
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ method: req.method, cookie: req.headers.cookie ?? null }));
      }
    },
    async (base) => {
      const f = createCookieFetch();
      assert.equal(await (await f(`${base}/set`)).text(), 'set');
      assert.equal(f.jar.get('csrftoken'), 'abc');
      let echo = await (await f(`${base}/echo`)).json();
      assert.equal(echo.cookie, 'csrftoken=abc; sessionid=s1');

      const omitted = await (await f(`${base}/echo`, { credentials: 'omit' })).json();
      assert.equal(omitted.cookie, null);

      const r = await f(`${base}/redirect`, { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } });
      echo = await r.json();
      assert.equal(echo.method, 'GET', '303 turns POST into GET');
      assert.equal(echo.cookie, 'csrftoken=abc; sessionid=s1; hop=1', 'cookie from the redirect response is kept');

      const manual = await f(`${base}/redirect`, { redirect: 'manual' });
      assert.equal(manual.status, 303);

      assert.equal((await f(`${base}/clear`, { method: 'POST' })).status, 204);
      assert.equal(f.jar.get('sessionid'), undefined);
      echo = await (await f(new Request(`${base}/echo`, { method: 'PUT', body: 'y' }))).json();
      assert.equal(echo.method, 'PUT');
      assert.equal(echo.cookie, 'csrftoken=abc; hop=1');
    },
  );
  assert.ok(seen.length >= 7);
});

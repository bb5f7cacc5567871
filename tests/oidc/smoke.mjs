// The local OpenID provider (provider.mjs) end to end, without sessiongate: discovery, the
// authorization code flow with PKCE through the development login and consent pages, the
// token endpoint (client_secret_basic and private_key_jwt), ID token signatures checked against
// jwks_uri with node:crypto, single-use codes, and back-channel logout (admin API and
// RP-initiated end_session).
//
//   node --test tests/oidc/smoke.mjs        (after `npm ci` in tests/oidc; OIDC_PROVIDER_LOG=1
//                                            shows the providers' own logs)
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const PROVIDER = fileURLToPath(new URL('./provider.mjs', import.meta.url));
const REDIRECT_URI = 'http://localhost:8080/api/auth/oidc/test/callback';
const POST_LOGOUT_URI = 'http://localhost:8080/logged-out';
const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

// --- helpers ------------------------------------------------------------------------------------
const b64u = (buf) => Buffer.from(buf).toString('base64url');
const fromB64uJson = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
const now = () => Math.floor(Date.now() / 1000);

// Every provider this file starts, killed when the test process exits however it exits.
const children = new Set();
process.on('exit', () => { for (const c of children) c.kill('SIGKILL'); });
after(() => { for (const c of children) c.kill('SIGTERM'); }); // a child alive would keep this file running

/** Starts provider.mjs; resolves with { issuer, port, admin_port, stop(), stderr() }. */
async function startProvider(args = []) {
  const child = spawn(process.execPath, [PROVIDER, '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_ENV: 'test' },
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
    if (process.env.OIDC_PROVIDER_LOG) process.stderr.write(d);
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const ready = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`provider.mjs: no ready line in 20s\n${stderr}`)), 20000);
    child.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        try {
          resolve(JSON.parse(out.slice(0, nl)));
        } catch (err) {
          reject(new Error(`provider.mjs: ready line is not JSON: ${out.slice(0, nl)}`, { cause: err }));
        }
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`provider.mjs exited (${code}) before it was ready\n${stderr}`));
    });
  });
  child.stdout.resume();
  return {
    ...ready,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** A cookie jar that honours Path and deletions; enough for oidc-provider's cookies. */
class CookieJar {
  cookies = new Map(); // `${path}\0${name}` → { name, value, path }

  store(res, url) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let path = '/';
      let expired = value === '';
      for (const attr of attrs) {
        const [k, v = ''] = attr.split('=');
        const key = k.toLowerCase();
        if (key === 'path') path = v;
        if (key === 'expires' && Date.parse(v) <= Date.now()) expired = true;
        if (key === 'max-age' && Number(v) <= 0) expired = true;
      }
      if (!attrs.some((a) => a.toLowerCase().startsWith('path='))) {
        const p = new URL(url).pathname;
        path = p.slice(0, p.lastIndexOf('/')) || '/';
      }
      const key = `${path}\0${name}`;
      if (expired) this.cookies.delete(key);
      else this.cookies.set(key, { name, value, path });
    }
  }

  header(url) {
    const { pathname } = new URL(url);
    const match = (p) => pathname === p || (pathname.startsWith(p) && (p.endsWith('/') || pathname[p.length] === '/'));
    return [...this.cookies.values()]
      .filter((c) => match(c.path))
      .sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  has(name) {
    return [...this.cookies.values()].some((c) => c.name === name);
  }
}

async function request(jar, url, init = {}) {
  const headers = { ...init.headers };
  const cookie = jar?.header(url);
  if (cookie) headers.cookie = cookie;
  const res = await fetch(url, { ...init, headers, redirect: 'manual' });
  jar?.store(res, url);
  return res;
}

const htmlUnescape = (s) => s.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');

/** The first <form> of a page: { action, method, fields } (hidden inputs and the prompt). */
function parseForm(html, base) {
  const form = html.match(/<form\b[^>]*>[\s\S]*?<\/form>/i);
  assert.ok(form, `no <form> in page:\n${html.slice(0, 2000)}`);
  const attr = (tag, name) => {
    const m = tag.match(new RegExp(`\\b${name}="([^"]*)"`, 'i'));
    return m ? htmlUnescape(m[1]) : undefined;
  };
  const open = form[0].match(/<form\b[^>]*>/i)[0];
  const fields = {};
  for (const [input] of form[0].matchAll(/<input\b[^>]*>/gi)) {
    const name = attr(input, 'name');
    if (name && attr(input, 'type') === 'hidden') fields[name] = attr(input, 'value') ?? '';
  }
  return { action: new URL(attr(open, 'action'), base).href, method: (attr(open, 'method') ?? 'get').toUpperCase(), fields };
}

function pkcePair() {
  const verifier = b64u(crypto.randomBytes(32));
  return { verifier, challenge: crypto.hash('sha256', verifier, 'base64url') };
}

/**
 * The authorization request, followed through the provider's pages (login with `login`, then
 * consent) until the provider redirects to redirectUri; that redirect is captured, not followed.
 * Returns { callback: URL, pages: [prompt names seen], state, nonce, verifier }.
 */
async function authorize(op, jar, { clientId = 'sessiongate-test', login = 'alice', scope = 'openid email profile', redirectUri = REDIRECT_URI, pkce = true, cancel = false, extra = {} } = {}) {
  const state = b64u(crypto.randomBytes(12));
  const nonce = b64u(crypto.randomBytes(12));
  const { verifier, challenge } = pkcePair();
  const url = new URL(op.config.authorization_endpoint);
  url.search = new URLSearchParams({
    client_id: clientId,
    response_type: 'code',
    redirect_uri: redirectUri,
    scope,
    state,
    nonce,
    ...(pkce ? { code_challenge: challenge, code_challenge_method: 'S256' } : {}),
    ...extra,
  });
  const pages = [];
  let next = url.href;
  let init = {};
  for (let step = 0; step < 12; step++) {
    const res = await request(jar, next, init);
    init = {};
    if ([302, 303].includes(res.status)) {
      await res.arrayBuffer();
      const location = new URL(res.headers.get('location'), next);
      if (location.href.startsWith(redirectUri)) {
        return { callback: location, pages, state, nonce, verifier };
      }
      next = location.href;
      continue;
    }
    const body = await res.text();
    assert.equal(res.status, 200, `unexpected ${res.status} from ${next}: ${body.slice(0, 500)}`);
    const form = parseForm(body, next);
    const prompt = form.fields.prompt;
    assert.ok(['login', 'consent'].includes(prompt), `unexpected page at ${next}:\n${body.slice(0, 1000)}`);
    pages.push(prompt);
    if (cancel) { // the page's Cancel link: /interaction/:uid/abort
      next = `${form.action}/abort`;
      continue;
    }
    const fields = prompt === 'login' ? { ...form.fields, login, password: 'ignored' } : form.fields;
    next = form.action;
    init = { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() };
  }
  throw new Error(`authorization did not reach ${redirectUri} in 12 steps (pages: ${pages.join(',')})`);
}

async function tokenRequest(op, params, { clientId = 'sessiongate-test', secret = 'sessiongate-test-secret' } = {}) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (secret !== null) {
    const enc = (s) => encodeURIComponent(s); // RFC 6749 2.3.1: form-encode, then Basic
    headers.authorization = `Basic ${Buffer.from(`${enc(clientId)}:${enc(secret)}`).toString('base64')}`;
  }
  const res = await fetch(op.config.token_endpoint, { method: 'POST', headers, body: new URLSearchParams(params).toString() });
  return { status: res.status, body: await res.json() };
}

function codeParams(auth, redirectUri = REDIRECT_URI) {
  return { grant_type: 'authorization_code', code: auth.callback.searchParams.get('code'), redirect_uri: redirectUri, code_verifier: auth.verifier };
}

/** Verifies a JWS against the provider's jwks_uri with node:crypto; returns { header, payload }. */
async function verifyJwt(op, token) {
  const parts = token.split('.');
  assert.equal(parts.length, 3, 'a JWS compact serialization has three parts');
  const [h, p, s] = parts;
  const header = fromB64uJson(h);
  assert.equal(header.alg, 'RS256');
  const jwks = await (await fetch(op.config.jwks_uri)).json();
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `kid ${header.kid} is in jwks_uri`);
  assert.equal(jwk.d, undefined, 'jwks_uri publishes no private key material');
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  const ok = crypto.verify('sha256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url'));
  assert.ok(ok, 'signature verifies against jwks_uri');
  // and a tampered payload does not
  const forged = b64u(JSON.stringify({ ...fromB64uJson(p), sub: 'mallory' }));
  assert.ok(!crypto.verify('sha256', Buffer.from(`${h}.${forged}`), key, Buffer.from(s, 'base64url')));
  return { header, payload: fromB64uJson(p) };
}

async function verifyIdToken(op, idToken, { nonce, clientId = 'sessiongate-test', accessToken } = {}) {
  const { payload } = await verifyJwt(op, idToken);
  assert.equal(payload.iss, op.issuer);
  assert.ok(payload.aud === clientId || (Array.isArray(payload.aud) && payload.aud.includes(clientId)), `aud ${payload.aud}`);
  assert.equal(payload.nonce, nonce);
  assert.ok(payload.exp > now(), 'not expired');
  assert.ok(payload.iat <= now() + 5, 'iat not in the future');
  if (accessToken && payload.at_hash !== undefined) { // optional in the code flow
    const hash = crypto.hash('sha256', accessToken, 'buffer');
    assert.equal(payload.at_hash, b64u(hash.subarray(0, 16)), 'at_hash matches the access token');
  }
  return payload;
}

/** A client's backchannel_logout_uri: collects logout_token values. */
async function startLogoutReceiver() {
  const tokens = [];
  const waiters = [];
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    if (req.method !== 'POST' || req.url !== '/backchannel-logout') {
      res.writeHead(404).end();
      return;
    }
    assert.match(req.headers['content-type'], /^application\/x-www-form-urlencoded/);
    const token = new URLSearchParams(Buffer.concat(chunks).toString()).get('logout_token');
    res.writeHead(200, { 'cache-control': 'no-store' }).end();
    tokens.push(token);
    waiters.splice(0).forEach((w) => w());
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    uri: `http://127.0.0.1:${server.address().port}/backchannel-logout`,
    tokens,
    async next(count, ms = 10000) {
      const deadline = Date.now() + ms;
      while (tokens.length < count) {
        if (Date.now() > deadline) throw new Error(`expected ${count} logout token(s), got ${tokens.length}`);
        await new Promise((resolve) => { waiters.push(resolve); setTimeout(resolve, 200); });
      }
      return tokens[count - 1];
    },
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

async function verifyLogoutToken(op, token, { clientId = 'sessiongate-test', sub, sid }) {
  const { header, payload } = await verifyJwt(op, token);
  assert.equal(header.typ, 'logout+jwt');
  assert.equal(payload.iss, op.issuer);
  assert.equal(payload.aud, clientId);
  assert.deepEqual(payload.events, { [BACKCHANNEL_EVENT]: {} });
  assert.equal(payload.nonce, undefined, 'a logout token carries no nonce');
  assert.ok(payload.jti, 'jti');
  assert.ok(payload.iat <= now() + 5 && payload.exp > now(), 'iat/exp');
  assert.equal(payload.sub, sub);
  if (sid !== undefined) assert.equal(payload.sid, sid);
  return payload;
}

async function adminGet(op, path) {
  const res = await fetch(`http://127.0.0.1:${op.admin_port}${path}`);
  return { status: res.status, body: await res.json() };
}
async function adminPost(op, path, body) {
  const res = await fetch(`http://127.0.0.1:${op.admin_port}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

// --- the provider with a clients file --------------------------------------------------------------
describe('oidc-provider with a clients file', () => {
  let op;
  let receiver;
  let dir;
  const clientKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const clientKid = 'pkjwt-test-key';

  before(async () => {
    receiver = await startLogoutReceiver();
    dir = mkdtempSync(join(tmpdir(), 'oidc-smoke-'));
    const clients = [
      {
        client_id: 'sessiongate-test',
        client_secret: 'sessiongate-test-secret',
        redirect_uris: [REDIRECT_URI],
        post_logout_redirect_uris: [POST_LOGOUT_URI],
        backchannel_logout_uri: receiver.uri,
        backchannel_logout_session_required: true,
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        client_id: 'sessiongate-pkjwt',
        redirect_uris: [REDIRECT_URI],
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: { keys: [{ ...clientKey.publicKey.export({ format: 'jwk' }), kid: clientKid, use: 'sig', alg: 'RS256' }] },
      },
    ];
    writeFileSync(join(dir, 'clients.json'), JSON.stringify(clients));
    op = await startProvider(['--clients', join(dir, 'clients.json'), '--admin-port', '0']);
    const res = await fetch(`${op.issuer}/.well-known/openid-configuration`);
    assert.equal(res.status, 200);
    op.config = await res.json();
  });

  after(async () => {
    await op?.stop();
    await receiver?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('ready line and discovery', () => {
    assert.equal(op.issuer, `http://127.0.0.1:${op.port}`);
    assert.ok(op.admin_port > 0);
    const c = op.config;
    assert.equal(c.issuer, op.issuer);
    for (const k of ['authorization_endpoint', 'token_endpoint', 'jwks_uri', 'userinfo_endpoint', 'end_session_endpoint']) {
      assert.ok(c[k]?.startsWith(`${op.issuer}/`), `${k}: ${c[k]}`);
    }
    assert.deepEqual(c.code_challenge_methods_supported, ['S256']);
    assert.ok(c.id_token_signing_alg_values_supported.includes('RS256'));
    assert.ok(c.response_types_supported.includes('code'));
    assert.ok(c.scopes_supported.includes('email') && c.scopes_supported.includes('profile'));
    assert.ok(c.token_endpoint_auth_methods_supported.includes('client_secret_basic'));
    assert.ok(c.token_endpoint_auth_methods_supported.includes('private_key_jwt'));
    assert.equal(c.backchannel_logout_supported, true);
    assert.equal(c.backchannel_logout_session_supported, true);
    assert.equal(c.authorization_response_iss_parameter_supported, true);
  });

  test('code flow with PKCE for alice: login, consent, code, tokens, verified ID token; the code is single-use', async () => {
    const jar = new CookieJar();
    const auth = await authorize(op, jar, { login: 'alice' });
    assert.deepEqual(auth.pages, ['login', 'consent']);
    assert.equal(auth.callback.searchParams.get('state'), auth.state);
    assert.equal(auth.callback.searchParams.get('iss'), op.issuer, 'RFC 9207 iss in the authorization response');
    assert.ok(auth.callback.searchParams.get('code'));
    assert.equal(auth.callback.searchParams.get('error'), null);

    const { status, body } = await tokenRequest(op, codeParams(auth));
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.token_type, 'Bearer');
    assert.ok(body.access_token && body.id_token);
    const claims = await verifyIdToken(op, body.id_token, { nonce: auth.nonce, accessToken: body.access_token });
    assert.equal(claims.sub, 'alice');
    assert.equal(claims.email, 'alice@example.com');
    assert.equal(claims.email_verified, true);
    assert.equal(claims.preferred_username, 'alice');
    assert.equal(claims.name, 'Alice Example');
    assert.ok(claims.sid, 'sid (backchannel_logout_session_required)');

    const userinfo = await fetch(op.config.userinfo_endpoint, { headers: { authorization: `Bearer ${body.access_token}` } });
    assert.equal(userinfo.status, 200);
    assert.deepEqual(await userinfo.json(), { sub: 'alice', email: 'alice@example.com', email_verified: true, name: 'Alice Example', preferred_username: 'alice' });

    // A second authorization in the same browser: signed in and consented, so straight back.
    const again = await authorize(op, jar, { login: 'alice' });
    assert.deepEqual(again.pages, []);
    assert.ok(again.callback.searchParams.get('code'));

    // Replaying a used code: invalid_grant, and (RFC 6749 4.1.2) what it granted is revoked.
    const replay = await tokenRequest(op, codeParams(auth));
    assert.equal(replay.status, 400);
    assert.equal(replay.body.error, 'invalid_grant');
    const revoked = await fetch(op.config.userinfo_endpoint, { headers: { authorization: `Bearer ${body.access_token}` } });
    assert.equal(revoked.status, 401, 'the access token of the replayed code is revoked');
    const afterReplay = await authorize(op, jar, { login: 'alice' });
    assert.deepEqual(afterReplay.pages, ['consent'], 'the grant is gone, the provider session is not');
  });

  test('bob: email_verified false; carol: no email', async () => {
    const bob = await authorize(op, new CookieJar(), { login: 'bob' });
    const bobTokens = await tokenRequest(op, codeParams(bob));
    assert.equal(bobTokens.status, 200, JSON.stringify(bobTokens.body));
    const b = await verifyIdToken(op, bobTokens.body.id_token, { nonce: bob.nonce });
    assert.equal(b.sub, 'bob');
    assert.equal(b.email, 'bob@example.com');
    assert.equal(b.email_verified, false);

    const carol = await authorize(op, new CookieJar(), { login: 'carol' });
    const carolTokens = await tokenRequest(op, codeParams(carol));
    assert.equal(carolTokens.status, 200, JSON.stringify(carolTokens.body));
    const c = await verifyIdToken(op, carolTokens.body.id_token, { nonce: carol.nonce });
    assert.equal(c.sub, 'carol');
    assert.equal(c.email, undefined);
    assert.equal(c.email_verified, undefined);
    assert.equal(c.name, 'Carol Example');
  });

  test('an unknown account is asked to sign in again', async () => {
    const jar = new CookieJar();
    await assert.rejects(authorize(op, jar, { login: 'mallory' }), /did not reach .* \(pages: login,login,login,/);
  });

  test('Cancel on the login page: access_denied to the redirect_uri', async () => {
    const auth = await authorize(op, new CookieJar(), { cancel: true });
    assert.equal(auth.callback.searchParams.get('error'), 'access_denied');
    assert.equal(auth.callback.searchParams.get('state'), auth.state);
    assert.equal(auth.callback.searchParams.get('code'), null);
  });

  test('PKCE is required, and the verifier must match', async () => {
    const noPkce = await authorize(op, new CookieJar(), { pkce: false });
    assert.equal(noPkce.callback.searchParams.get('error'), 'invalid_request');
    assert.match(noPkce.callback.searchParams.get('error_description'), /PKCE/);

    const plain = await authorize(op, new CookieJar(), { pkce: false, extra: { code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' } });
    assert.equal(plain.callback.searchParams.get('error'), 'invalid_request');

    const auth = await authorize(op, new CookieJar());
    const wrong = await tokenRequest(op, { ...codeParams(auth), code_verifier: pkcePair().verifier });
    assert.equal(wrong.status, 400);
    assert.equal(wrong.body.error, 'invalid_grant');
  });

  test('client authentication: a wrong secret is invalid_client', async () => {
    const auth = await authorize(op, new CookieJar());
    const bad = await tokenRequest(op, codeParams(auth), { secret: 'wrong' });
    assert.equal(bad.status, 401);
    assert.equal(bad.body.error, 'invalid_client');
  });

  test('private_key_jwt client', async () => {
    const auth = await authorize(op, new CookieJar(), { clientId: 'sessiongate-pkjwt' });
    const header = b64u(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: clientKid }));
    const payload = b64u(JSON.stringify({ iss: 'sessiongate-pkjwt', sub: 'sessiongate-pkjwt', aud: op.issuer, jti: crypto.randomUUID(), iat: now(), exp: now() + 60 }));
    const sig = b64u(crypto.sign('sha256', Buffer.from(`${header}.${payload}`), clientKey.privateKey));
    const { status, body } = await tokenRequest(op, {
      ...codeParams(auth),
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: `${header}.${payload}.${sig}`,
    }, { secret: null });
    assert.equal(status, 200, JSON.stringify(body));
    const claims = await verifyIdToken(op, body.id_token, { nonce: auth.nonce, clientId: 'sessiongate-pkjwt' });
    assert.equal(claims.sub, 'alice');
  });

  test('back-channel logout through the admin API', async () => {
    const jar = new CookieJar();
    const auth = await authorize(op, jar, { login: 'alice' });
    const { body } = await tokenRequest(op, codeParams(auth));
    const idToken = await verifyIdToken(op, body.id_token, { nonce: auth.nonce });

    const listed = await adminGet(op, '/sessions');
    assert.equal(listed.status, 200);
    const mine = listed.body.find((s) => s.sids.includes(idToken.sid));
    assert.ok(mine, `session with sid ${idToken.sid} in ${JSON.stringify(listed.body)}`);
    assert.equal(mine.sub, 'alice');
    assert.deepEqual(mine.clients.map((c) => c.client_id), ['sessiongate-test']);

    const before = receiver.tokens.length;
    const out = await adminPost(op, '/logout-backchannel', { sub: 'alice', sid: idToken.sid });
    assert.equal(out.status, 200, JSON.stringify(out.body));
    assert.equal(out.body.sessions_ended, 1);
    assert.deepEqual(out.body.deliveries, [{ client_id: 'sessiongate-test', sid: idToken.sid, ok: true }]);
    const token = await receiver.next(before + 1);
    await verifyLogoutToken(op, token, { sub: 'alice', sid: idToken.sid });

    const after = await adminGet(op, '/sessions');
    assert.ok(!after.body.some((s) => s.session_id === mine.session_id), 'the session is gone');
    // The browser's provider session is gone too: the next authorization asks to sign in again.
    const again = await authorize(op, jar, { login: 'alice' });
    assert.equal(again.pages[0], 'login');

    assert.equal((await adminPost(op, '/logout-backchannel', { sub: 'nobody' })).status, 404);
    assert.equal((await adminPost(op, '/logout-backchannel', {})).status, 400);
  });

  test('back-channel logout token for a session the provider no longer has (client_id given)', async () => {
    const before = receiver.tokens.length;
    const out = await adminPost(op, '/logout-backchannel', { sub: 'bob', sid: 'no-such-sid', client_id: 'sessiongate-test' });
    assert.equal(out.status, 200, JSON.stringify(out.body));
    assert.equal(out.body.sessions_ended, 0);
    assert.equal(out.body.deliveries[0].ok, true);
    await verifyLogoutToken(op, await receiver.next(before + 1), { sub: 'bob', sid: 'no-such-sid' });
  });

  test('back-channel logout through RP-initiated logout (end_session)', async () => {
    const jar = new CookieJar();
    const auth = await authorize(op, jar, { login: 'bob' });
    const { body } = await tokenRequest(op, codeParams(auth));
    const idToken = await verifyIdToken(op, body.id_token, { nonce: auth.nonce });

    const end = new URL(op.config.end_session_endpoint);
    end.search = new URLSearchParams({ id_token_hint: body.id_token, post_logout_redirect_uri: POST_LOGOUT_URI, state: 'bye' });
    const page = await request(jar, end.href);
    assert.equal(page.status, 200);
    const form = parseForm(await page.text(), end.href);
    assert.ok(form.fields.xsrf, 'the logout confirmation form carries xsrf');

    const before = receiver.tokens.length;
    const confirm = await request(jar, form.action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...form.fields, logout: 'yes' }).toString(),
    });
    assert.equal(confirm.status, 303);
    const location = new URL(confirm.headers.get('location'));
    assert.equal(`${location.origin}${location.pathname}`, POST_LOGOUT_URI);
    assert.equal(location.searchParams.get('state'), 'bye');

    await verifyLogoutToken(op, await receiver.next(before + 1), { sub: 'bob', sid: idToken.sid });
    assert.ok(!(await adminGet(op, '/sessions')).body.some((s) => s.sids.includes(idToken.sid)));
  });
});

// --- the built-in default client ---------------------------------------------------------------------
test('without --clients: the built-in sessiongate-test client', async () => {
  const op = await startProvider();
  try {
    const res = await fetch(`${op.issuer}/.well-known/openid-configuration`);
    op.config = await res.json();
    assert.equal(op.config.issuer, op.issuer);
    assert.equal(op.admin_port, undefined, 'no admin API unless --admin-port');
    const auth = await authorize(op, new CookieJar(), { login: 'alice' });
    const { status, body } = await tokenRequest(op, codeParams(auth));
    assert.equal(status, 200, JSON.stringify(body));
    const claims = await verifyIdToken(op, body.id_token, { nonce: auth.nonce });
    assert.equal(claims.email, 'alice@example.com');
    assert.equal(claims.sid, undefined, 'no sid without backchannel_logout_session_required');
  } finally {
    await op.stop();
  }
});

test('--issuer, --jwks, --conform-id-token-claims and a bad clients file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'oidc-smoke-'));
  try {
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const kid = 'fixed-test-key';
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' }] }));
    // --issuer must still be where the provider answers: pick a port first, then name it.
    const probe = http.createServer();
    await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = probe.address().port;
    await new Promise((resolve) => probe.close(resolve));
    const issuer = `http://127.0.0.1:${port}/op`;
    const op = await startProvider(['--port', String(port), '--issuer', issuer, '--jwks', join(dir, 'jwks.json'), '--conform-id-token-claims']);
    try {
      assert.equal(op.issuer, issuer);
      op.config = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
      assert.equal(op.config.issuer, issuer);
      assert.equal(op.config.authorization_endpoint, `${issuer}/auth`);
      const jwks = await (await fetch(op.config.jwks_uri)).json();
      assert.deepEqual(jwks.keys.map((k) => k.kid), [kid]);
      const auth = await authorize(op, new CookieJar(), { login: 'alice' });
      const { body } = await tokenRequest(op, codeParams(auth));
      const claims = await verifyIdToken(op, body.id_token, { nonce: auth.nonce });
      assert.equal(claims.email, undefined, 'spec-strict: scope claims only from userinfo');
      const userinfo = await (await fetch(op.config.userinfo_endpoint, { headers: { authorization: `Bearer ${body.access_token}` } })).json();
      assert.equal(userinfo.email, 'alice@example.com');
    } finally {
      await op.stop();
    }

    writeFileSync(join(dir, 'bad-clients.json'), JSON.stringify([{ client_id: 'x', redirect_uris: ['not a url'] }]));
    const bad = startProvider(['--clients', join(dir, 'bad-clients.json')]);
    bad.then((started) => started.stop(), () => {}); // should it start after all, stop it
    await assert.rejects(bad, /exited \(2\)[\s\S]*invalid configuration: client "x"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// A small in-process stand-in for sessiongate's auth API, for offline tests of the client's own
// logic (token handling, retry, typed errors). It follows SPEC §4–§6 closely enough for that —
// Django token masking, session-bound CSRF secret, problem JSON — but it is NOT the server:
// the real contract is checked by client.test.mjs against a real sessiongate.
import http from 'node:http';
import { randomBytes, randomInt } from 'node:crypto';

const CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

export function newSecret() {
  let s = '';
  for (let i = 0; i < 32; i++) s += CHARS[randomInt(62)];
  return s;
}

/** Django's mask: mask + (secret + mask) mod 62. */
export function maskSecret(secret, mask = newSecret()) {
  let out = '';
  for (let i = 0; i < 32; i++) out += CHARS[(CHARS.indexOf(secret[i]) + CHARS.indexOf(mask[i])) % 62];
  return mask + out;
}

export function unmaskToken(token) {
  if (token.length === 32) return token;
  const mask = token.slice(0, 32);
  const cipher = token.slice(32);
  let out = '';
  for (let i = 0; i < 32; i++) out += CHARS[(CHARS.indexOf(cipher[i]) - CHARS.indexOf(mask[i]) + 62) % 62];
  return out;
}

const wellFormed = (t) => typeof t === 'string' && /^[a-zA-Z0-9]+$/.test(t) && (t.length === 32 || t.length === 64);

function problem(res, status, code, detail, extra = {}) {
  res.writeHead(status, { 'content-type': 'application/problem+json', 'cache-control': 'no-store', ...extra });
  res.end(JSON.stringify({ type: `https://sessiongate.dev/problems/${code}`, title: code.replace(/_/g, ' '), status, detail, code }));
}

function json(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

function parseCookies(header = '') {
  const out = {};
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

/**
 * @param {object} [o]
 * @param {Record<string, {password: string, email?: string, mfa?: string}>} [o.users] `mfa` = the valid code
 * @param {string} [o.authPath]
 * @param {(req, res, ctx) => boolean} [o.extra] handle other paths (return true when handled)
 */
export function createMockServer({ users = { alice: { password: 'correct horse battery staple', email: 'alice@example.com' } }, authPath = '/api/auth', extra } = {}) {
  const sessions = new Map(); // cookie token -> session
  const stats = { csrfFailures: 0, requests: [] };
  let nextId = 1;
  const userObj = (name) => ({
    id: Object.keys(users).indexOf(name) + 1,
    username: name,
    email: users[name].email ?? null,
    emailVerified: false,
    mfa: !!users[name].mfa,
    createdAt: '2026-01-01T00:00:00Z',
  });
  const publicSession = (s, current) => ({
    id: s.id,
    createdAt: s.createdAt,
    lastSeenAt: new Date().toISOString(),
    expiresAt: new Date(Date.now() + 14 * 864e5).toISOString(),
    authenticatedAt: s.authenticatedAt,
    ip: '127.0.0.1',
    userAgent: s.userAgent,
    remember: s.remember,
    current,
  });

  async function handle(req, res) {
    const url = new URL(req.url, 'http://mock');
    const path = url.pathname;
    const method = req.method;
    stats.requests.push(`${method} ${path}`);
    const cookies = parseCookies(req.headers.cookie);
    const cookieSecret = wellFormed(cookies.csrftoken) && cookies.csrftoken.length === 32 ? cookies.csrftoken : null;
    const sid = cookies.sessionid;
    let session = sid ? sessions.get(sid) : undefined;
    if (session && session.pending) session = undefined; // MFA not done yet
    const setCookies = [];
    const issueCsrf = (secret) => {
      setCookies.push(`csrftoken=${secret}; Path=/; Max-Age=31449600; SameSite=Lax`);
      return maskSecret(secret);
    };
    const unsafe = !['GET', 'HEAD', 'OPTIONS', 'TRACE'].includes(method);
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const raw = Buffer.concat(chunks).toString();

    if (unsafe && (path.startsWith(authPath + '/') || path.startsWith('/api/'))) {
      const header = req.headers['x-csrftoken'];
      let reason = null;
      if (!cookieSecret) reason = 'CSRF cookie not set.';
      else if (!header) reason = 'CSRF token missing.';
      else if (!wellFormed(header)) reason = 'CSRF token has incorrect length or characters.';
      else if (unmaskToken(header) !== cookieSecret) reason = 'CSRF token incorrect.';
      else if (session && session.csrfSecret !== cookieSecret) reason = 'CSRF token does not belong to this session.';
      if (reason) {
        stats.csrfFailures++;
        return problem(res, 403, 'csrf_failed', `CSRF verification failed: ${reason}`);
      }
      if (path.startsWith(authPath + '/') && raw && !/^application\/json\b/.test(req.headers['content-type'] ?? '')) {
        return problem(res, 415, 'unsupported_media_type', 'Send Content-Type: application/json.');
      }
    }
    let body = {};
    if (raw && /json/.test(req.headers['content-type'] ?? '')) {
      try {
        body = JSON.parse(raw);
      } catch {
        return problem(res, 400, 'invalid_request', 'Malformed JSON.');
      }
    }
    const ctx = { session, body, json, problem, setCookies };
    if (extra && (await extra(req, res, ctx))) return;

    const send = (status, data) => {
      const headers = setCookies.length ? { 'set-cookie': setCookies, vary: 'Cookie' } : {};
      if (status === 204) {
        res.writeHead(204, headers);
        return res.end();
      }
      return json(res, status, data, headers);
    };
    const startSession = (name, remember, pending = false) => {
      if (sid) sessions.delete(sid);
      const token = randomBytes(32).toString('base64url');
      const secret = newSecret();
      const now = new Date().toISOString();
      sessions.set(token, {
        id: `s${nextId++}`, user: name, csrfSecret: secret, createdAt: now, authenticatedAt: now,
        userAgent: req.headers['user-agent'] ?? '', remember, pending,
      });
      setCookies.push(`sessionid=${token}; Path=/; HttpOnly; SameSite=Lax${remember ? '; Max-Age=1209600' : ''}`);
      return issueCsrf(secret);
    };
    const rotateCsrf = () => {
      session.csrfSecret = newSecret();
      return issueCsrf(session.csrfSecret);
    };

    if (!path.startsWith(authPath + '/')) return problem(res, 404, 'not_found', 'No such path.');
    const route = `${method} ${path.slice(authPath.length)}`;
    switch (true) {
      case route === 'GET /csrf': {
        const secret = session ? session.csrfSecret : cookieSecret ?? newSecret();
        const token = secret === cookieSecret ? maskSecret(secret) : issueCsrf(secret);
        return send(200, { csrfToken: token });
      }
      case route === 'POST /login': {
        if (body.username === 'limited') return problem(res, 429, 'rate_limited', 'Too many login attempts.', { 'retry-after': '7' });
        const u = users[body.username];
        if (!u || u.password !== body.password) return problem(res, 401, 'invalid_credentials', 'Wrong username or password.');
        if (u.mfa) {
          startSession(body.username, body.remember ?? true, true);
          return send(200, { mfaRequired: true });
        }
        const csrfToken = startSession(body.username, body.remember ?? true);
        return send(200, { user: userObj(body.username), csrfToken });
      }
      case route === 'POST /login/mfa': {
        const pending = sid && sessions.get(sid);
        if (!pending || !pending.pending) return problem(res, 401, 'not_authenticated', 'Log in first.');
        if (body.code !== users[pending.user].mfa && body.recoveryCode !== 'recovery-code') {
          return problem(res, 401, 'invalid_credentials', 'Wrong code.');
        }
        const csrfToken = startSession(pending.user, pending.remember);
        return send(200, { user: userObj(pending.user), csrfToken });
      }
      case route === 'POST /logout':
        if (sid) sessions.delete(sid);
        setCookies.push('sessionid=""; Path=/; HttpOnly; SameSite=Lax; Max-Age=0');
        return send(204);
      case route === 'POST /email/verify': {
        const name = Object.keys(users).find((n) => users[n].pendingEmail && body.token === 'verify-' + n);
        if (!name) return problem(res, 400, 'invalid_request', 'token: invalid, already used or expired');
        users[name].email = users[name].pendingEmail;
        delete users[name].pendingEmail;
        return send(200, { email: users[name].email, emailVerified: true });
      }
      case route === 'POST /signup':
        return problem(res, 403, 'signup_disabled', 'Sign-up is disabled.');
    }
    if (!session) return problem(res, 401, 'not_authenticated', 'Authentication required.');
    const mine = () => [...sessions.entries()].filter(([, s]) => s.user === session.user && !s.pending);
    switch (true) {
      case route === 'GET /session':
        return send(200, { user: userObj(session.user), session: publicSession(session, true) });
      case route === 'GET /sessions':
        return send(200, { sessions: mine().map(([t, s]) => publicSession(s, t === sid)) });
      case route === 'POST /sessions/revoke-others': {
        const others = mine().filter(([t]) => t !== sid);
        for (const [t] of others) sessions.delete(t);
        return send(200, { revoked: others.length });
      }
      case method === 'DELETE' && path.startsWith(authPath + '/sessions/'): {
        const id = decodeURIComponent(path.slice(authPath.length + '/sessions/'.length));
        const hit = mine().find(([, s]) => s.id === id);
        if (!hit) return problem(res, 404, 'not_found', 'No such session.');
        sessions.delete(hit[0]);
        return send(204);
      }
      case route === 'POST /reauth': {
        const u = users[session.user];
        const ok = body.password !== undefined ? body.password === u.password : !!u.mfa && (body.code === u.mfa || body.recoveryCode === 'recovery-code');
        if (!ok) return problem(res, 401, 'invalid_credentials', 'Wrong password or code.');
        session.authenticatedAt = new Date().toISOString();
        return send(200, { csrfToken: rotateCsrf() });
      }
      case route === 'POST /mfa/totp/setup':
      case route === 'POST /mfa/totp/confirm':
      case route === 'POST /mfa/totp/disable':
      case route === 'POST /email': {
        if (Date.now() - Date.parse(session.authenticatedAt) > (session.reauthWindowMs ?? 600_000)) {
          return problem(res, 403, 'reauth_required', 'Please confirm your password first.');
        }
        const u = users[session.user];
        if (route.endsWith('/setup')) {
          u.pendingMfa = '654321';
          return send(200, { secret: 'JBSWY3DPEHPK3PXP', otpauthUrl: 'otpauth://totp/mock:' + session.user + '?secret=JBSWY3DPEHPK3PXP', qrSvg: '<svg xmlns="http://www.w3.org/2000/svg"></svg>' });
        }
        if (route.endsWith('/confirm')) {
          if (!u.pendingMfa || body.code !== u.pendingMfa) return problem(res, 400, 'invalid_request', 'code: incorrect');
          u.mfa = u.pendingMfa;
          delete u.pendingMfa;
          return send(200, { recoveryCodes: Array.from({ length: 10 }, (_, i) => `abcde-0000${i}`) });
        }
        if (route.endsWith('/disable')) {
          delete u.mfa;
          return send(204);
        }
        u.pendingEmail = body.email;
        return send(202, {});
      }
      case route === 'POST /password': {
        if (Date.now() - Date.parse(session.authenticatedAt) > (session.reauthWindowMs ?? 600_000)) {
          return problem(res, 403, 'reauth_required', 'Please confirm your password first.');
        }
        if (body.currentPassword !== users[session.user].password) return problem(res, 401, 'invalid_credentials', 'Wrong current password.');
        if (!body.newPassword || body.newPassword.length < 8) {
          res.writeHead(422, { 'content-type': 'application/problem+json' });
          return res.end(JSON.stringify({ type: 'about:blank', title: 'Weak password', status: 422, detail: 'This password is too short.', code: 'weak_password', errors: { newPassword: 'at least 8 characters' } }));
        }
        users[session.user].password = body.newPassword;
        for (const [t] of mine()) if (t !== sid) sessions.delete(t);
        return send(200, { csrfToken: rotateCsrf() });
      }
    }
    return problem(res, 404, 'not_found', 'No such endpoint.');
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(e && e.stack));
    });
  });
  return {
    server,
    sessions,
    stats,
    users,
    /** Start listening on 127.0.0.1 (port 0 = any); resolves to the base URL. */
    async start(port = 0) {
      await new Promise((r) => server.listen(port, '127.0.0.1', r));
      return `http://127.0.0.1:${server.address().port}`;
    },
    async stop() {
      server.closeAllConnections?.();
      await new Promise((r) => server.close(r));
    },
  };
}

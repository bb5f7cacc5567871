// The pieces of the cross-origin browser matrix (cross-origin.test.mjs, cross-origin-hostile.test.mjs):
// a small SPA that talks to sessiongate on another origin with the JS client (clients/js/index.js)
// and with axios (the interceptors of clients/js/README.md, withCredentials: true), a hostile
// page, and `startCrossOrigin()`, which starts everything on HTTPS with real hostnames:
//
//   https://app.example.test:A    the SPA, same-site with the API      (case 3)
//   https://app.other.test:C      the SPA, cross-site                  (case 4)
//   https://evil.other.test:D     a hostile page, in no allowlist
//   https://evil.example.test:E   a hostile page on a sibling subdomain of the API, in no allowlist
//   https://api.example.test:Bx   sessiongate in cross-origin mode, one per configuration:
//      same   allowed_origins = [A]         → SameSite=Lax, no warning
//      cross  allowed_origins = [A, C]      → SameSite=None; Secure, the third-party warning
//      chips  allowed_origins = [C], partitioned + host_prefix → __Host-…; Partitioned
//   http://127.0.0.1:U            the echo upstream behind every gateway's [[routes]] /api/
//                                  (no SPA on the gateways: [spa] dir = "off")
//
// Chromium maps the hostnames to 127.0.0.1 (`hostArgs`) and accepts the dev certificate by its
// SPKI hash; the certificate comes from `sessiongate dev-cert` at the start. The SPA and the
// hostile page take the gateway's origin from their query string (`?api=https://api…`), so one
// static server per origin serves every gateway.
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  REPO,
  devCert,
  freePort,
  startEcho,
  startGateway,
  startStatic,
  q,
} from './harness.mjs';

export const USER = 'alice';
export const PASSWORD = 'correct horse battery staple 42';
export const EMAIL = 'alice@example.test';

export const HOSTS = ['api.example.test', 'app.example.test', 'app.other.test', 'evil.other.test', 'evil.example.test'];

const SPA_HTML = `<!doctype html>
<meta charset="utf-8">
<title>cross-origin SPA</title>
<pre id="status">loading</pre>
<script type="module" src="/app.js"></script>
`;

// The SPA. `window.spa.client` and `window.spa.axios` offer the same operations, each returning
// { ok: true, value } or { ok: false, error: { name, status, code, detail, message } } so that
// the tests can assert failures too.
const APP_JS = `
import { createClient } from '/client.js';
import axios from '/axios.js';

const API = new URLSearchParams(location.search).get('api'); // e.g. https://api.example.test:8443
const AUTH = '/api/auth';

// ---- 1. the JS client: keeps the csrfToken of response bodies, refreshes it from /csrf ----
const client = createClient({ baseUrl: API });

// ---- 2. axios, with the interceptors of clients/js/README.md ----------------------------
// The API's csrftoken cookie belongs to another origin: document.cookie cannot show it, so the
// token comes from the csrfToken field of /csrf, /login, ... answers.
const api = axios.create({ baseURL: API, withCredentials: true });
const SAFE = new Set(['get', 'head', 'options', 'trace']);
let csrfToken = null;

async function freshToken() {
  const res = await api.get(AUTH + '/csrf');
  return res.data.csrfToken; // also stored by the response interceptor below
}

api.interceptors.request.use(async (config) => {
  if (!SAFE.has((config.method ?? 'get').toLowerCase())) {
    csrfToken ??= await freshToken();
    config.headers.set('X-CSRFToken', csrfToken);
  }
  return config;
});

api.interceptors.response.use(
  (res) => {
    if (res.data && typeof res.data.csrfToken === 'string') csrfToken = res.data.csrfToken;
    return res;
  },
  async (error) => {
    const { config, response } = error;
    if (response?.status === 403 && response.data?.code === 'csrf_failed' && config && !config._csrfRetry) {
      config._csrfRetry = true; // retry once
      csrfToken = await freshToken();
      return api.request(config); // the request interceptor sets the new header
    }
    throw error;
  },
);

// ---- what the tests call ------------------------------------------------------------------
function describe(e) {
  if (e && e.isAxiosError) {
    const data = e.response?.data;
    return {
      name: 'AxiosError',
      status: e.response?.status ?? 0,
      code: data?.code ?? null,
      detail: data?.detail ?? null,
      message: e.message,
      axiosCode: e.code ?? null,
    };
  }
  return { name: e?.name ?? 'Error', status: e?.status ?? 0, code: e?.code ?? null, reason: e?.reason ?? null, detail: e?.problem?.detail ?? null, message: String(e?.message ?? e) };
}

async function attempt(fn) {
  try {
    return { ok: true, value: await fn() };
  } catch (e) {
    return { ok: false, error: describe(e) };
  }
}

async function responseOf(res) {
  const text = await res.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body, text };
}

window.spa = {
  API,
  client: {
    login: (u, p) => attempt(async () => (await client.login(u, p)).user.username),
    session: () => attempt(async () => (await client.session())?.user.username ?? null),
    get: (p) => attempt(async () => responseOf(await client.fetch(p))),
    post: (p, json) =>
      attempt(async () =>
        responseOf(await client.fetch(p, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(json) })),
      ),
    logout: () => attempt(async () => { await client.logout(); return 'logged out'; }),
    sessions: () => attempt(async () => (await client.sessions()).map((s) => s.id).sort()),
    registerPasskey: (name) => attempt(async () => (await client.registerPasskey({ name })).name),
    loginWithPasskey: () => attempt(async () => (await client.loginWithPasskey()).user.username),
    passkeys: () => attempt(async () => (await client.passkeys()).map((k) => k.name)),
    methods: () => attempt(async () => (await client.session()).session.authenticationMethods.map((m) => m.method)),
  },
  axios: {
    login: (u, p) => attempt(async () => (await api.post(AUTH + '/login', { username: u, password: p })).data.user.username),
    session: () =>
      attempt(async () => {
        try {
          return (await api.get(AUTH + '/session')).data.user.username;
        } catch (e) {
          if (e.response?.status === 401) return null;
          throw e;
        }
      }),
    get: (p) => attempt(async () => {
      const res = await api.get(p, { validateStatus: () => true });
      return { status: res.status, body: res.data };
    }),
    post: (p, json) => attempt(async () => {
      const res = await api.post(p, json, { validateStatus: (s) => s !== 403 });
      return { status: res.status, body: res.data };
    }),
    logout: () => attempt(async () => { await api.post(AUTH + '/logout'); return 'logged out'; }),
  },
};
document.getElementById('status').textContent = 'ready';
`;

// The hostile page: `window.attack` tries to read the user's data and to log them out or revoke
// their other sessions, from an origin no allowlist names. Every attempt reports what the page
// could see.
const HOSTILE_HTML = `<!doctype html>
<meta charset="utf-8">
<title>You won a prize</title>
<h1>Claim your prize</h1>
<iframe name="sink1"></iframe>
<iframe name="sink2"></iframe>
<script>
  const API = new URLSearchParams(location.search).get('api');
  async function tryFetch(path, init) {
    try {
      const res = await fetch(API + path, { credentials: 'include', ...init });
      let text = null;
      try { text = await res.text(); } catch (e) { text = String(e); }
      return { ok: true, type: res.type, status: res.status, text };
    } catch (e) {
      return { ok: false, error: e.name + ': ' + e.message };
    }
  }
  function postForm(path, target, fields) {
    const f = document.createElement('form');
    f.method = 'POST';
    f.action = API + path;
    f.target = target;
    for (const [k, v] of Object.entries(fields)) {
      const i = document.createElement('input');
      i.name = k;
      i.value = v;
      f.appendChild(i);
    }
    document.body.appendChild(f);
    f.submit();
  }
  window.attack = async () => ({
    // 1. Reading: CORS mode with credentials; the gateway sends no Access-Control-Allow-Origin.
    readSession: await tryFetch('/api/auth/session'),
    readApi: await tryFetch('/api/echo'),
    readCsrf: await tryFetch('/api/auth/csrf'),
    // 2. A JSON POST needs a preflight, which fails: the POST is never sent.
    jsonLogout: await tryFetch('/api/auth/logout', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-CSRFToken': 'a'.repeat(64) },
      body: '{}',
    }),
    // 3. "Simple" requests are sent without a preflight (the browser only hides the answer).
    noCorsLogout: await tryFetch('/api/auth/logout', { method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' }, body: '{}' }),
    noCorsRevoke: await tryFetch('/api/auth/sessions/revoke-others', { method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' }, body: '{}' }),
  });
  // 4. Classic CSRF: forms posted into iframes.
  window.postForms = () => {
    postForm('/api/auth/logout', 'sink1', { next: '/' });
    postForm('/api/auth/sessions/revoke-others', 'sink2', { csrfmiddlewaretoken: 'a'.repeat(64) });
  };
  document.title = 'ready';
</script>
`;

/** The SPA's files: the page, its code, the JS client and axios's browser ES module. */
export async function spaPages() {
  return {
    '/': SPA_HTML,
    '/app.js': { type: 'text/javascript; charset=utf-8', body: APP_JS },
    '/client.js': {
      type: 'text/javascript; charset=utf-8',
      body: await fs.readFile(path.join(REPO, 'clients', 'js', 'index.js'), 'utf8'),
    },
    '/axios.js': {
      type: 'text/javascript; charset=utf-8',
      body: await fs.readFile(path.join(REPO, 'tests', 'e2e', 'node_modules', 'axios', 'dist', 'esm', 'axios.js'), 'utf8'),
    },
  };
}

/** The gateway configurations of the matrix (see the top of this file). */
function gatewayToml(kind, origins, upstream) {
  const allowed = { same: [origins.appSame], cross: [origins.appSame, origins.appOther], chips: [origins.appOther] }[kind];
  const lines = ['[spa]', 'dir = "off"', ''];
  lines.push('[[routes]]', 'prefix = "/api/"', `upstream = ${q(upstream)}`, 'auth = "required"', '');
  lines.push('[cors]', `allowed_origins = [${allowed.map(q).join(', ')}]`, '');
  // Rate limits are not what these tests are about (every login comes from 127.0.0.1).
  lines.push('[rate_limit]', 'login_per_ip = "1000/1m"', 'login_per_account = "1000/1m"', '');
  if (kind === 'chips') lines.push('[cookies]', 'partitioned = true', 'host_prefix = true', '');
  return lines.join('\n');
}

/**
 * Start the whole cross-origin setup. `gateways` picks which of 'same', 'cross', 'chips' to run.
 * Returns { cert, echo, origins, statics, gw: { same?, cross?, chips? }, services(), stop() };
 * each gateway has `publicUrl` (https://api.example.test:PORT) and `stderr()`.
 */
export async function startCrossOrigin({ gateways = ['same', 'cross', 'chips'] } = {}) {
  const started = [];
  const stop = async () => {
    for (const s of started.reverse()) await s.stop().catch(() => {});
  };
  try {
    const cert = await devCert(HOSTS);
    started.push(cert);
    const echo = await startEcho();
    started.push(echo);

    const pages = await spaPages();
    const statics = {};
    const origins = {};
    for (const [key, host, name, p] of [
      ['appSame', 'app.example.test', 'SPA (same-site)', pages],
      ['appOther', 'app.other.test', 'SPA (cross-site)', pages],
      ['evilOther', 'evil.other.test', 'hostile page', { '/': HOSTILE_HTML }],
      ['evilSibling', 'evil.example.test', 'hostile sibling page', { '/': HOSTILE_HTML }],
    ]) {
      const s = await startStatic(p, { tls: cert, name: `${name} ${host}` });
      started.push(s);
      statics[key] = s;
      origins[key] = `https://${host}:${s.port}`;
    }

    const gw = {};
    for (const kind of gateways) {
      const port = await freePort();
      const publicUrl = `https://api.example.test:${port}`;
      const g = await startGateway({
        port,
        mode: 'cross-origin',
        publicUrl,
        tls: { cert: cert.cert, key: cert.key, caPem: cert.caPem },
        users: [{ name: USER, password: PASSWORD, email: EMAIL }],
        toml: gatewayToml(kind, origins, echo.url),
      });
      g.name = `sessiongate (${kind})`;
      g.publicUrl = publicUrl;
      g.stderr = g.proc.stderr;
      started.push(g);
      gw[kind] = g;
    }
    return {
      cert,
      echo,
      origins,
      statics,
      gw,
      services: () => [...Object.values(gw), echo, ...Object.values(statics)],
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Call `window.spa[kind][op](...args)` in the page (kind: 'client' | 'axios'). */
export function spaCall(page, kind, op, ...args) {
  return page.evaluate(([kind, op, args]) => window.spa[kind][op](...args), [kind, op, args]);
}

/** Open the SPA at `spaOrigin`, talking to `gateway`, and wait until its module ran. */
export async function openSpa(page, spaOrigin, gateway) {
  await page.goto(`${spaOrigin}/?api=${encodeURIComponent(gateway.publicUrl)}`);
  await page.locator('#status', { hasText: 'ready' }).waitFor();
}

// Test harness for the end-to-end tests: real sessiongate (the debug binary cargo built), a tiny
// node upstream that echoes what it received, real nginx with the repo's deploy/ config, and
// Debian's Chromium driven by playwright-core. No dependencies beyond playwright-core.
//
// Every process started here is stopped by its `stop()` and, whatever happens, killed when the
// test process exits. Temp dirs are removed on stop unless E2E_KEEP=1.
//
// Environment:
//   CARGO_TARGET_DIR       where cargo built sessiongate (default ~/.cache/sessiongate-target)
//   E2E_SESSIONGATE_BIN    explicit path of the sessiongate binary (overrides the above)
//   E2E_CHROMIUM           browser executable (default /usr/bin/chromium)
//   E2E_NGINX              nginx executable (default: `nginx` on PATH, else /usr/sbin/nginx)
//   E2E_KEEP=1             keep temp dirs (configs, data, nginx logs) for debugging
//
// HTTPS with real hostnames (the cross-origin matrix): `devCert()` makes a CA and a server
// certificate with `sessiongate dev-cert`; `startGateway({ tls })` and `startStatic(pages, { tls })`
// serve HTTPS with it on 127.0.0.1; `launchBrowser({ args: hostArgs(cert) })` maps the test
// hostnames (*.example.test, *.other.test) to 127.0.0.1 and trusts the certificate by its SPKI hash.
//
// SESSIONGATE_* variables are never passed to the processes started here: sessiongate reads
// them as configuration and refuses unknown keys.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const TARGET_DIR = path.resolve(REPO, process.env.CARGO_TARGET_DIR || path.join(os.homedir(), '.cache', 'sessiongate-target'));
export const BIN = process.env.E2E_SESSIONGATE_BIN || path.join(TARGET_DIR, 'debug', 'sessiongate');
export const CHROMIUM = process.env.E2E_CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** Cheap hashing: tests log in often, and Argon2's strength is not what they test. */
export const CHEAP_ARGON2 = 'argon2 = { memory_kib = 1024, iterations = 1, parallelism = 1 }';

const KEEP = process.env.E2E_KEEP === '1';
const live = new Set(); // child processes still running

process.on('exit', () => {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => process.exit(130));
}

// ---- small utilities -------------------------------------------------------------------------

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export async function tempDir(prefix) {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  // nginx workers run as an unprivileged user when the master runs as root: let them read.
  await fsp.chmod(dir, 0o755);
  return dir;
}

async function removeDir(dir) {
  if (!KEEP) await fsp.rm(dir, { recursive: true, force: true }).catch(() => {});
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** process.env without SESSIONGATE_* (sessiongate would read them as config keys). */
export function childEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SESSIONGATE_')) env[k] = v;
  return { RUST_LOG: 'info', ...env, ...extra };
}

/** TOML basic string. */
export const q = (s) => JSON.stringify(String(s));

/**
 * Start a long-running process; its output is kept (the last 400 lines) for diagnostics.
 * Returns { child, name, output(), stderr(), exited, stop() }.
 */
export function startProcess(name, cmd, args, { env = childEnv(), cwd = REPO } = {}) {
  const child = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  const lines = [];
  const errLines = []; // stderr alone (the first 400 lines: start-up messages live there)
  const keep = (chunk, err) => {
    for (const line of String(chunk).split('\n')) {
      if (!line) continue;
      lines.push(line);
      if (lines.length > 400) lines.shift();
      if (err && errLines.length < 400) errLines.push(line);
    }
  };
  child.stdout.on('data', (c) => keep(c, false));
  child.stderr.on('data', (c) => keep(c, true));
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
    child.on('error', (err) => {
      live.delete(child);
      lines.push(`spawn error: ${err.message}`);
      resolve({ code: null, signal: null, error: err });
    });
  });
  let done = false;
  child.on('exit', () => (done = true));
  return {
    child,
    name,
    exited,
    get running() {
      return !done;
    },
    output: () => lines.join('\n'),
    /** What the process wrote to stderr, without ANSI colours. */
    stderr: () => errLines.join('\n').replace(/\x1b\[[0-9;]*m/g, ''),
    async stop(signal = 'SIGTERM') {
      if (done) return exited;
      child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
  };
}

/**
 * Poll `url` until it answers (any HTTP status), the process dies, or `ms` pass.
 * `tls` ({ ca, servername }) checks an https URL against the dev CA (see `httpsGet`).
 */
export async function waitForHttp(url, proc, ms = 30000, tls = null) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    if (proc && !proc.running) {
      throw new Error(`${proc.name} exited before answering ${url}:\n${proc.output()}`);
    }
    try {
      if (tls) return await httpsGet(url, tls);
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      return res;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error(`${url} did not answer within ${ms} ms (${last?.cause?.code ?? last?.message})${proc ? `:\n${proc.output()}` : ''}`);
}

/**
 * GET an https URL on 127.0.0.1 the way a browser reaching `servername` would, verifying the
 * certificate against `ca` (PEM). Resolves to { status, headers, text }.
 */
export function httpsGet(url, { ca, servername, headers = {} }) {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, servername, headers, timeout: 2000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Run a command to completion; throws with its output when it fails. */
export function run(cmd, args, { input, env = childEnv(), cwd = REPO } = {}) {
  const r = spawnSync(cmd, args, { input, env, cwd, encoding: 'utf8', timeout: 60000 });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  }
  return r.stdout;
}

/** Add the recent output of `services` to any error `fn` throws (what the servers said). */
export async function withLogs(services, fn) {
  try {
    return await fn();
  } catch (e) {
    const logs = services
      .filter(Boolean)
      .map((s) => `---- ${s.name} (last lines) ----\n${(s.output?.() ?? '').split('\n').slice(-40).join('\n')}`)
      .join('\n');
    if (e && typeof e === 'object' && logs) {
      try {
        e.message = `${e.message}\n${logs}`;
      } catch {
        // some errors have read-only messages
      }
    }
    throw e;
  }
}

// ---- HTTPS: a development CA ----------------------------------------------------------------

/**
 * `sessiongate dev-cert --host … --out TMP`: a CA and one server certificate for every host.
 * Returns { dir, cert, key, ca (paths), certPem, keyPem, caPem, spki, hosts, printed, stop() }; `spki` is
 * the base64 SHA-256 of the server key's SubjectPublicKeyInfo, read from the command's output
 * (what Chromium's --ignore-certificate-errors-spki-list takes).
 */
export async function devCert(hosts) {
  if (!fs.existsSync(BIN)) {
    throw new Error(`sessiongate binary not found at ${BIN}: run \`cargo build --bins\` (CARGO_TARGET_DIR=${TARGET_DIR})`);
  }
  const dir = await tempDir('sg-devcert-');
  const out = run(BIN, ['dev-cert', ...hosts.flatMap((h) => ['--host', h]), '--out', dir]);
  const m = out.match(/--ignore-certificate-errors-spki-list=([A-Za-z0-9+/=]+)/);
  if (!m) throw new Error(`sessiongate dev-cert printed no SPKI hash:\n${out}`);
  const files = { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem'), ca: path.join(dir, 'ca.pem') };
  return {
    dir,
    ...files,
    certPem: await fsp.readFile(files.cert, 'utf8'),
    keyPem: await fsp.readFile(files.key, 'utf8'),
    caPem: await fsp.readFile(files.ca, 'utf8'),
    spki: m[1],
    hosts,
    printed: out, // what the command printed
    stop: () => removeDir(dir),
  };
}

// ---- sessiongate -----------------------------------------------------------------------------

/**
 * Start sessiongate with a generated config and a temp data dir.
 *
 * options:
 *   port        listen port (default: a free one); listens on 127.0.0.1
 *   publicUrl   public_url (default: empty, i.e. http://127.0.0.1:PORT)
 *   routes      ['/api/=http://127.0.0.1:9000', ...] passed as --route
 *   spa         --spa value ('off', a directory); default: the built-in demo
 *   users       [{ name, password, email? }] created with `user add --password-stdin` first
 *   toml        extra TOML appended to the config (sections only)
 *   trustedProxies  server.trusted_proxies
 *   mode        top-level `mode` ("same-origin" | "cross-origin")
 *   tls         { cert, key, caPem, servername }: serve HTTPS with these PEM files (server.tls_cert,
 *               server.tls_key); the health check verifies the certificate against caPem for
 *               `servername` (default: the host of publicUrl), and `url` is https://127.0.0.1:PORT
 */
export async function startGateway(options = {}) {
  if (!fs.existsSync(BIN)) {
    throw new Error(`sessiongate binary not found at ${BIN}: run \`cargo build --bins\` (CARGO_TARGET_DIR=${TARGET_DIR})`);
  }
  const dir = await tempDir('sg-gateway-');
  const port = options.port ?? (await freePort());
  const listen = `127.0.0.1:${port}`;
  const config = path.join(dir, 'sessiongate.toml');
  const lines = [`data_dir = ${q(path.join(dir, 'data'))}`];
  if (options.mode) lines.push(`mode = ${q(options.mode)}`);
  if (options.publicUrl) lines.push(`public_url = ${q(options.publicUrl)}`);
  lines.push('', '[server]', `listen = ${q(listen)}`);
  if (options.tls) lines.push(`tls_cert = ${q(options.tls.cert)}`, `tls_key = ${q(options.tls.key)}`);
  if (options.trustedProxies) lines.push(`trusted_proxies = [${options.trustedProxies.map(q).join(', ')}]`);
  // options.auth: extra `key = value` lines for [auth] (e.g. 'reauth_window = "2s"').
  lines.push('', '[auth]', 'bootstrap_admin = false', ...(options.auth ?? []), '', '[users]', CHEAP_ARGON2, '');
  if (options.toml) lines.push(options.toml, '');
  await fsp.writeFile(config, lines.join('\n'));

  const cli = (args, input) => run(BIN, ['-c', config, ...args], { input });
  for (const u of options.users ?? []) {
    cli(['user', 'add', u.name, ...(u.email ? ['--email', u.email] : []), '--password-stdin'], `${u.password}\n`);
  }

  const args = ['-c', config, 'serve'];
  for (const r of options.routes ?? []) args.push('--route', r);
  if (options.spa) args.push('--spa', options.spa);
  const proc = startProcess('sessiongate', BIN, args);
  const url = `${options.tls ? 'https' : 'http'}://${listen}`;
  const tlsCheck = options.tls
    ? {
        ca: options.tls.caPem,
        servername: options.tls.servername ?? (options.publicUrl ? new URL(options.publicUrl).hostname : undefined),
      }
    : null;
  try {
    await waitForHttp(`${url}/healthz`, proc, 30000, tlsCheck);
  } catch (e) {
    await proc.stop();
    throw e;
  }
  return {
    name: 'sessiongate',
    url,
    port,
    dir,
    config,
    cli,
    output: proc.output,
    proc,
    async stop() {
      await proc.stop();
      await removeDir(dir);
    },
  };
}

// ---- node servers ----------------------------------------------------------------------------

function listen(server, port = 0) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server.address().port));
  });
}

function closeServer(server) {
  return new Promise((resolve) => {
    server.closeAllConnections?.();
    server.close(() => resolve());
  });
}

/**
 * The upstream "backend": answers every request with JSON describing what it received
 * ({ method, path, headers, rawHeaders, body }). `requests` records them all.
 * `summary: true` answers with only the identity headers and the cookie names (screenshots).
 */
export async function startEcho({ summary = false } = {}) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const seen = {
        method: req.method,
        path: req.url,
        headers: req.headers,
        rawHeaders: pairs(req.rawHeaders),
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(seen);
      const body = summary
        ? JSON.stringify({
            method: req.method,
            path: req.url,
            identity: Object.fromEntries(Object.entries(req.headers).filter(([k]) => k.startsWith('x-auth-'))),
            cookies: (req.headers.cookie ?? '').split(/;\s*/).filter(Boolean).map((c) => c.split('=')[0]),
          })
        : JSON.stringify({ ok: true, user: req.headers['x-auth-user'] ?? null, ...seen });
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(body);
    });
  });
  const port = await listen(server);
  return {
    name: 'echo upstream',
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    output: () => requests.map((r) => `${r.method} ${r.path} x-auth-user=${r.headers['x-auth-user'] ?? '-'}`).join('\n'),
    stop: () => closeServer(server),
  };
}

function pairs(raw) {
  const out = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i], raw[i + 1]]);
  return out;
}

/**
 * A static server for fixed pages: `pages` maps a path to { type, body } (or a string: HTML).
 * Listens on 127.0.0.1; reach it as http://localhost:PORT to be another site than 127.0.0.1.
 * `options.tls` ({ certPem, keyPem }, e.g. a `devCert()`) serves HTTPS instead (`scheme` says
 * which); reach it by any hostname the certificate names (`hostArgs` maps them to 127.0.0.1).
 * `options.port`: listen there (default: a free port); `pages` may be filled in after the start.
 */
export async function startStatic(pages, options = {}) {
  const hits = [];
  const handler = (req, res) => {
    const p = new URL(req.url, 'http://x').pathname;
    hits.push(`${req.method} ${p}`);
    const page = pages[p];
    if (!page) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
      return;
    }
    const { type, body } = typeof page === 'string' ? { type: 'text/html; charset=utf-8', body: page } : page;
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(body);
  };
  const server = options.tls
    ? https.createServer({ cert: options.tls.certPem, key: options.tls.keyPem }, handler)
    : http.createServer(handler);
  const port = await listen(server, options.port ?? 0);
  return {
    name: options.name ?? 'static server',
    port,
    scheme: options.tls ? 'https' : 'http',
    hits,
    output: () => hits.join('\n'),
    stop: () => closeServer(server),
  };
}

// ---- nginx -----------------------------------------------------------------------------------

export function nginxBinary() {
  if (process.env.E2E_NGINX) return process.env.E2E_NGINX;
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/local/sbin'])) {
    const p = path.join(dir || '.', 'nginx');
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  throw new Error('nginx not found (scripts/test installs Debian\'s nginx; or set E2E_NGINX)');
}

/** deploy/nginx/sessiongate.conf with its placeholders replaced. */
export async function renderNginxConf(values) {
  let text = await fsp.readFile(path.join(REPO, 'deploy', 'nginx', 'sessiongate.conf'), 'utf8');
  for (const [k, v] of Object.entries(values)) text = text.replaceAll(`{{${k}}}`, v);
  const left = text.match(/\{\{[A-Z_]+\}\}/);
  if (left) throw new Error(`deploy/nginx/sessiongate.conf: placeholder ${left[0]} was not given a value`);
  return text;
}

/**
 * A directory with the demo SPA as static files: demo/ plus the JS client at
 * _sessiongate/client.js (where the built-in demo finds it).
 */
export async function demoSpaDir() {
  const dir = await tempDir('sg-spa-');
  await fsp.cp(path.join(REPO, 'demo'), dir, { recursive: true });
  await fsp.mkdir(path.join(dir, '_sessiongate'), { recursive: true });
  await fsp.copyFile(path.join(REPO, 'clients', 'js', 'index.js'), path.join(dir, '_sessiongate', 'client.js'));
  await chmodTree(dir);
  return { dir, stop: () => removeDir(dir) };
}

async function chmodTree(dir) {
  await fsp.chmod(dir, 0o755);
  for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await chmodTree(p);
    else await fsp.chmod(p, 0o644);
  }
}

/**
 * Run nginx (in the foreground, under a temp prefix) with the templated deploy config.
 * options: { port, spaDir, gateway: 'host:port', backend: 'host:port' }
 */
export async function startNginx({ port, spaDir, gateway, backend }) {
  const bin = nginxBinary();
  const dir = await tempDir('sg-nginx-');
  port ??= await freePort();
  const site = await renderNginxConf({ LISTEN: `127.0.0.1:${port}`, SPA_DIR: spaDir, GATEWAY: gateway, BACKEND: backend });
  await fsp.writeFile(path.join(dir, 'sessiongate.conf'), site);
  const mime = ['/etc/nginx/mime.types'].find((p) => fs.existsSync(p));
  const conf = [
    'worker_processes 1;',
    'events { worker_connections 256; }',
    'http {',
    mime ? `    include ${mime};` : '    types { text/html html; application/javascript js mjs; text/css css; image/svg+xml svg; }',
    '    default_type application/octet-stream;',
    `    access_log ${dir}/access.log;`,
    `    client_body_temp_path ${dir}/client_body;`,
    `    proxy_temp_path ${dir}/proxy;`,
    `    fastcgi_temp_path ${dir}/fastcgi;`,
    `    uwsgi_temp_path ${dir}/uwsgi;`,
    `    scgi_temp_path ${dir}/scgi;`,
    `    include ${dir}/sessiongate.conf;`,
    '}',
    '',
  ].join('\n');
  const confPath = path.join(dir, 'nginx.conf');
  await fsp.writeFile(confPath, conf);
  const global = `daemon off; master_process on; pid ${dir}/nginx.pid; error_log stderr notice;`;
  // Syntax check first: a clear message when the deploy config is broken.
  run(bin, ['-e', 'stderr', '-p', `${dir}/`, '-c', confPath, '-g', global, '-t']);
  const proc = startProcess('nginx', bin, ['-e', 'stderr', '-p', `${dir}/`, '-c', confPath, '-g', global]);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}/`, proc);
  } catch (e) {
    await proc.stop();
    throw e;
  }
  return {
    name: 'nginx',
    url,
    port,
    dir,
    output: () => {
      let access = '';
      try {
        access = fs.readFileSync(path.join(dir, 'access.log'), 'utf8').split('\n').slice(-20).join('\n');
      } catch {
        // none yet
      }
      return `${proc.output()}\n-- access.log --\n${access}`;
    },
    async stop() {
      await proc.stop('SIGQUIT');
      await removeDir(dir);
    },
  };
}

// ---- Chromium --------------------------------------------------------------------------------

/**
 * Debian's Chromium via playwright-core (never a downloaded browser).
 * `options.args` are added to CHROMIUM_ARGS (e.g. `hostArgs(cert)`).
 */
export async function launchBrowser(options = {}) {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: scripts/test installs Debian's chromium (or set E2E_CHROMIUM)`);
  }
  const { chromium } = await import('playwright-core');
  const args = [...CHROMIUM_ARGS, ...(options.args ?? [])];
  return chromium.launch({ executablePath: CHROMIUM, args, headless: true, timeout: 60000 });
}

/** The test hostnames: every *.example.test and *.other.test name resolves to 127.0.0.1. */
export const HOST_RESOLVER_RULES = 'MAP *.example.test 127.0.0.1, MAP *.other.test 127.0.0.1';

/**
 * Chromium flags for the HTTPS matrix: resolve the test hostnames to 127.0.0.1 and accept the
 * dev certificate (`devCert()`) by its SPKI hash, as `sessiongate dev-cert` suggests.
 */
export function hostArgs(cert) {
  return [`--host-resolver-rules=${HOST_RESOLVER_RULES}`, `--ignore-certificate-errors-spki-list=${cert.spki}`];
}

/**
 * Chromium's third-party cookie setting: the profile preference `profile.cookie_controls_mode`
 * (chrome://settings/cookies). 0 = allow third-party cookies, 1 = block them, 2 = block them in
 * incognito only. Debian's Chromium 156 in headless mode blocks them by default (a fresh profile
 * behaves as 1, and the off-the-record contexts of `browser.newContext()` always block them).
 * The command-line switches of the 2024 "phase-out" experiment (`--test-third-party-cookie-phaseout`,
 * `--enable-features=TrackingProtection3pcd`) no longer change anything in this version.
 */
export const THIRD_PARTY_COOKIES = { allow: 0, block: 1, blockInIncognito: 2 };

/**
 * Chromium with a real (persistent, temporary) profile whose third-party cookie setting is
 * `thirdPartyCookies` ('allow' | 'block' | 'blockInIncognito'), written to its Preferences before
 * the start ('default': no preference written, the build's default). Returns the BrowserContext (one per profile: cookies are the profile's); its
 * `close()` stops the browser and removes the profile.
 */
export async function launchProfile({ thirdPartyCookies = 'block', args = [] } = {}) {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: scripts/test installs Debian's chromium (or set E2E_CHROMIUM)`);
  }
  const mode = THIRD_PARTY_COOKIES[thirdPartyCookies];
  if (mode === undefined && thirdPartyCookies !== 'default') throw new Error(`thirdPartyCookies: ${thirdPartyCookies}?`);
  const dir = await tempDir('sg-profile-');
  if (mode !== undefined) {
    await fsp.mkdir(path.join(dir, 'Default'), { recursive: true });
    await fsp.writeFile(path.join(dir, 'Default', 'Preferences'), JSON.stringify({ profile: { cookie_controls_mode: mode } }));
  }
  const { chromium } = await import('playwright-core');
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    args: [...CHROMIUM_ARGS, ...args],
    headless: true,
    timeout: 60000,
    viewport: { width: 1000, height: 800 },
  });
  context.setDefaultTimeout(15000);
  context.setDefaultNavigationTimeout(20000);
  const close = context.close.bind(context);
  context.close = async () => {
    await close().catch(() => {});
    await removeDir(dir);
  };
  return context;
}

/**
 * A page of `context` with Chromium's DevTools virtual authenticator: a platform authenticator
 * (CTAP2, internal) with resident keys and user verification. `presence: false` leaves requests
 * waiting, as for a user who has not touched anything yet (`presenceOn(true)` answers them).
 */
export async function pageWithAuthenticator(context, { presence = true } = {}) {
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: presence,
    },
  });
  const presenceOn = (on) => cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled: on });
  const credentials = async () => (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials;
  return { page, cdp, authenticatorId, presenceOn, credentials };
}

/** A fresh browser context (own cookies, storage) with sane timeouts. */
export async function newContext(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 800 }, ...options });
  context.setDefaultTimeout(15000);
  context.setDefaultNavigationTimeout(20000);
  return context;
}

/** Log in through the demo SPA's form (page already at the SPA) and wait for the app view. */
export async function demoLogin(page, username, password) {
  await page.locator('#login-view').waitFor({ state: 'visible' });
  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.click('#login-button');
  await page.locator('#app-view').waitFor({ state: 'visible' });
  await page.locator('#whoami-username', { hasText: username }).waitFor();
}

/** Click the demo's "Call /api/echo" and return { status, json } from #api-result. */
export async function demoCallApi(page) {
  await page.evaluate(() => {
    const el = document.getElementById('api-result');
    el.textContent = '';
    el.hidden = true;
  });
  await page.click('#call-api-button');
  const result = page.locator('#api-result');
  await result.waitFor({ state: 'visible' });
  const text = await result.textContent();
  const status = Number(text.split(/\s/, 1)[0]);
  const body = text.slice(text.indexOf('\n\n') + 2);
  let json = null;
  try {
    json = JSON.parse(body);
  } catch {
    // not JSON
  }
  return { status, json, text };
}

/**
 * Run `fetch` inside the page (same origin as the page) and return { status, headers, json, text }.
 * `init.csrf = true` adds X-CSRFToken read from document.cookie, as axios does with
 * xsrfCookieName 'csrftoken' / xsrfHeaderName 'X-CSRFToken'.
 */
export function pageFetch(page, url, init = {}) {
  return page.evaluate(
    async ({ url, init }) => {
      const headers = new Headers(init.headers || {});
      if (init.csrf) {
        const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]*)/);
        if (m) headers.set('X-CSRFToken', decodeURIComponent(m[1]));
      }
      if (init.json !== undefined) {
        headers.set('Content-Type', 'application/json');
        init.body = JSON.stringify(init.json);
      }
      const res = await fetch(url, { method: init.method || 'GET', headers, body: init.body, credentials: 'same-origin' });
      const text = await res.text();
      let json = null;
      try {
        json = JSON.parse(text);
      } catch {
        // not JSON
      }
      return { status: res.status, headers: Object.fromEntries(res.headers), json, text };
    },
    { url, init },
  );
}

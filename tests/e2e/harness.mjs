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
// SESSIONGATE_* variables are never passed to the processes started here: sessiongate reads
// them as configuration and refuses unknown keys.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
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
 * Returns { child, name, output(), exited, stop() }.
 */
export function startProcess(name, cmd, args, { env = childEnv(), cwd = REPO } = {}) {
  const child = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  const lines = [];
  const keep = (chunk) => {
    for (const line of String(chunk).split('\n')) {
      if (!line) continue;
      lines.push(line);
      if (lines.length > 400) lines.shift();
    }
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
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

/** Poll `url` until it answers (any HTTP status), the process dies, or `ms` pass. */
export async function waitForHttp(url, proc, ms = 30000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    if (proc && !proc.running) {
      throw new Error(`${proc.name} exited before answering ${url}:\n${proc.output()}`);
    }
    try {
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
  if (options.publicUrl) lines.push(`public_url = ${q(options.publicUrl)}`);
  lines.push('', '[server]', `listen = ${q(listen)}`);
  if (options.trustedProxies) lines.push(`trusted_proxies = [${options.trustedProxies.map(q).join(', ')}]`);
  lines.push('', '[auth]', 'bootstrap_admin = false', '', '[users]', CHEAP_ARGON2, '');
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
  const url = `http://${listen}`;
  try {
    await waitForHttp(`${url}/healthz`, proc);
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
 */
export async function startStatic(pages) {
  const hits = [];
  const server = http.createServer((req, res) => {
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
  });
  const port = await listen(server);
  return { name: 'static server', port, hits, output: () => hits.join('\n'), stop: () => closeServer(server) };
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

/** Debian's Chromium via playwright-core (never a downloaded browser). */
export async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: scripts/test installs Debian's chromium (or set E2E_CHROMIUM)`);
  }
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, timeout: 60000 });
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

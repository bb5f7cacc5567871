#!/usr/bin/env node
// A real OpenID Connect provider (npm's oidc-provider) for sessiongate's "Sign in with …" tests.
// Test use only: in-memory state, development login/consent pages, fixed test accounts.
//
//   node tests/oidc/provider.mjs [--port N] [--issuer URL] [--clients FILE] [--jwks FILE]
//                                [--accounts FILE] [--admin-port M] [--conform-id-token-claims]
//
// Prints exactly one line on stdout once both servers listen:
//   {"issuer":"http://127.0.0.1:N","port":N,"admin_port":M}
// and logs everything else on stderr. --port 0 / --admin-port 0 pick free ports (read them
// from that line). See README.md beside this file.
import * as crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import { parseArgs } from 'node:util';

import { TestAdapter, listModel, revokeGrantEverywhere } from './adapter.mjs';

// oidc-provider prints its NOTICEs with console.info, i.e. on stdout; stdout is reserved for
// the ready line, so everything the library (or this script) logs goes to stderr.
console.info = console.error;
console.log = console.error;
if (process.env.NODE_ENV === 'production') {
  console.error('provider.mjs: NODE_ENV=production is not supported (development interactions); unsetting it');
  delete process.env.NODE_ENV;
}
const { default: Provider } = await import('oidc-provider');

const HELP = `usage: node provider.mjs [options]
  --port N                   provider port on 127.0.0.1 (default: $OIDC_PORT, else 0 = a free port)
  --issuer URL               issuer (default: http://127.0.0.1:PORT)
  --clients FILE             JSON array (or one object) of client metadata (default: the sessiongate-test client)
  --jwks FILE                JSON {"keys": [private JWKs]} signing keys (default: an RSA key made at start)
  --accounts FILE            JSON array of extra accounts {sub, email?, email_verified?, name?, preferred_username?}
  --admin-port M             the test admin API on 127.0.0.1:M (default: $OIDC_ADMIN_PORT, else none; 0 = a free port)
  --conform-id-token-claims  spec-strict ID tokens: scope claims (email, profile) only from userinfo
  -h, --help`;

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      port: { type: 'string' },
      issuer: { type: 'string' },
      clients: { type: 'string' },
      jwks: { type: 'string' },
      accounts: { type: 'string' },
      'admin-port': { type: 'string' },
      'conform-id-token-claims': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  }));
} catch (err) {
  console.error(`provider.mjs: ${err.message}\n${HELP}`);
  process.exit(2);
}
if (args.help) {
  process.stderr.write(`${HELP}\n`);
  process.exit(0);
}

function portArg(value, name) {
  if (value === undefined || value === '') return undefined;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`provider.mjs: ${name} must be a port number, got ${JSON.stringify(value)}`);
    process.exit(2);
  }
  return port;
}
function readJson(file, what) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    console.error(`provider.mjs: cannot read ${what} from ${file}: ${err.message}`);
    process.exit(2);
  }
}

const HOST = '127.0.0.1';
const port = portArg(args.port, '--port') ?? portArg(process.env.OIDC_PORT, 'OIDC_PORT') ?? 0;
const adminPort = portArg(args['admin-port'], '--admin-port') ?? portArg(process.env.OIDC_ADMIN_PORT, 'OIDC_ADMIN_PORT');

// --- test accounts --------------------------------------------------------------------------
const ACCOUNTS = new Map();
function addAccount(a) {
  if (!a || typeof a.sub !== 'string' || !a.sub) throw new Error('an account needs a string "sub"');
  ACCOUNTS.set(a.sub, { preferred_username: a.sub, ...a });
}
addAccount({ sub: 'alice', email: 'alice@example.com', email_verified: true, name: 'Alice Example' });
addAccount({ sub: 'bob', email: 'bob@example.com', email_verified: false, name: 'Bob Example' });
addAccount({ sub: 'carol', name: 'Carol Example' }); // no email at all
if (args.accounts) {
  const extra = readJson(args.accounts, 'accounts');
  for (const a of Array.isArray(extra) ? extra : [extra]) addAccount(a);
}

async function findAccount(_ctx, sub) {
  const account = ACCOUNTS.get(sub);
  if (!account) return undefined;
  return {
    accountId: sub,
    async claims() {
      return { ...account };
    },
  };
}

// --- clients ----------------------------------------------------------------------------------
const DEFAULT_CLIENT = {
  client_id: 'sessiongate-test',
  client_secret: 'sessiongate-test-secret',
  redirect_uris: ['http://localhost:8080/api/auth/oidc/test/callback'],
  token_endpoint_auth_method: 'client_secret_basic',
};
let clients = [DEFAULT_CLIENT];
if (args.clients) {
  const loaded = readJson(args.clients, 'clients');
  clients = Array.isArray(loaded) ? loaded : [loaded];
}

// --- signing keys -----------------------------------------------------------------------------
let jwks;
if (args.jwks) {
  jwks = readJson(args.jwks, 'jwks');
  if (!Array.isArray(jwks?.keys) || !jwks.keys.length) {
    console.error('provider.mjs: --jwks wants {"keys": [at least one private JWK]}');
    process.exit(2);
  }
} else {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  jwks = { keys: [{ ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: `test-${crypto.randomUUID()}` }] };
}

// --- the provider ------------------------------------------------------------------------------
const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, HOST, resolve);
});
const actualPort = server.address().port;
const issuer = args.issuer ?? `http://${HOST}:${actualPort}`;

const configuration = {
  adapter: TestAdapter,
  clients,
  jwks,
  findAccount,
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
  },
  scopes: ['openid', 'email', 'profile', 'offline_access'],
  // Like most public providers: the scope's claims are in the ID token of the code flow too.
  conformIdTokenClaims: args['conform-id-token-claims'],
  // Fixed cookie keys: signed cookies, and no "keys missing" surprises across restarts.
  cookies: { keys: ['sessiongate-oidc-test-cookie-key-1'] },
  pkce: { required: () => true }, // oidc-provider 9 only knows S256
  features: {
    devInteractions: { enabled: true },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    // Off: not needed by the tests, and each would add discovery metadata to reason about.
    dPoP: { enabled: false },
    resourceIndicators: { enabled: false },
  },
  clientDefaults: {
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  },
  ttl: {
    AccessToken: 600,
    AuthorizationCode: 60,
    IdToken: 600,
    Interaction: 600,
    Grant: 3600,
    Session: 3600,
    RefreshToken: 3600,
  },
  // oidc-provider's outgoing fetch (back-channel logout tokens, client jwks_uri, ...) refuses
  // special-use addresses, loopback included, as SSRF protection; the test clients' endpoints
  // are on 127.0.0.1, so loopback targets go out without that guard (and nothing else changes).
  fetch(url, options) {
    const { hostname } = new URL(url);
    if (hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname)) {
      delete options.dispatcher;
    }
    return globalThis.fetch(url, options);
  },
  async renderError(ctx, out) {
    ctx.type = 'json';
    ctx.body = out;
  },
};

let provider;
try {
  provider = new Provider(issuer, configuration);
} catch (err) {
  console.error(`provider.mjs: invalid configuration: ${err.message}`);
  if (err.error_description) console.error(`  ${err.error_description}`);
  process.exit(2);
}
// Static clients are only validated when first used; validate them all now, so that a bad
// clients file fails here (exit 2) and not at the first authorization request.
for (const { client_id: id } of clients) {
  try {
    await provider.Client.find(id);
  } catch (err) {
    console.error(`provider.mjs: invalid configuration: client ${JSON.stringify(id)}: ${err.message}${err.error_description ? ` (${err.error_description})` : ''}`);
    process.exit(2);
  }
}
provider.on('server_error', (_ctx, err) => console.error('oidc server_error:', err));
provider.on('backchannel.error', (_ctx, err, client, sub, sid) => console.error(`backchannel logout to ${client.clientId} (sub ${sub}, sid ${sid}) failed: ${err.message}`));
provider.on('backchannel.success', (_ctx, client, sub, sid) => console.error(`backchannel logout sent to ${client.clientId} (sub ${sub}, sid ${sid})`));
// devInteractions' login form takes any login; a login that is not a test account would then
// crash the consent check (server_error), so its result is dropped and the login page comes
// back, like a wrong password would.
provider.use(async (ctx, next) => {
  const resume = ctx.method === 'GET' ? /\/auth\/([\w-]+)$/.exec(ctx.path) : null;
  if (resume) {
    const interaction = await provider.Interaction.find(resume[1]);
    const accountId = interaction?.result?.login?.accountId;
    if (accountId !== undefined && !ACCOUNTS.has(accountId)) {
      console.error(`login ${JSON.stringify(accountId)} is no test account: the login page again`);
      delete interaction.result.login;
      await interaction.persist();
      ctx.status = 303;
      ctx.redirect(provider.pathFor('interaction', { uid: resume[1] }));
      return;
    }
  }
  await next();
});
// An issuer with a path (--issuer http://127.0.0.1:N/op) is served under that path: the provider
// expects to be mounted there (its routes are relative, its URLs include the path).
const mountPath = new URL(issuer).pathname.replace(/\/$/, '');
const callback = provider.callback();
server.on('request', (req, res) => {
  if (mountPath) {
    const rest = req.url.startsWith(mountPath) ? req.url.slice(mountPath.length) : null;
    if (rest === null || !(rest === '' || rest.startsWith('/') || rest.startsWith('?'))) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: the issuer is ${issuer}\n`);
      return;
    }
    req.originalUrl = req.url; // how oidc-provider finds its mount path (as under express)
    req.url = rest.startsWith('/') ? rest : `/${rest}`;
  }
  callback(req, res);
});

// --- the admin API (second port; nothing in the provider's own namespace) ------------------------
function sessions() {
  return listModel('Session')
    .filter(({ payload }) => payload.accountId)
    .map(({ id, payload }) => {
      const clientsOf = Object.entries(payload.authorizations ?? {}).map(([clientId, a]) => ({
        client_id: clientId,
        sid: a.sid ?? null,
        grant_id: a.grantId ?? null,
      }));
      return {
        session_id: id,
        sub: payload.accountId,
        login_ts: payload.loginTs ?? null,
        sids: clientsOf.map((c) => c.sid).filter(Boolean),
        clients: clientsOf,
      };
    });
}

async function deliver(clientId, sub, sid) {
  const client = await provider.Client.find(clientId);
  if (!client) return { client_id: clientId, sid, ok: false, error: 'unknown client' };
  if (!client.backchannelLogoutUri) return { client_id: clientId, sid, ok: false, error: 'client has no backchannel_logout_uri' };
  try {
    // The same call end_session's confirm step makes for each client of the session.
    await client.backchannelLogout(sub, sid);
    console.error(`backchannel logout sent to ${clientId} (sub ${sub}, sid ${sid}) via the admin API`);
    return { client_id: clientId, sid, ok: true };
  } catch (err) {
    console.error(`backchannel logout to ${clientId} (sub ${sub}, sid ${sid}) failed: ${err.message}`);
    return { client_id: clientId, sid, ok: false, error: err.message };
  }
}

// POST /logout-backchannel {sub, sid?, client_id?}: what end_session with logout=yes does for
// the matching sessions (every session of sub, or the one holding sid), without a browser:
// a logout token to each of the session's clients that registered a backchannel_logout_uri,
// then the session and its grants are gone. With client_id and no matching session, one token
// is sent anyway (for the client's "unknown session" handling).
async function logoutBackchannel(body) {
  const { sub, sid, client_id: onlyClient } = body ?? {};
  if (typeof sub !== 'string' || !sub) return [400, { error: 'sub (a string) is required' }];
  if (sid !== undefined && typeof sid !== 'string') return [400, { error: 'sid must be a string' }];
  const matching = sessions().filter((s) => s.sub === sub && (sid === undefined || s.sids.includes(sid)));
  if (!matching.length) {
    if (!onlyClient) return [404, { error: 'no matching session', sub, sid: sid ?? null }];
    return [200, { sessions_ended: 0, deliveries: [await deliver(onlyClient, sub, sid)] }];
  }
  const deliveries = [];
  for (const s of matching) {
    const targets = s.clients.filter((c) => onlyClient === undefined || c.client_id === onlyClient);
    deliveries.push(...(await Promise.all(targets.map((c) => deliver(c.client_id, sub, c.sid ?? undefined)))));
    for (const c of s.clients) if (c.grant_id) revokeGrantEverywhere(c.grant_id);
    const session = await provider.Session.find(s.session_id);
    if (session) await session.destroy();
  }
  return [200, { sessions_ended: matching.length, deliveries }];
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 65536) throw new Error('body too large');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

async function admin(req, res) {
  const send = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(`${JSON.stringify(body)}\n`);
  };
  try {
    const { pathname } = new URL(req.url, 'http://admin');
    if (req.method === 'GET' && pathname === '/sessions') return send(200, sessions());
    if (req.method === 'GET' && pathname === '/healthz') return send(200, { issuer });
    if (req.method === 'POST' && pathname === '/logout-backchannel') {
      let body;
      try {
        body = await readBody(req);
      } catch (err) {
        return send(400, { error: `bad JSON body: ${err.message}` });
      }
      const [status, out] = await logoutBackchannel(body);
      return send(status, out);
    }
    return send(404, { error: 'not found', routes: ['GET /sessions', 'POST /logout-backchannel', 'GET /healthz'] });
  } catch (err) {
    console.error('admin API error:', err);
    return send(500, { error: err.message });
  }
}

let adminServer;
if (adminPort !== undefined) {
  adminServer = http.createServer((req, res) => { admin(req, res); });
  await new Promise((resolve, reject) => {
    adminServer.once('error', reject);
    adminServer.listen(adminPort, HOST, resolve);
  });
}

function shutdown() {
  server.close();
  adminServer?.close();
  server.closeAllConnections?.();
  adminServer?.closeAllConnections?.();
  setTimeout(() => process.exit(0), 200).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

const ready = { issuer, port: actualPort };
if (adminServer) ready.admin_port = adminServer.address().port;
process.stdout.write(`${JSON.stringify(ready)}\n`);

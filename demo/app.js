// sessiongate demo SPA: plain ES module, no build step, CSP-friendly (no inline scripts or
// styles; views are switched with the `hidden` attribute, everything is built with DOM APIs).
import {
  createClient,
  SessiongateError,
  ReauthRequiredError,
  RateLimitedError,
} from '/_sessiongate/client.js';

const $ = (id) => document.getElementById(id);

const el = {
  boot: $('boot'),
  status: $('status'),
  cookieNames: $('cookie-names'),
  loginView: $('login-view'),
  loginForm: $('login-form'),
  username: $('username'),
  password: $('password'),
  remember: $('remember'),
  loginButton: $('login-button'),
  loginError: $('login-error'),
  mfaView: $('mfa-view'),
  mfaForm: $('mfa-form'),
  mfaCode: $('mfa-code'),
  mfaButton: $('mfa-button'),
  mfaCancel: $('mfa-cancel'),
  mfaError: $('mfa-error'),
  appView: $('app-view'),
  avatar: $('avatar'),
  whoamiUsername: $('whoami-username'),
  whoamiEmail: $('whoami-email'),
  logoutButton: $('logout-button'),
  sessionsList: $('sessions-list'),
  revokeOthersButton: $('revoke-others-button'),
  callApiButton: $('call-api-button'),
  apiResult: $('api-result'),
  passwordForm: $('password-form'),
  currentPassword: $('current-password'),
  newPassword: $('new-password'),
  passwordButton: $('password-button'),
  passwordMessage: $('password-message'),
};

const client = createClient({
  onUnauthenticated: () => {
    if (!el.appView.hidden) {
      showLogin();
      setStatus('Your session has ended. Please sign in again.', 'error');
    }
  },
});

// ---- small helpers --------------------------------------------------------------------------

let statusTimer = 0;
function setStatus(text, kind = 'info', ms = 6000) {
  clearTimeout(statusTimer);
  el.status.textContent = text;
  el.status.classList.toggle('error', kind === 'error');
  el.status.classList.toggle('success', kind === 'success');
  if (text && ms) statusTimer = setTimeout(() => setStatus(''), ms);
}

function showMessage(node, text, kind = 'error') {
  node.textContent = text;
  node.classList.toggle('error', kind === 'error');
  node.classList.toggle('success', kind === 'success');
  node.hidden = !text;
}

/** A human sentence for any error the client or fetch can throw. */
function describe(error) {
  if (error instanceof RateLimitedError) {
    const wait = error.retryAfter != null ? `${error.retryAfter} second${error.retryAfter === 1 ? '' : 's'}` : 'a moment';
    return `Too many attempts. Please wait ${wait} before trying again.`;
  }
  if (error instanceof SessiongateError) {
    const main = sentence(error.message || `Request failed (${error.status}).`);
    const fields = Object.values(error.errors)
      .filter((v) => typeof v === 'string' && v)
      .map(sentence)
      .filter((v) => v !== main);
    return [main, ...fields].join(' ');
  }
  if (error instanceof TypeError) return 'Could not reach the server. Check your connection and try again.';
  return error && error.message ? error.message : String(error);
}

/** "at least 8 characters" → "At least 8 characters." */
function sentence(text) {
  const t = String(text).trim();
  if (!t) return t;
  return t[0].toUpperCase() + t.slice(1) + (/[.!?…]$/.test(t) ? '' : '.');
}

/** Run an async handler; whatever it throws ends up on screen, never as an unhandled rejection. */
function on(node, event, handler) {
  node.addEventListener(event, (e) => {
    try {
      const r = handler(e);
      if (r && typeof r.then === 'function') r.catch(unexpected);
    } catch (err) {
      unexpected(err);
    }
  });
}

function unexpected(err) {
  console.error(err);
  setStatus(describe(err), 'error', 0);
}

window.addEventListener('unhandledrejection', (e) => {
  e.preventDefault();
  unexpected(e.reason);
});

async function busy(button, fn) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await fn();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

function refreshCookieNames() {
  const names = document.cookie
    .split(';')
    .map((part) => part.split('=')[0].trim())
    .filter(Boolean);
  el.cookieNames.textContent = names.length ? names.join(', ') : '(none)';
}

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
function relativeTime(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return 'unknown';
  const seconds = Math.round((t - Date.now()) / 1000);
  if (Math.abs(seconds) < 45) return 'just now';
  const units = [
    ['year', 31536000],
    ['month', 2592000],
    ['week', 604800],
    ['day', 86400],
    ['hour', 3600],
    ['minute', 60],
  ];
  for (const [unit, size] of units) {
    if (Math.abs(seconds) >= size) return rtf.format(Math.round(seconds / size), unit);
  }
  return rtf.format(Math.round(seconds / 60), 'minute');
}

/** "Firefox on Linux" from a user agent string; falls back to a shortened string. */
function shortUserAgent(ua) {
  if (!ua) return 'Unknown device';
  const browsers = [
    [/Edg(?:e|A|iOS)?\//, 'Edge'],
    [/OPR\/|Opera/, 'Opera'],
    [/SamsungBrowser\//, 'Samsung Internet'],
    [/Firefox\/|FxiOS\//, 'Firefox'],
    [/Chrome\/|CriOS\/|Chromium\//, 'Chrome'],
    [/Safari\//, 'Safari'],
    [/^curl\//, 'curl'],
    [/^node|undici/i, 'Node.js'],
    [/python-requests|aiohttp|httpx/i, 'Python'],
  ];
  const systems = [
    [/Windows/, 'Windows'],
    [/iPhone|iPad|iPod/, 'iOS'],
    [/Android/, 'Android'],
    [/CrOS/, 'ChromeOS'],
    [/Mac OS X|Macintosh/, 'macOS'],
    [/Linux/, 'Linux'],
  ];
  const browser = browsers.find(([re]) => re.test(ua))?.[1];
  const system = systems.find(([re]) => re.test(ua))?.[1];
  if (browser && system) return `${browser} on ${system}`;
  if (browser || system) return browser || system;
  return ua.length > 40 ? `${ua.slice(0, 39)}…` : ua;
}

// ---- views ----------------------------------------------------------------------------------

function showView(view) {
  el.boot.hidden = true;
  for (const v of [el.loginView, el.mfaView, el.appView]) v.hidden = v !== view;
  refreshCookieNames();
}

function showLogin() {
  showView(el.loginView);
  el.password.value = '';
  el.mfaCode.value = '';
  showMessage(el.loginError, '');
  showMessage(el.mfaError, '');
  (el.username.value ? el.password : el.username).focus();
}

function showMfa() {
  showView(el.mfaView);
  showMessage(el.mfaError, '');
  el.mfaCode.value = '';
  el.mfaCode.focus();
}

async function showApp(user) {
  showView(el.appView);
  el.loginForm.reset();
  el.remember.checked = true;
  showMessage(el.passwordMessage, '');
  el.apiResult.hidden = true;
  el.apiResult.textContent = '';
  renderUser(user);
  await refreshSessions();
}

function renderUser(user) {
  el.whoamiUsername.textContent = user.username;
  el.whoamiEmail.textContent = user.email ? `${user.email}${user.emailVerified ? '' : ' (unverified)'}` : 'No email address on file';
  el.avatar.textContent = (user.username || '?').slice(0, 1).toUpperCase();
  $('password-username').value = user.username; // for password managers
}

async function refreshSessions() {
  let sessions;
  try {
    sessions = await client.sessions();
  } catch (err) {
    if (el.appView.hidden) return; // logged out meanwhile (onUnauthenticated)
    el.sessionsList.replaceChildren(item('li', 'session empty', `Could not load sessions: ${describe(err)}`));
    return;
  }
  sessions.sort((a, b) => Number(b.current) - Number(a.current) || Date.parse(b.lastSeenAt) - Date.parse(a.lastSeenAt));
  el.sessionsList.replaceChildren(...sessions.map(sessionItem));
  el.revokeOthersButton.disabled = !sessions.some((s) => !s.current);
  refreshCookieNames();
}

function item(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function sessionItem(s) {
  const li = item('li', s.current ? 'session current' : 'session');
  li.dataset.id = s.id;

  const main = item('div', 'session-main');
  const device = item('span', 'device', shortUserAgent(s.userAgent));
  if (s.userAgent) device.title = s.userAgent;
  main.append(device);
  if (s.current) main.append(item('span', 'badge', 'This device'));

  const meta = item('span', 'session-meta');
  const lastSeen = item('time', '', `active ${relativeTime(s.lastSeenAt)}`);
  if (s.lastSeenAt) {
    lastSeen.dateTime = s.lastSeenAt;
    lastSeen.title = new Date(s.lastSeenAt).toLocaleString();
  }
  meta.append(item('span', 'ip', s.ip || 'unknown IP'), document.createTextNode(' · '), lastSeen);
  if (!s.remember) meta.append(document.createTextNode(' · until the browser closes'));
  main.append(meta);
  li.append(main);

  if (!s.current) {
    const button = item('button', 'revoke-session secondary small', 'Sign out');
    button.type = 'button';
    button.dataset.id = s.id;
    button.setAttribute('aria-label', `Sign out ${shortUserAgent(s.userAgent)} (${s.ip || 'unknown IP'})`);
    li.append(button);
  }
  return li;
}

// ---- actions --------------------------------------------------------------------------------

on(el.loginForm, 'submit', async (e) => {
  e.preventDefault();
  showMessage(el.loginError, '');
  await busy(el.loginButton, async () => {
    try {
      const res = await client.login(el.username.value.trim(), el.password.value, { remember: el.remember.checked });
      if (res && res.mfaRequired) return showMfa();
      setStatus(`Signed in as ${res.user.username}.`, 'success');
      await showApp(res.user);
    } catch (err) {
      showMessage(el.loginError, describe(err));
      el.password.select();
    } finally {
      refreshCookieNames();
    }
  });
});

on(el.mfaForm, 'submit', async (e) => {
  e.preventDefault();
  showMessage(el.mfaError, '');
  const value = el.mfaCode.value.trim();
  const second = /^\d{6,8}$/.test(value.replace(/\s+/g, '')) ? { code: value.replace(/\s+/g, '') } : { recoveryCode: value };
  await busy(el.mfaButton, async () => {
    try {
      const res = await client.loginMfa(second);
      setStatus(`Signed in as ${res.user.username}.`, 'success');
      await showApp(res.user);
    } catch (err) {
      showMessage(el.mfaError, describe(err));
      el.mfaCode.select();
    }
  });
});

on(el.mfaCancel, 'click', async () => {
  showLogin();
  await client.logout().catch(() => {}); // drop the half-finished login
  refreshCookieNames();
});

on(el.logoutButton, 'click', async () => {
  await busy(el.logoutButton, async () => {
    try {
      await client.logout();
      showLogin();
      setStatus('You are signed out.', 'success');
    } catch (err) {
      setStatus(`Sign-out failed: ${describe(err)}`, 'error', 0);
    }
  });
});

on(el.sessionsList, 'click', async (e) => {
  const button = e.target.closest('button.revoke-session');
  if (!button) return;
  await busy(button, async () => {
    try {
      await client.revokeSession(button.dataset.id);
      setStatus('That session was signed out.', 'success');
    } catch (err) {
      setStatus(describe(err), 'error');
    }
  });
  await refreshSessions();
});

on(el.revokeOthersButton, 'click', async () => {
  await busy(el.revokeOthersButton, async () => {
    try {
      const n = await client.revokeOthers();
      setStatus(n ? `Signed out ${n} other session${n === 1 ? '' : 's'}.` : 'There were no other sessions.', 'success');
    } catch (err) {
      setStatus(describe(err), 'error');
    }
  });
  await refreshSessions();
});

on(el.callApiButton, 'click', async () => {
  await busy(el.callApiButton, async () => {
    let text;
    try {
      const res = await client.fetch('/api/echo', { headers: { Accept: 'application/json' } });
      const body = await res.text();
      let pretty = body;
      try {
        pretty = JSON.stringify(JSON.parse(body), null, 2);
      } catch {
        if (pretty.length > 2000) pretty = `${pretty.slice(0, 2000)}…`;
      }
      text = `${res.status} ${res.statusText}`.trim() + (pretty ? `\n\n${pretty}` : '');
      el.apiResult.classList.toggle('error', !res.ok);
    } catch (err) {
      text = describe(err);
      el.apiResult.classList.add('error');
    }
    el.apiResult.textContent = text;
    el.apiResult.hidden = false;
  });
});

on(el.passwordForm, 'submit', async (e) => {
  e.preventDefault();
  showMessage(el.passwordMessage, '');
  await busy(el.passwordButton, async () => {
    try {
      await client.changePassword(el.currentPassword.value, el.newPassword.value);
      el.passwordForm.reset();
      showMessage(el.passwordMessage, 'Password changed. Your other sessions were signed out.', 'success');
      await refreshSessions();
    } catch (err) {
      if (err instanceof ReauthRequiredError) {
        showMessage(
          el.passwordMessage,
          'Re-authentication required: you signed in too long ago for this change. Sign out, sign in again, then retry.',
        );
      } else {
        showMessage(el.passwordMessage, describe(err));
      }
    }
  });
});

window.addEventListener('focus', refreshCookieNames);

// ---- start ----------------------------------------------------------------------------------

async function start() {
  refreshCookieNames();
  let current = null;
  try {
    current = await client.session();
  } catch (err) {
    setStatus(`Could not check your session: ${describe(err)}`, 'error', 0);
  }
  if (current) await showApp(current.user);
  else showLogin();
}

start().catch(unexpected);

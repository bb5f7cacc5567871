// sessiongate demo SPA: plain ES module, no build step, CSP-friendly (no inline scripts or
// styles; views are switched with the `hidden` attribute, everything is built with DOM APIs).
import {
  createClient,
  SessiongateError,
  ReauthRequiredError,
  RateLimitedError,
  PasskeyError,
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
  forgotLink: $('forgot-link'),
  forgotView: $('forgot-view'),
  forgotForm: $('forgot-form'),
  forgotEmail: $('forgot-email'),
  forgotButton: $('forgot-button'),
  forgotCancel: $('forgot-cancel'),
  forgotMessage: $('forgot-message'),
  resetView: $('reset-view'),
  resetForm: $('reset-form'),
  resetPassword: $('reset-password'),
  resetButton: $('reset-button'),
  resetCancel: $('reset-cancel'),
  resetMessage: $('reset-message'),
  reauthPanel: $('reauth-panel'),
  reauthReason: $('reauth-reason'),
  reauthForm: $('reauth-form'),
  reauthLabel: $('reauth-label'),
  reauthSecret: $('reauth-secret'),
  reauthMessage: $('reauth-message'),
  reauthButton: $('reauth-button'),
  reauthCancel: $('reauth-cancel'),
  mfaState: $('mfa-state'),
  mfaEnableButton: $('mfa-enable-button'),
  mfaDisableButton: $('mfa-disable-button'),
  mfaPanelMessage: $('mfa-panel-message'),
  mfaSetup: $('mfa-setup'),
  mfaQr: $('mfa-qr'),
  mfaSecret: $('mfa-secret'),
  mfaConfirmForm: $('mfa-confirm-form'),
  mfaConfirmCode: $('mfa-confirm-code'),
  mfaConfirmButton: $('mfa-confirm-button'),
  mfaConfirmMessage: $('mfa-confirm-message'),
  mfaSetupCancel: $('mfa-setup-cancel'),
  mfaRecovery: $('mfa-recovery'),
  mfaRecoveryList: $('mfa-recovery-list'),
  mfaRecoveryDone: $('mfa-recovery-done'),
  emailForm: $('email-form'),
  emailNew: $('email-new'),
  emailButton: $('email-button'),
  emailMessage: $('email-message'),
  passkeyLoginButton: $('passkey-login-button'),
  passkeysPanel: $('passkeys-panel'),
  passkeysList: $('passkeys-list'),
  passkeyAddForm: $('passkey-add-form'),
  passkeyName: $('passkey-name'),
  passkeyAddButton: $('passkey-add-button'),
  passkeysMessage: $('passkeys-message'),
  reauthPasskeyButton: $('reauth-passkey-button'),
};

/** The signed-in user as last seen (for the 2FA panel and the reauth prompt). */
let currentUser = null;

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
    // Each reason once: a field message the main one already says (the weak-password detail
    // "The password is too common: …" and its field's "is too common: …") is left out.
    const said = main.toLowerCase();
    const fields = Object.values(error.errors)
      .filter((v) => typeof v === 'string' && v && !said.includes(v.toLowerCase().replace(/\.$/, '')))
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
  for (const v of [el.loginView, el.mfaView, el.appView, el.forgotView, el.resetView]) v.hidden = v !== view;
  refreshCookieNames();
}

function showLogin() {
  showView(el.loginView);
  el.password.value = '';
  el.mfaCode.value = '';
  showMessage(el.loginError, '');
  showMessage(el.mfaError, '');
  (el.username.value ? el.password : el.username).focus();
  el.passkeyLoginButton.hidden = !(gatewayConfig.passkeys && client.passkeysSupported());
  if (gatewayConfig.passkeys) startPasskeyAutofill().catch(unexpected);
}

// ---- passkeys -------------------------------------------------------------------------------

/** The pending autofill request (conditional mediation), aborted before any other login. */
let autofill = null;

function stopPasskeyAutofill() {
  autofill?.abort();
  autofill = null;
}

/** Offer passkeys in the username field's suggestions, where the browser can. */
async function startPasskeyAutofill() {
  stopPasskeyAutofill();
  if (!(await client.passkeyAutofillSupported())) return;
  const controller = new AbortController();
  autofill = controller;
  try {
    const res = await client.loginWithPasskey({ autofill: true, signal: controller.signal, remember: el.remember.checked });
    setStatus(`Signed in as ${res.user.username} with a passkey.`, 'success');
    await showApp(res.user);
  } catch (err) {
    if (controller.signal.aborted || (err instanceof PasskeyError && err.reason === 'cancelled')) return;
    showMessage(el.loginError, describe(err));
  } finally {
    if (autofill === controller) autofill = null;
  }
}

on(el.passkeyLoginButton, 'click', async () => {
  stopPasskeyAutofill();
  showMessage(el.loginError, '');
  await busy(el.passkeyLoginButton, async () => {
    try {
      const username = el.username.value.trim() || undefined;
      const res = await client.loginWithPasskey({ username, remember: el.remember.checked });
      setStatus(`Signed in as ${res.user.username} with a passkey.`, 'success');
      await showApp(res.user);
    } catch (err) {
      showMessage(el.loginError, describe(err));
      if (!el.appView.hidden) return;
      startPasskeyAutofill().catch(unexpected);
    }
  });
});

/** How many passkeys the user has (for the reauth prompt), as last listed. */
let passkeyCount = 0;

async function refreshPasskeys() {
  el.passkeysPanel.hidden = !(gatewayConfig.passkeys && client.passkeysSupported());
  if (el.passkeysPanel.hidden) return;
  let keys;
  try {
    keys = await client.passkeys();
  } catch (err) {
    if (err instanceof SessiongateError && err.code === 'not_supported') {
      el.passkeysPanel.hidden = true;
      return;
    }
    el.passkeysList.replaceChildren(item('li', 'session empty', `Could not load passkeys: ${describe(err)}`));
    return;
  }
  passkeyCount = keys.length;
  el.passkeysList.replaceChildren(
    ...(keys.length ? keys.map(passkeyItem) : [item('li', 'session empty', 'No passkeys yet.')]),
  );
}

function passkeyItem(k) {
  const li = item('li', 'session passkey');
  const text = item('div', 'session-text');
  text.append(item('p', 'session-title', k.name));
  const used = k.lastUsedAt ? `last used ${relativeTime(k.lastUsedAt)}` : 'never used';
  text.append(item('p', 'muted small', `Added ${relativeTime(k.createdAt)} · ${used}`));
  const rename = item('button', 'secondary small-button rename-passkey', 'Rename');
  rename.type = 'button';
  rename.dataset.id = k.id;
  rename.dataset.name = k.name;
  const remove = item('button', 'secondary small-button remove-passkey', 'Remove');
  remove.type = 'button';
  remove.dataset.id = k.id;
  li.append(text, rename, remove);
  return li;
}

on(el.passkeyAddForm, 'submit', async (e) => {
  e.preventDefault();
  showMessage(el.passkeysMessage, '');
  await busy(el.passkeyAddButton, async () => {
    try {
      const name = el.passkeyName.value.trim() || undefined;
      const key = await withReauth('Adding a passkey needs a recent sign-in.', () => client.registerPasskey({ name }));
      el.passkeyName.value = '';
      showMessage(el.passkeysMessage, `Passkey “${key.name}” added: you can now sign in with it.`, 'success');
      await refreshPasskeys();
    } catch (err) {
      report(el.passkeysMessage, err);
    }
  });
});

on(el.passkeysList, 'click', async (e) => {
  const rename = e.target.closest('button.rename-passkey');
  const remove = e.target.closest('button.remove-passkey');
  if (!rename && !remove) return;
  showMessage(el.passkeysMessage, '');
  try {
    if (rename) {
      const name = window.prompt('New name for this passkey', rename.dataset.name);
      if (name === null || !name.trim()) return;
      await client.renamePasskey(rename.dataset.id, name.trim());
    } else {
      await withReauth('Removing a passkey needs a recent sign-in.', () => client.deletePasskey(remove.dataset.id));
      showMessage(el.passkeysMessage, 'Passkey removed.', 'success');
    }
  } catch (err) {
    report(el.passkeysMessage, err);
  }
  await refreshPasskeys();
});

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
  showMessage(el.emailMessage, '');
  showMessage(el.mfaPanelMessage, '');
  el.mfaSetup.hidden = true;
  el.mfaRecovery.hidden = true;
  el.reauthPanel.hidden = true;
  el.apiResult.hidden = true;
  el.apiResult.textContent = '';
  renderUser(user);
  await Promise.all([refreshSessions(), refreshPasskeys()]);
}

function renderUser(user) {
  currentUser = user;
  el.mfaState.textContent = user.mfa
    ? 'On: signing in asks for a code from your authenticator app.'
    : 'Off: your password alone signs you in.';
  el.mfaState.classList.toggle('on', !!user.mfa);
  el.mfaEnableButton.hidden = !!user.mfa;
  el.mfaDisableButton.hidden = !user.mfa;
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

/** "with a passkey", "with password + code"… from a session's authenticationMethods. */
function signedInWith(methods) {
  if (!Array.isArray(methods) || !methods.length) return '';
  const names = { password: 'password', totp: 'code', recovery_code: 'recovery code', passkey: 'a passkey' };
  return `with ${methods.map((m) => (m.method === 'oidc' ? m.provider : names[m.method] ?? m.method)).join(' + ')}`;
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
  const how = signedInWith(s.authenticationMethods);
  if (how) meta.append(document.createTextNode(` · ${how}`));
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
  stopPasskeyAutofill();
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

/** The new-password field's hint: the policy, or why the server refused the password. */
function fieldHint(text, error) {
  const hint = $('new-password-hint');
  hint.textContent = text ?? `At least ${gatewayConfig.passwordMinLength} characters; a long passphrase is best.`;
  hint.classList.toggle('error', !!error);
  el.newPassword.setAttribute('aria-invalid', error ? 'true' : 'false');
}

on(el.passwordForm, 'submit', async (e) => {
  e.preventDefault();
  showMessage(el.passwordMessage, '');
  fieldHint();
  await busy(el.passwordButton, async () => {
    const current = el.currentPassword.value;
    const change = () => client.changePassword(current, el.newPassword.value);
    try {
      try {
        await change();
      } catch (err) {
        if (!(err instanceof ReauthRequiredError)) throw err;
        // Signed in too long ago: the current password typed above re-authenticates
        // (POST /reauth) — with 2FA on, a code is needed too — then the change is tried again.
        if (currentUser && currentUser.mfa) await askReauth('Changing your password needs a code from your authenticator app.');
        else await client.reauth(current);
        await change();
      }
      el.passwordForm.reset();
      showMessage(el.passwordMessage, 'Password changed. Your other sessions were signed out.', 'success');
      await refreshSessions();
    } catch (err) {
      // A reason about the new password goes next to that field, the form says what failed.
      const why = err instanceof SessiongateError ? err.errors.newPassword : undefined;
      if (why) {
        fieldHint(sentence(why), true);
        showMessage(el.passwordMessage, sentence(err.problem.title || 'The new password was refused'));
      } else {
        showMessage(el.passwordMessage, describe(err));
      }
    }
  });
});

// ---- re-authentication ---------------------------------------------------------------------

class Cancelled extends Error {}

let reauthPending = null; // { resolve, reject } while the prompt is open
let reauthWithCode = false;

function setReauthMode(withCode) {
  reauthWithCode = withCode;
  el.reauthLabel.textContent = withCode ? 'Code from your authenticator app, or a recovery code' : 'Password';
  el.reauthSecret.type = withCode ? 'text' : 'password';
  el.reauthSecret.autocomplete = withCode ? 'one-time-code' : 'current-password';
  el.reauthSecret.inputMode = withCode ? 'numeric' : 'text';
  el.reauthSecret.value = '';
}

/** Show the "confirm it's you" prompt; resolves once POST /reauth succeeded, rejects on Cancel. */
function askReauth(reason) {
  if (reauthPending) reauthPending.reject(new Cancelled());
  el.reauthReason.textContent = reason;
  // With 2FA on, re-authentication takes a code (or a recovery code), never the password alone.
  const mfa = Boolean(currentUser && currentUser.mfa);
  setReauthMode(mfa);
  showMessage(el.reauthMessage, '');
  el.reauthPasskeyButton.hidden = !(passkeyCount > 0 && client.passkeysSupported());
  el.reauthPanel.hidden = false;
  el.reauthPanel.scrollIntoView({ block: 'nearest' });
  el.reauthSecret.focus();
  return new Promise((resolve, reject) => {
    reauthPending = { resolve, reject };
  });
}

function closeReauth() {
  el.reauthPanel.hidden = true;
  el.reauthSecret.value = '';
  reauthPending = null;
}

/** Run `action`; on 403 reauth_required ask the user to confirm, then run it once more. */
async function withReauth(reason, action) {
  try {
    return await action();
  } catch (err) {
    if (!(err instanceof ReauthRequiredError)) throw err;
    await askReauth(reason);
    return action();
  }
}

on(el.reauthForm, 'submit', async (e) => {
  e.preventDefault();
  showMessage(el.reauthMessage, '');
  const value = el.reauthSecret.value;
  await busy(el.reauthButton, async () => {
    try {
      const code = value.replace(/\s+/g, '');
      // Recovery codes have letters (xxxxx-xxxxx); authenticator codes are six digits.
      const secondFactor = /[a-z]/i.test(code) ? { recoveryCode: code } : { code };
      await client.reauth(reauthWithCode ? secondFactor : value);
      const pending = reauthPending;
      closeReauth();
      pending?.resolve();
    } catch (err) {
      showMessage(el.reauthMessage, describe(err));
      el.reauthSecret.select();
    }
  });
});

on(el.reauthPasskeyButton, 'click', async () => {
  showMessage(el.reauthMessage, '');
  await busy(el.reauthPasskeyButton, async () => {
    try {
      await client.reauthWithPasskey();
      const pending = reauthPending;
      closeReauth();
      pending?.resolve();
    } catch (err) {
      showMessage(el.reauthMessage, describe(err));
    }
  });
});

on(el.reauthCancel, 'click', () => {
  const pending = reauthPending;
  closeReauth();
  pending?.reject(new Cancelled());
});

/** Errors of an action the user may have cancelled at the reauth prompt. */
function report(node, err) {
  if (err instanceof Cancelled) return showMessage(node, 'Cancelled.', 'info');
  showMessage(node, describe(err));
}

async function refreshUser() {
  const current = await client.session();
  if (current) renderUser(current.user);
}

// ---- two-factor authentication ---------------------------------------------------------------

/** SVG text → a data: URL for <img> (no inline markup: the CSP stays strict). */
function svgDataUrl(svg) {
  const bytes = new TextEncoder().encode(svg);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return `data:image/svg+xml;base64,${btoa(bin)}`;
}

on(el.mfaEnableButton, 'click', async () => {
  showMessage(el.mfaPanelMessage, '');
  await busy(el.mfaEnableButton, async () => {
    try {
      const setup = await withReauth('Turning on two-factor authentication needs a recent sign-in.', () => client.setupTotp());
      el.mfaQr.src = svgDataUrl(setup.qrSvg);
      el.mfaSecret.textContent = setup.secret.replace(/(.{4})(?=.)/g, '$1 ');
      el.mfaConfirmForm.reset();
      showMessage(el.mfaConfirmMessage, '');
      el.mfaSetup.hidden = false;
      el.mfaEnableButton.hidden = true;
      el.mfaConfirmCode.focus();
    } catch (err) {
      report(el.mfaPanelMessage, err);
    }
  });
});

on(el.mfaConfirmForm, 'submit', async (e) => {
  e.preventDefault();
  showMessage(el.mfaConfirmMessage, '');
  const code = el.mfaConfirmCode.value.replace(/\s+/g, '');
  await busy(el.mfaConfirmButton, async () => {
    try {
      const codes = await withReauth('Confirm it is you to finish turning on two-factor authentication.', () =>
        client.confirmTotp(code),
      );
      el.mfaSetup.hidden = true;
      el.mfaQr.removeAttribute('src');
      el.mfaSecret.textContent = '';
      el.mfaRecoveryList.replaceChildren(...codes.map((c) => item('li', '', c)));
      el.mfaRecovery.hidden = false;
      el.mfaRecoveryDone.focus();
      showMessage(el.mfaPanelMessage, 'Two-factor authentication is on. Your other sessions were signed out.', 'success');
      await refreshUser();
      el.mfaEnableButton.hidden = true;
      el.mfaDisableButton.hidden = true;
      await refreshSessions();
    } catch (err) {
      report(el.mfaConfirmMessage, err);
      el.mfaConfirmCode.select();
    }
  });
});

on(el.mfaSetupCancel, 'click', () => {
  el.mfaSetup.hidden = true;
  el.mfaQr.removeAttribute('src');
  el.mfaSecret.textContent = '';
  if (currentUser) renderUser(currentUser);
});

on(el.mfaRecoveryDone, 'click', () => {
  el.mfaRecovery.hidden = true;
  el.mfaRecoveryList.replaceChildren();
  if (currentUser) renderUser(currentUser);
});

on(el.mfaDisableButton, 'click', async () => {
  showMessage(el.mfaPanelMessage, '');
  await busy(el.mfaDisableButton, async () => {
    try {
      await withReauth('Turning off two-factor authentication needs a recent sign-in.', () => client.disableTotp());
      await refreshUser();
      showMessage(el.mfaPanelMessage, 'Two-factor authentication is off. Your other sessions were signed out.', 'success');
      await refreshSessions();
    } catch (err) {
      report(el.mfaPanelMessage, err);
    }
  });
});

// ---- email address ---------------------------------------------------------------------------

on(el.emailForm, 'submit', async (e) => {
  e.preventDefault();
  showMessage(el.emailMessage, '');
  const email = el.emailNew.value.trim();
  await busy(el.emailButton, async () => {
    try {
      await withReauth('Changing your email address needs a recent sign-in.', () => client.changeEmail(email));
      el.emailForm.reset();
      showMessage(el.emailMessage, `Check ${email}: the change takes effect when you open the link we sent there.`, 'success');
    } catch (err) {
      report(el.emailMessage, err);
    }
  });
});

// ---- forgotten password ----------------------------------------------------------------------

let resetToken = null;

/** `#/reset?token=…` → { path: '/reset', token: '…' } */
function parseRoute() {
  const hash = location.hash.replace(/^#/, '');
  const [path, query = ''] = hash.split('?');
  return { path, token: new URLSearchParams(query).get('token') };
}

/** Drop the route (and any token) from the address bar and the history. */
function forgetRoute() {
  history.replaceState(null, '', location.pathname + location.search);
}

function showForgot() {
  showView(el.forgotView);
  showMessage(el.forgotMessage, '');
  el.forgotEmail.value = el.username.value.includes('@') ? el.username.value.trim() : '';
  el.forgotEmail.focus();
}

function showReset() {
  showView(el.resetView);
  el.resetForm.reset();
  showMessage(el.resetMessage, '');
  el.resetPassword.focus();
}

on(el.forgotLink, 'click', (e) => {
  e.preventDefault();
  showForgot();
});

on(el.forgotCancel, 'click', () => showLogin());
on(el.resetCancel, 'click', () => {
  resetToken = null;
  showLogin();
});

on(el.forgotForm, 'submit', async (e) => {
  e.preventDefault();
  showMessage(el.forgotMessage, '');
  const email = el.forgotEmail.value.trim();
  await busy(el.forgotButton, async () => {
    try {
      await client.requestPasswordReset(email);
      showMessage(el.forgotMessage, `If an account uses ${email}, a link to choose a new password is on its way.`, 'success');
    } catch (err) {
      showMessage(el.forgotMessage, describe(err));
    }
  });
});

on(el.resetForm, 'submit', async (e) => {
  e.preventDefault();
  showMessage(el.resetMessage, '');
  await busy(el.resetButton, async () => {
    try {
      await client.confirmPasswordReset(resetToken, el.resetPassword.value);
      resetToken = null;
      showLogin();
      setStatus('Your password was changed and every session signed out. Sign in with the new password.', 'success', 0);
    } catch (err) {
      showMessage(el.resetMessage, describe(err));
      el.resetPassword.select();
    }
  });
});

/**
 * Links into the SPA: `#/forgot`, and the mailed `#/reset?token=…`, `#/verify-email?token=…` and
 * `#/cancel-email?token=…` (in the notice to the old address).
 */
async function handleRoute() {
  const route = parseRoute();
  if (route.path === '/reset' && route.token) {
    forgetRoute();
    resetToken = route.token;
    showReset();
    return true;
  }
  if (route.path === '/verify-email' && route.token) {
    forgetRoute();
    try {
      const res = await client.verifyEmail(route.token);
      setStatus(`Your email address ${res.email} is confirmed.`, 'success', 10000);
      if (!el.appView.hidden) await refreshUser();
    } catch (err) {
      setStatus(`This confirmation link does not work: ${describe(err)}`, 'error', 0);
    }
    return false;
  }
  if (route.path === '/cancel-email' && route.token) {
    forgetRoute();
    try {
      await client.cancelEmailChange(route.token);
      setStatus(
        'The email change was cancelled. If you did not ask for it, reset your password now: that signs out every other session.',
        'success',
        0,
      );
    } catch (err) {
      setStatus(`This cancel link does not work (already used, or expired): ${describe(err)}`, 'error', 0);
    }
    return false;
  }
  if (route.path === '/forgot') {
    forgetRoute();
    if (el.appView.hidden) {
      showForgot();
      return true;
    }
  }
  return false;
}

// The same links followed while the page is open (only the fragment changes: no reload).
window.addEventListener('hashchange', () => {
  handleRoute().catch(unexpected);
});

window.addEventListener('focus', refreshCookieNames);

// ---- start ----------------------------------------------------------------------------------

/** GET /config: the password policy and whether passkeys work here (defaults until it answers). */
let gatewayConfig = { passwordMinLength: 8, signup: false, passkeys: true };

async function loadConfig() {
  try {
    gatewayConfig = await client.config();
  } catch {
    return; // an older gateway: keep the defaults
  }
  fieldHint();
}

async function start() {
  refreshCookieNames();
  await loadConfig();
  if (await handleRoute()) return;
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

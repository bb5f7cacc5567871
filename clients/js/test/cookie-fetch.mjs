// A tiny cookie jar and a fetch() that uses it, so Node tests can talk to sessiongate like a
// browser does (RFC 6265 storage model, reduced to what a test needs). No dependencies.
//
//   const fetch = createCookieFetch();          // fetch.jar is the CookieJar
//   const client = createClient({ baseUrl, fetch });

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/**
 * Parse one Set-Cookie header value. Returns null for a header a browser would ignore outright.
 * Attribute names are case-insensitive; unknown attributes are ignored.
 */
export function parseSetCookie(header) {
  const parts = String(header).split(';');
  const first = parts.shift();
  const eq = first.indexOf('=');
  if (eq < 0) return null; // cookies without '=' are not worth supporting here
  const name = first.slice(0, eq).trim();
  const value = first.slice(eq + 1).trim();
  if (!name) return null;
  const cookie = { name, value, attributes: {} };
  for (const raw of parts) {
    const i = raw.indexOf('=');
    const key = (i < 0 ? raw : raw.slice(0, i)).trim().toLowerCase();
    const val = i < 0 ? '' : raw.slice(i + 1).trim();
    switch (key) {
      case 'expires': {
        const t = Date.parse(val);
        if (!Number.isNaN(t)) cookie.attributes.expires = t;
        break;
      }
      case 'max-age':
        if (/^-?\d+$/.test(val)) cookie.attributes.maxAge = parseInt(val, 10);
        break;
      case 'domain':
        if (val) cookie.attributes.domain = val.replace(/^\./, '').toLowerCase();
        break;
      case 'path':
        cookie.attributes.path = val;
        break;
      case 'secure':
        cookie.attributes.secure = true;
        break;
      case 'httponly':
        cookie.attributes.httpOnly = true;
        break;
      case 'samesite':
        cookie.attributes.sameSite = val;
        break;
      case 'partitioned':
        cookie.attributes.partitioned = true;
        break;
      default:
        break;
    }
  }
  return cookie;
}

/** RFC 6265 §5.1.4 default-path of a request URL. */
export function defaultPath(url) {
  const p = new URL(url).pathname;
  if (!p.startsWith('/')) return '/';
  const last = p.lastIndexOf('/');
  return last <= 0 ? '/' : p.slice(0, last);
}

/** RFC 6265 §5.1.3 domain-match. */
export function domainMatch(host, domain) {
  if (host === domain) return true;
  if (isIp(host)) return false;
  return host.endsWith('.' + domain);
}

/** RFC 6265 §5.1.4 path-match. */
export function pathMatch(requestPath, cookiePath) {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/';
}

function isIp(host) {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':') || host.startsWith('[');
}

/** https, or a loopback host (browsers treat http://localhost as a secure context). */
function isSecureUrl(u) {
  return u.protocol === 'https:' || u.protocol === 'wss:' || LOCAL_HOSTS.has(u.hostname);
}

export class CookieJar {
  /** @param {{now?: () => number}} [options] `now` returns epoch milliseconds (for tests) */
  constructor({ now = () => Date.now() } = {}) {
    this.now = now;
    /** @type {Map<string, object>} key: domain ; path ; name */
    this.cookies = new Map();
  }

  /**
   * Store one Set-Cookie header received for `requestUrl`.
   * Returns the stored cookie, or null if it was rejected or was a deletion.
   */
  setCookie(header, requestUrl) {
    const parsed = parseSetCookie(header);
    if (!parsed) return null;
    const u = new URL(requestUrl);
    const host = u.hostname.toLowerCase();
    const a = parsed.attributes;
    const now = this.now();

    let domain = host;
    let hostOnly = true;
    if (a.domain !== undefined) {
      if (!domainMatch(host, a.domain)) return null; // a foreign domain: ignored
      domain = a.domain;
      hostOnly = false;
    }
    const path = a.path && a.path.startsWith('/') ? a.path : defaultPath(u);
    if (a.secure && !isSecureUrl(u)) return null;
    if (parsed.name.startsWith('__Secure-') && !a.secure) return null;
    if (parsed.name.startsWith('__Host-') && (!a.secure || a.domain !== undefined || path !== '/')) return null;

    let expires = null; // null: session cookie
    if (a.maxAge !== undefined) expires = a.maxAge <= 0 ? -Infinity : now + a.maxAge * 1000;
    else if (a.expires !== undefined) expires = a.expires;

    const key = `${domain};${path};${parsed.name}`;
    const old = this.cookies.get(key);
    if (expires !== null && expires <= now) {
      this.cookies.delete(key); // Max-Age=0 or a past Expires: delete
      return null;
    }
    const cookie = {
      name: parsed.name,
      value: parsed.value,
      domain,
      path,
      hostOnly,
      secure: !!a.secure,
      httpOnly: !!a.httpOnly,
      sameSite: a.sameSite ?? null,
      expires,
      created: old ? old.created : now,
      seq: old ? old.seq : this.#seq++,
    };
    this.cookies.set(key, cookie);
    return cookie;
  }

  #seq = 0;

  /** Store every Set-Cookie header of a Response (Node ≥ 19.7: headers.getSetCookie()). */
  storeFromResponse(response, requestUrl) {
    const list =
      typeof response.headers.getSetCookie === 'function'
        ? response.headers.getSetCookie()
        : splitSetCookie(response.headers.get('set-cookie'));
    for (const h of list) this.setCookie(h, requestUrl);
  }

  /** Cookies that would be sent to `url`, longest path first, then oldest first. */
  cookiesFor(url) {
    const u = new URL(url);
    const host = u.hostname.toLowerCase();
    const now = this.now();
    const out = [];
    for (const [key, c] of this.cookies) {
      if (c.expires !== null && c.expires <= now) {
        this.cookies.delete(key);
        continue;
      }
      if (c.hostOnly ? host !== c.domain : !domainMatch(host, c.domain)) continue;
      if (!pathMatch(u.pathname || '/', c.path)) continue;
      if (c.secure && !isSecureUrl(u)) continue;
      out.push(c);
    }
    return out.sort((x, y) => y.path.length - x.path.length || x.seq - y.seq);
  }

  /** The Cookie request header for `url` (empty string when none). */
  cookieHeader(url) {
    return this.cookiesFor(url)
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  /** The value of cookie `name` that would be sent to `url` (any stored one when url is omitted). */
  get(name, url) {
    const list = url ? this.cookiesFor(url) : [...this.cookies.values()];
    const c = list.find((x) => x.name === name && (x.expires === null || x.expires > this.now()));
    return c ? c.value : undefined;
  }

  /** Drop session cookies (as closing the browser would). */
  endSession() {
    for (const [key, c] of this.cookies) if (c.expires === null) this.cookies.delete(key);
  }

  clear() {
    this.cookies.clear();
  }
}

/** Fallback for runtimes without getSetCookie(): split a folded Set-Cookie header. */
export function splitSetCookie(folded) {
  if (!folded) return [];
  // Commas also appear in Expires dates ("Wed, 21 Oct 2015 ..."): split only before "name=".
  return folded.split(/,(?=\s*[^;,=\s]+=)/).map((s) => s.trim());
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * A fetch() that keeps cookies in `jar` like a browser: sends the matching ones, stores every
 * Set-Cookie (also those of redirect responses, which is why redirects are followed here).
 * `credentials: 'omit'` sends and stores nothing. The returned function has a `.jar` property.
 */
export function createCookieFetch({ fetch: baseFetch = globalThis.fetch, jar = new CookieJar() } = {}) {
  async function cookieFetch(input, init = {}) {
    const isRequest = typeof Request !== 'undefined' && input instanceof Request;
    let url = isRequest ? input.url : String(input);
    let method = String(init.method ?? (isRequest ? input.method : 'GET')).toUpperCase();
    const headers = new Headers(init.headers ?? (isRequest ? input.headers : undefined));
    let body = init.body ?? (isRequest && input.body !== null ? await input.arrayBuffer() : undefined);
    const useCookies = (init.credentials ?? (isRequest ? input.credentials : 'include')) !== 'omit';
    const mode = init.redirect ?? 'follow';

    for (let hops = 0; ; hops++) {
      headers.delete('cookie');
      if (useCookies) {
        const cookie = jar.cookieHeader(url);
        if (cookie) headers.set('cookie', cookie);
      }
      const res = await baseFetch(url, {
        method,
        headers,
        body,
        redirect: 'manual',
        signal: init.signal ?? (isRequest ? input.signal : undefined),
        ...(body !== undefined && isStream(body) ? { duplex: 'half' } : {}),
      });
      if (useCookies) jar.storeFromResponse(res, url);
      const location = res.headers.get('location');
      if (mode === 'manual' || !REDIRECTS.has(res.status) || !location) return res;
      if (mode === 'error') throw new TypeError(`redirect to ${location} refused (redirect: 'error')`);
      if (hops >= 20) throw new TypeError('too many redirects');
      await res.body?.cancel();
      const next = new URL(location, url).toString();
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
        if (method !== 'HEAD') method = 'GET';
        body = undefined;
        for (const h of ['content-type', 'content-length', 'content-encoding', 'content-language']) headers.delete(h);
      } else if (body !== undefined && isStream(body)) {
        throw new TypeError('cannot replay a streamed body across a redirect');
      }
      if (new URL(next).origin !== new URL(url).origin) headers.delete('authorization');
      url = next;
    }
  }
  cookieFetch.jar = jar;
  return cookieFetch;
}

function isStream(body) {
  return typeof ReadableStream !== 'undefined' && body instanceof ReadableStream;
}

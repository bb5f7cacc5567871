//! The commented configuration `sessiongate init` writes.

/// A complete, commented `sessiongate.toml` for the chosen mode.
pub fn template(cross_origin: bool, secret_key: &str) -> String {
    let (mode, public_url, cors) = if cross_origin {
        (
            "cross-origin",
            "https://api.example.com",
            "allowed_origins = [\"https://app.example.com\"]   # the SPA's origin(s); never \"*\"",
        )
    } else {
        ("same-origin", "http://127.0.0.1:8080", "allowed_origins = []              # only used in cross-origin mode")
    };
    // Cross-origin: the SPA is served elsewhere and the gateway fronts the API, as in
    // docs/deployment-cross-origin.md; same origin: the demo, and a route to uncomment.
    let (spa_dir, routes) = if cross_origin {
        (
            "dir = \"off\"                       # the SPA is served elsewhere (its own origin)",
            "[[routes]]\nprefix = \"/api/\"\nupstream = \"http://127.0.0.1:8000\"   # your API\nauth = \"required\"               # \"required\" (401 without a session), \"optional\", \"none\"\n# strip_prefix = false\n# timeout = \"30s\"",
        )
    } else {
        (
            "dir = \"\"                          # empty: built-in demo SPA; \"off\": none; or a directory",
            "# [[routes]]\n# prefix = \"/api/\"\n# upstream = \"http://127.0.0.1:8000\"\n# auth = \"required\"               # \"required\" (401 without a session), \"optional\", \"none\"\n# strip_prefix = false\n# timeout = \"30s\"",
        )
    };
    format!(
        r#"# sessiongate configuration. Every key is optional; the values shown are the defaults unless
# noted. Environment variables override this file: SESSIONGATE_ + the key path upper-cased, with
# __ between levels (e.g. SESSIONGATE_SESSION__IDLE_TIMEOUT=1h). Durations: 30s, 10m, 12h, 14d.

# "same-origin": the SPA is served by sessiongate or from the same origin behind a proxy.
# "cross-origin": the SPA lives on another origin and calls sessiongate with CORS.
mode = "{mode}"
# The origin browsers use to reach sessiongate (scheme://host[:port]); links in mail use it.
public_url = "{public_url}"
data_dir = "./sessiongate-data"
# Keep this secret. Empty: read or create data_dir/secret.key.
secret_key = "{secret_key}"

[server]
listen = "127.0.0.1:8080"
tls_cert = ""                     # PEM paths; both set = serve HTTPS
tls_key = ""
trusted_proxies = []              # CIDRs whose X-Forwarded-For/-Proto/-Host are believed
admin_listen = ""                 # e.g. "127.0.0.1:9090": Prometheus /metrics, only there
max_body = "1MiB"                 # auth API bodies
header_read_timeout = "10s"       # time to send the request head (slowloris), also the first
idle_timeout = "60s"              # a connection with no request in flight is closed after this
max_header_bytes = "64KiB"        # larger request heads get 431
max_url_bytes = "8KiB"            # longer request targets (path + query) get 414
request_timeout = "30s"           # an auth API request, body upload included; then 408

[spa]
{spa_dir}
fallback = "index.html"           # history-API fallback for navigations

# Reverse proxy routes (longest prefix wins). Upstreams receive X-Auth-User-Id, X-Auth-User,
# X-Auth-Email(-Verified), X-Auth-Session and X-Auth-Methods; client-sent copies of those
# headers are always removed.
{routes}

[auth]
base_path = "/api/auth"
signup = false
bootstrap_admin = true            # create `admin` on first start with an empty user store
reauth_window = "10m"             # password/MFA/email changes need a login or reauth this recent
reset_url = "/#/reset?token="     # mailed reset link: a path on public_url, or an absolute URL
verify_email_url = "/#/verify-email?token="   # ({{token}} is replaced, else appended)
cancel_email_url = "/#/cancel-email?token="   # in the notice to the old address: cancels a change
reset_token_ttl = "30m"
verify_token_ttl = "24h"
totp_issuer = ""                  # name in authenticator apps; empty: public_url's host

[session]
store = "sqlite"                  # "memory", "sqlite", "postgres", "redis"
url = ""                          # postgres:// or redis:// for those stores
cookie_name = "sessionid"
idle_timeout = "14d"
absolute_timeout = "30d"
remember_default = true           # logins without "remember" get a persistent cookie

[csrf]
cookie_name = "csrftoken"
header_name = "X-CSRFToken"
trusted_origins = []              # cross-origin mode: defaults to cors.allowed_origins

[cookies]
domain = ""                       # e.g. "example.com" to share with subdomains
secure = "auto"                   # auto: Secure when public_url is https
same_site = "auto"                # auto: Lax, or None when an allowed origin is on another site
host_prefix = false               # __Host- cookie names (https, no domain)
partitioned = false               # CHIPS; cross-origin only

[cors]
{cors}
allow_headers = ["content-type", "x-csrftoken", "x-requested-with"]
expose_headers = []
max_age = "10m"

[users]
store = "sqlite"                  # "sqlite", "postgres", "django"
url = ""
password_min_length = 8           # 15 recommended without MFA
argon2 = {{ memory_kib = 19456, iterations = 2, parallelism = 1 }}
# store = "django" only (docs/django.md): url = "sqlite:///srv/app/db.sqlite3" or "postgres://…"
django_table = "auth_user"        # your custom user model's db_table
django_login_with_email = false   # also accept the email address at login
django_hash_iterations = 1000000  # pbkdf2_sha256 iterations of hashes sessiongate writes
django_rehash_on_login = false    # true: rewrite md5/bcrypt/old hashes on login, as Django does
hash_queue = 0                    # password hashes running or waiting; beyond: 503. 0: 16 per core

[rate_limit]
login_per_ip = "30/1m"
login_per_account = "10/1m"       # N/W: after N failures in a row for one account from one IP,
                                  # that IP waits W, then 2W, 4W… (docs/security.md)
login_backoff_max = "1h"          # the longest of those waits
login_account_ceiling = "100/1h"  # failures per account from all IPs; beyond: only IPs that
                                  # logged in to it before may try
signup_per_ip = "10/1h"
reset_per_ip = "10/1h"            # password-reset and email-change requests per IP
reset_per_address = "3/1h"        # reset mails per address (beyond: still 202, nothing sent)
mfa_per_account = "5/5m"          # wrong 2FA codes per account
passkey_start_per_ip = "120/1m"   # passkey ceremony starts (autofill starts one per login page view)
max_keys = 100000                 # IPs/accounts each in-process limiter tracks; beyond: the
                                  # least active tenth is forgotten (Redis keys expire instead)

[identity]
header_prefix = "X-Auth-"
jwt = false

[passkeys]
enabled = true
rp_id = ""                        # empty: public_url's host (localhost for a loopback IP), or in
                                  # cross-origin mode the SPA's site; changing it orphans passkeys
rp_name = ""                      # shown in the browser's passkey dialog; empty: the rp id

[audit]
store = true                      # rows in audit_events (user store's SQL database); false: log only
retention = "90d"
queue = 4096                      # events waiting for the writer; beyond: dropped, counted, warned
webhook_url = ""                  # POST each event as JSON, signed: X-Sessiongate-Signature
webhook_secret = ""               # HMAC-SHA256 key (16+ characters) when webhook_url is set

[mail]
# smtp://user:pass@host:587 (STARTTLS; required with credentials, ?tls=required|opportunistic|none)
# or smtps://user:pass@host:465. Empty: mail is written as .eml files to outbox_dir.
smtp_url = ""
from = ""                         # e.g. "Example <noreply@example.com>"; empty: noreply@ public host
outbox_dir = ""                   # development; empty: data_dir/outbox
"#
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn templates_load_and_validate() {
        for cross in [false, true] {
            let cfg = crate::config::load_str(&super::template(cross, "k")).unwrap();
            let s = cfg.validate().unwrap();
            assert_eq!(s.mode == crate::config::Mode::CrossOrigin, cross);
            // Cross-origin: no SPA here and a route to the API, as docs/deployment-cross-origin.md.
            assert_eq!(matches!(s.spa, crate::config::SpaSettings::Off), cross);
            assert_eq!(s.routes.len(), usize::from(cross));
        }
    }
}

//! Two-factor authentication: TOTP (RFC 6238) codes, recovery codes, and the keys that protect
//! both at rest — plus the sealed, short-lived "password OK, code pending" state of a two-step
//! login.
//!
//! - **TOTP**: SHA-1, 6 digits, 30-second steps (what every authenticator app supports), ±1 step
//!   of clock skew. A code is accepted only for a time step later than the last accepted one
//!   ([`crate::users::UserStore::use_totp_step`]), so each code works once.
//! - **Secrets at rest**: sealed with XChaCha20-Poly1305 under a key derived from the gateway's
//!   secret key (HKDF-SHA-256, label `totp-secret v1`), with the user id as associated data — a
//!   sealed secret copied onto another user's row does not open. A database dump alone yields no
//!   usable secret; rotating the secret key makes every enrolled user enroll again.
//! - **Recovery codes**: 10 codes of 50 random bits (`xxxxx-xxxxx`), stored as HMAC-SHA-256 under
//!   another derived key, single use.
//! - **Pending login** ([`Pending`]): after a correct password for an account with 2FA, `/login`
//!   sets a sealed cookie (5 minutes, HttpOnly) naming the user — no session exists yet. It is
//!   bound to the password hash, so a password change meanwhile voids it, and to the user's last
//!   login, which the second step moves atomically: the cookie opens one session at most.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::secret::{self, SecretKey};

/// Seconds per TOTP time step.
pub const STEP: u64 = 30;
/// Digits per TOTP code.
pub const DIGITS: usize = 6;
/// How many recovery codes an enrollment hands out.
pub const RECOVERY_CODES: usize = 10;
/// How long the password step of a two-step login stays valid.
pub const PENDING_TTL: Duration = Duration::from_secs(300);
/// Cookie carrying [`Pending`] (with `__Host-` in front when `cookies.host_prefix` is set);
/// defined with the other gateway cookies, which are never passed to upstreams.
pub use crate::cookies::MFA_PENDING_COOKIE as PENDING_COOKIE;

const SEAL_VERSION: u8 = 1;
const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Authenticated encryption with random 192-bit nonces: `version ‖ nonce ‖ ciphertext+tag`.
struct Sealer(XChaCha20Poly1305);

impl Sealer {
    fn new(key: [u8; 32]) -> Self {
        Sealer(XChaCha20Poly1305::new(&key.into()))
    }

    fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let nonce: [u8; 24] = secret::random_bytes();
        let ct = self
            .0
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad })
            .expect("XChaCha20-Poly1305 encryption of a small buffer cannot fail");
        let mut out = Vec::with_capacity(1 + nonce.len() + ct.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    fn open(&self, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        let (&version, rest) = sealed.split_first()?;
        if version != SEAL_VERSION || rest.len() < 24 + 16 {
            return None;
        }
        let (nonce, ct) = rest.split_at(24);
        self.0.decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad }).ok()
    }
}

/// The keys derived from the secret key for 2FA. `Debug` shows nothing.
pub struct Keys {
    totp: Sealer,
    pending: Sealer,
    recovery: [u8; 32],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("mfa::Keys(..)")
    }
}

impl Keys {
    pub fn new(secret: &SecretKey) -> Self {
        Keys {
            totp: Sealer::new(secret.derive("sessiongate totp-secret v1")),
            pending: Sealer::new(secret.derive("sessiongate mfa-pending v1")),
            recovery: secret.derive("sessiongate recovery-code v1"),
        }
    }

    /// Seal a TOTP secret for storage in `user_id`'s row.
    pub fn seal_totp(&self, user_id: i64, secret: &[u8]) -> Vec<u8> {
        self.totp.seal(secret, &aad_user(user_id))
    }

    /// Open a stored TOTP secret; None when it was sealed for another user or another key.
    pub fn open_totp(&self, user_id: i64, sealed: &[u8]) -> Option<Vec<u8>> {
        self.totp.open(sealed, &aad_user(user_id))
    }

    /// The stored form of a recovery code: HMAC-SHA-256 over the user id and the normalised code.
    /// None when `code` cannot be a recovery code.
    pub fn recovery_hash(&self, user_id: i64, code: &str) -> Option<String> {
        let code = normalize_recovery_code(code)?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.recovery).expect("any key length");
        mac.update(&aad_user(user_id));
        mac.update(code.as_bytes());
        Some(hex::encode(mac.finalize().into_bytes()))
    }

    /// The cookie value for a pending two-step login.
    pub fn seal_pending(&self, pending: &Pending) -> String {
        use base64::Engine;
        let json = serde_json::to_vec(pending).expect("serialisable");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.pending.seal(&json, b"mfa-pending"))
    }

    /// A pending login from its cookie value, if authentic and not expired at `now` (Unix seconds).
    pub fn open_pending(&self, value: &str, now: i64) -> Option<Pending> {
        use base64::Engine;
        if value.len() > 512 {
            return None;
        }
        let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(value).ok()?;
        let json = self.pending.open(&sealed, b"mfa-pending")?;
        let p: Pending = serde_json::from_slice(&json).ok()?;
        (p.expires > now).then_some(p)
    }
}

fn aad_user(user_id: i64) -> [u8; 8] {
    user_id.to_be_bytes()
}

/// "Password verified, second factor pending": what the `sessiongate_mfa` cookie carries, sealed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    #[serde(rename = "u")]
    pub user_id: i64,
    /// The login's `remember` choice, applied when the session is finally created.
    #[serde(rename = "r")]
    pub remember: bool,
    /// Unix seconds.
    #[serde(rename = "x")]
    pub expires: i64,
    /// [`password_fingerprint`] of the hash the password was verified against.
    #[serde(rename = "h")]
    pub password: String,
    /// The user's last login (Unix ms) when the password was verified. The second step claims
    /// the login only while it is unchanged ([`crate::users::UserStore::claim_login`]), so the
    /// cookie opens one session, and none after any other login.
    #[serde(rename = "l")]
    pub last_login: Option<i64>,
}

impl Pending {
    pub fn new(
        user_id: i64,
        remember: bool,
        password_hash: &str,
        last_login: Option<chrono::DateTime<chrono::Utc>>,
        now: i64,
    ) -> Self {
        Pending {
            user_id,
            remember,
            expires: now + PENDING_TTL.as_secs() as i64,
            password: password_fingerprint(password_hash),
            last_login: last_login.map(|t| t.timestamp_millis()),
        }
    }

    /// Whether `user` is still the one this pending login was for: same password, no login since.
    pub fn matches(&self, user: &crate::users::User) -> bool {
        user.id == self.user_id
            && password_fingerprint(&user.password_hash) == self.password
            && user.last_login.map(|t| t.timestamp_millis()) == self.last_login
    }
}

pub use crate::password::password_fingerprint;

pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// A fresh 160-bit TOTP secret (RFC 4226's recommended size).
pub fn new_secret() -> Vec<u8> {
    secret::random_bytes::<20>().to_vec()
}

/// The TOTP generator for `secret`, labelled `issuer:account` for authenticator apps.
pub fn totp(secret: Vec<u8>, issuer: &str, account: &str) -> Option<totp_rs::Totp> {
    // Labels may not contain ':' (the otpauth label separator).
    let clean = |s: &str| s.replace(':', " ");
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(DIGITS as u8)
        .with_skew(1)
        .with_step_duration(STEP)
        .with_secret(secret)
        .with_account_name(clean(account))
        .with_issuer(Some(clean(issuer)))
        .build()
        .ok()
}

/// The time step `code` matches at `now` (Unix seconds), within ±1 step; None when it matches
/// none. Spaces in the code are ignored ("123 456").
pub fn check(totp: &totp_rs::Totp, code: &str, now: u64) -> Option<u64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    totp.check(&code, now)
}

/// The `otpauth://totp/...` URL authenticator apps import.
pub fn otpauth_url(totp: &totp_rs::Totp) -> Option<String> {
    totp.to_url().ok()
}

/// A QR code of `text` as a standalone SVG document.
pub fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .dark_color(qrcode::render::svg::Color("#000000"))
            .light_color(qrcode::render::svg::Color("#ffffff"))
            .build(),
    )
}

/// [`RECOVERY_CODES`] fresh codes, `xxxxx-xxxxx` from a 32-letter alphabet (50 bits each).
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let bytes: [u8; 10] = secret::random_bytes();
            let chars: String = bytes.iter().map(|b| RECOVERY_ALPHABET[usize::from(b & 31)] as char).collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect()
}

/// Lower-cased, without spaces and dashes, with the look-alikes `o`→`0` and `i`/`l`→`1`; None
/// unless exactly 10 letters of the alphabet remain.
pub fn normalize_recovery_code(code: &str) -> Option<String> {
    let s: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            c => c,
        })
        .collect();
    (s.len() == 10 && s.bytes().all(|b| RECOVERY_ALPHABET.contains(&b))).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::new(&SecretKey::from_config("test secret key"))
    }

    #[test]
    fn totp_secrets_seal_per_user() {
        let k = keys();
        let secret = new_secret();
        let sealed = k.seal_totp(7, &secret);
        assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_slice()), "not in clear");
        assert_eq!(k.open_totp(7, &sealed), Some(secret.clone()));
        assert_eq!(k.open_totp(8, &sealed), None, "bound to the user id");
        let other = Keys::new(&SecretKey::from_config("another key"));
        assert_eq!(other.open_totp(7, &sealed), None, "bound to the secret key");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(k.open_totp(7, &tampered), None);
        assert_ne!(k.seal_totp(7, &secret), sealed, "random nonce");
    }

    #[test]
    fn codes_match_their_step_with_one_step_of_skew() {
        let t = totp(new_secret(), "example.com", "alice").unwrap();
        let now = 1_800_000_015;
        let step = now / STEP;
        let code = t.generate(now).to_string();
        assert_eq!(check(&t, &code, now), Some(step));
        assert_eq!(check(&t, &format!("{} {}", &code[..3], &code[3..]), now), Some(step));
        assert_eq!(check(&t, &code, now + STEP), Some(step), "one step late is fine");
        assert_eq!(check(&t, &code, now + 3 * STEP), None);
        assert_eq!(check(&t, "12345", now), None);
        assert_eq!(check(&t, "abcdef", now), None);
        let url = otpauth_url(&t).unwrap();
        assert!(url.starts_with("otpauth://totp/example.com:alice?"), "{url}");
        let svg = qr_svg(&url).unwrap();
        assert!(svg.contains("<svg") && svg.contains("</svg>"));
    }

    #[test]
    fn recovery_codes() {
        let k = keys();
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        let c = &codes[0];
        assert_eq!(c.len(), 11);
        let h = k.recovery_hash(1, c).unwrap();
        assert_eq!(k.recovery_hash(1, &c.to_uppercase().replace('-', " ")), Some(h.clone()));
        assert_ne!(k.recovery_hash(2, c), Some(h));
        assert_eq!(k.recovery_hash(1, "short"), None);
        assert_eq!(normalize_recovery_code("abcde-fghuu"), None, "'u' is not in the alphabet");
        assert_eq!(normalize_recovery_code("ABCDE-FGHIO").as_deref(), Some("abcdefgh10"), "look-alikes mapped");
    }

    #[test]
    fn pending_state_is_sealed_and_expires() {
        let k = keys();
        let p = Pending::new(3, true, "$argon2id$hash", None, unix_now());
        let v = k.seal_pending(&p);
        assert!(!v.contains("argon2"));
        assert_eq!(k.open_pending(&v, unix_now()), Some(p.clone()));
        assert_eq!(k.open_pending(&v, p.expires), None, "expired");
        assert_eq!(k.open_pending("garbage", unix_now()), None);
        assert_ne!(p.password, password_fingerprint("$argon2id$other"));
    }
}

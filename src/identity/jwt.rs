//! Signed identity (`identity.jwt = true`): a short-lived EdDSA JWT in `X-Auth-Assertion`, so a
//! backend can verify who the user is without trusting the network between it and the gateway.
//!
//! ```text
//! header  {"alg":"EdDSA","typ":"JWT","kid":"<RFC 7638 thumbprint>"}
//! claims  {"iss":"<public_url origin>","sub":"42","name":"alice","email":"a@example.com",
//!          "email_verified":true,"sid":"<public session id>","aud":"<upstream origin>","iat":…,"exp":iat+60}
//! ```
//! The public keys are served as a JWK Set at `GET /.well-known/jwks.json`. A backend checks the
//! signature with the key named by `kid`, then `aud` (its own origin as written in the route's
//! `upstream`, or `public_url` for forward-auth answers) and `exp`.
//!
//! ## Keys and rotation
//! Keys live in `data_dir/jwt-keys/` as PKCS#8 PEM files (mode 0600) named
//! `ed25519-<unix seconds created>-<random>.pem`; the first is created on first use. When the
//! current key is older than [`super::KEY_PERIOD`] (30 days) a new one is created; the previous
//! public key stays in the JWK Set for one more period, so assertions and cached key sets stay
//! valid across the switch, and older files are removed. The directory is re-read at most once a
//! minute, so instances sharing `data_dir` converge on the same newest key.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::secret;
use crate::session::Authenticated;

/// Seconds an assertion is valid.
pub const LIFETIME: i64 = 60;

/// How often the key directory is re-read.
const RECHECK: Duration = Duration::from_secs(60);

/// The claims of an identity assertion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The user id, as a string (RFC 7519 `sub` is a string).
    pub sub: String,
    /// The username.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Beside `email` (the OpenID Connect claim): whether the address was proved by a mailed
    /// link. An unverified address is only what the user typed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// The session's public id.
    pub sid: String,
    /// How the user logged in (RFC 8176 values, [`crate::session::AuthMethods::amr`]); absent
    /// for sessions older than that record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

impl Claims {
    pub fn new(issuer: &str, auth: &Authenticated, audience: &str, now: i64) -> Self {
        Claims {
            iss: issuer.to_owned(),
            sub: auth.user.id.to_string(),
            name: auth.user.username.clone(),
            email: auth.user.email.clone(),
            email_verified: auth.user.email.as_ref().map(|_| auth.user.email_verified),
            sid: auth.session.id.clone(),
            amr: auth.session.methods.amr().into_iter().map(str::to_owned).collect(),
            aud: audience.to_owned(),
            iat: now,
            exp: now + LIFETIME,
        }
    }
}

/// One signing key and its public identity.
pub struct Key {
    pub kid: String,
    pub created: i64,
    signing: SigningKey,
}

impl Key {
    fn new(signing: SigningKey, created: i64) -> Self {
        Key { kid: thumbprint(&x(&signing)), created, signing }
    }

    /// The public key as a JWK (RFC 8037).
    pub fn jwk(&self) -> Value {
        json!({ "kty": "OKP", "crv": "Ed25519", "x": x(&self.signing), "kid": self.kid, "use": "sig", "alg": "EdDSA" })
    }

    /// `header.claims.signature`, each base64url without padding.
    // Hand-written: `jsonwebtoken::encode` re-derives the key each call, 1.94× the instructions (bench/fixes.md 6).
    pub fn sign(&self, claims: &Claims) -> String {
        let header = json!({ "alg": "EdDSA", "typ": "JWT", "kid": self.kid });
        let input = format!("{}.{}", b64_json(&header), b64_json(claims));
        let sig = self.signing.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key").field("kid", &self.kid).field("created", &self.created).finish_non_exhaustive()
    }
}

fn b64_json(v: &impl Serialize) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("claims serialise"))
}

fn x(k: &SigningKey) -> String {
    URL_SAFE_NO_PAD.encode(k.verifying_key().as_bytes())
}

/// RFC 7638 JWK thumbprint: SHA-256 over the required members in lexicographic order.
fn thumbprint(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The keys in use: `current` signs; `previous` is still published.
#[derive(Debug)]
pub struct Keys {
    pub current: Key,
    pub previous: Option<Key>,
}

impl Keys {
    /// The JWK Set served at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = std::iter::once(&self.current).chain(&self.previous).map(Key::jwk).collect();
        json!({ "keys": keys })
    }
}

/// The key directory, read lazily and cached.
pub struct KeyRing {
    dir: PathBuf,
    period: Duration,
    cache: Mutex<Option<(Arc<Keys>, Instant)>>,
}

impl KeyRing {
    pub fn new(dir: PathBuf, period: Duration) -> Self {
        KeyRing { dir, period, cache: Mutex::new(None) }
    }

    /// The current keys, re-reading the directory (and rotating) when the cache is stale.
    pub fn keys(&self) -> io::Result<Arc<Keys>> {
        let now = chrono::Utc::now().timestamp();
        let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((keys, at)) = &*cache
            && at.elapsed() < RECHECK
            && !self.too_old(keys.current.created, now)
        {
            return Ok(keys.clone());
        }
        // Small files, read at most once a minute: blocking here is cheaper than a thread hop.
        let keys = Arc::new(self.load(now)?);
        *cache = Some((keys.clone(), Instant::now()));
        Ok(keys)
    }

    pub fn sign(&self, claims: &Claims) -> io::Result<String> {
        Ok(self.keys()?.current.sign(claims))
    }

    fn too_old(&self, created: i64, now: i64) -> bool {
        now.saturating_sub(created) >= i64::try_from(self.period.as_secs()).unwrap_or(i64::MAX)
    }

    /// Read the directory as of `now` (unix seconds): create a key when there is none or the
    /// newest is too old, and remove keys older than the previous one.
    pub fn load(&self, now: i64) -> io::Result<Keys> {
        let mut files = self.list()?;
        if files.last().is_none_or(|(created, _)| self.too_old(*created, now)) {
            let signing = SigningKey::from_bytes(&secret::random_bytes::<32>());
            let pem = signing.to_pkcs8_pem(LineEnding::LF).map_err(io::Error::other)?;
            let name = format!("ed25519-{now}-{}.pem", hex::encode(secret::random_bytes::<4>()));
            secret::write_private(&self.dir.join(&name), pem.as_bytes())?;
            tracing::info!(dir = %self.dir.display(), "identity.jwt: created a new signing key");
            files = self.list()?;
        }
        let n = files.len();
        for (_, old) in files.iter().take(n.saturating_sub(2)) {
            if let Err(e) = std::fs::remove_file(old) {
                tracing::warn!(file = %old.display(), error = %e, "identity.jwt: could not remove a retired key");
            }
        }
        let read = |(created, path): &(i64, PathBuf)| -> io::Result<Key> {
            let pem = std::fs::read_to_string(path)?;
            let signing = SigningKey::from_pkcs8_pem(&pem)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display())))?;
            Ok(Key::new(signing, *created))
        };
        let current = read(files.last().expect("created above"))?;
        let previous = if n >= 2 { Some(read(&files[n - 2])?) } else { None };
        Ok(Keys { current, previous })
    }

    /// Key files, oldest first.
    fn list(&self) -> io::Result<Vec<(i64, PathBuf)>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut files = Vec::new();
        for entry in entries {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let created = name
                .strip_prefix("ed25519-")
                .and_then(|r| r.strip_suffix(".pem"))
                .and_then(|r| r.split('-').next())
                .and_then(|t| t.parse::<i64>().ok());
            if let Some(created) = created {
                files.push((created, path));
            }
        }
        files.sort();
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signature, VerifyingKey};

    use super::*;

    fn auth() -> Authenticated {
        Authenticated::for_tests("s")
    }

    /// Verify a compact JWT against a JWK Set, as a backend would; returns the claims.
    fn verify(token: &str, jwks: &Value) -> Result<Claims, String> {
        let mut parts = token.split('.');
        let (h, c, s) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap();
        assert_eq!(header["alg"], "EdDSA");
        assert_eq!(header["typ"], "JWT");
        let jwk = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == header["kid"]).ok_or("unknown kid")?;
        let x: [u8; 32] = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap().try_into().unwrap();
        let key = VerifyingKey::from_bytes(&x).unwrap();
        let sig = Signature::from_slice(&URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap();
        key.verify_strict(format!("{h}.{c}").as_bytes(), &sig).map_err(|e| e.to_string())?;
        Ok(serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).unwrap()).unwrap())
    }

    #[test]
    fn signs_and_verifies_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::new(dir.path().join("jwt-keys"), super::super::KEY_PERIOD);
        let mut a = auth();
        a.session.methods = crate::session::AuthMethods::of([crate::session::AuthMethod::Passkey]);
        let claims = Claims::new("http://gw", &a, "http://127.0.0.1:8000", 1_700_000_000);
        let token = ring.sign(&claims).unwrap();
        let jwks = ring.keys().unwrap().jwks();
        let got = verify(&token, &jwks).unwrap();
        assert_eq!(got, claims);
        assert_eq!(got.amr, ["pop", "user", "mfa"], "how the user logged in (RFC 8176)");
        assert_eq!(got.sub, "42");
        assert_eq!(got.email_verified, Some(false), "beside the address: whether it was proved");
        assert_eq!(got.exp - got.iat, 60);
        let jwk = &jwks["keys"][0];
        assert_eq!(
            (jwk["kty"].as_str(), jwk["crv"].as_str(), jwk["alg"].as_str(), jwk["use"].as_str()),
            (Some("OKP"), Some("Ed25519"), Some("EdDSA"), Some("sig"))
        );

        // Tampering with the claims breaks the signature.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = b64_json(&Claims { sub: "1".into(), ..claims });
        parts[1] = &forged;
        assert!(verify(&parts.join("."), &jwks).is_err());
    }

    #[test]
    fn key_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::new(dir.path().join("k"), super::super::KEY_PERIOD);
        let a = ring.load(1000).unwrap();
        let b = ring.load(2000).unwrap();
        assert_eq!(a.current.kid, b.current.kid);
        assert!(b.previous.is_none());
        let files: Vec<_> = std::fs::read_dir(dir.path().join("k")).unwrap().collect();
        assert_eq!(files.len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = files[0].as_ref().unwrap().metadata().unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn rotation_keeps_the_previous_key_for_one_period() {
        let dir = tempfile::tempdir().unwrap();
        let period = Duration::from_secs(100);
        let ring = KeyRing::new(dir.path().to_path_buf(), period);
        let first = ring.load(1000).unwrap();
        let token = first.current.sign(&Claims::new("i", &auth(), "a", 1000));

        let second = ring.load(1100).unwrap();
        assert_ne!(second.current.kid, first.current.kid);
        assert_eq!(second.previous.as_ref().unwrap().kid, first.current.kid);
        assert!(verify(&token, &second.jwks()).is_ok(), "old assertions verify during the overlap");
        assert_eq!(second.jwks()["keys"].as_array().unwrap().len(), 2);

        let third = ring.load(1200).unwrap();
        assert_eq!(third.previous.as_ref().unwrap().kid, second.current.kid);
        assert!(verify(&token, &third.jwks()).is_err(), "the first key is retired");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "retired key files are removed");
    }

    #[test]
    fn thumbprint_matches_rfc_8037_example() {
        // RFC 8037 appendix A.3.
        assert_eq!(
            thumbprint("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }
}

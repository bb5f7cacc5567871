//! Password hashing and verification: Argon2id in a bounded blocking pool, Django's formats for
//! imported or shared users, and the password policy.
//!
//! One Argon2id hash costs tens of milliseconds and ~19 MiB, so hashing never runs on the async
//! runtime: a semaphore bounds how many run at once (one per core) and a second bounds how many
//! may wait. When the queue is full the caller gets [`PasswordError::Overloaded`] (503) at once
//! instead of unbounded latency — a login flood cannot stall whoami or proxied requests.

pub mod common;
pub mod django;
pub mod policy;

use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("too many password operations queued")]
    Overloaded,
    #[error("password hashing failed: {0}")]
    Internal(String),
}

pub use crate::config::Argon2Params;

/// Whether a stored hash can ever verify a password: not empty and not Django's unusable marker
/// (`!…`, an account that logs in only otherwise, e.g. with a passkey or a provider).
pub fn usable(hash: &str) -> bool {
    !hash.is_empty() && !hash.starts_with('!')
}

/// The format a user store's password hashes must be written in
/// ([`crate::users::UserStore::hash_format`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashFormat {
    /// sessiongate's own: an Argon2id PHC string with `users.argon2`'s parameters.
    Argon2id,
    /// Django's `pbkdf2_sha256$<iterations>$<salt>$<digest>`, for a table Django still reads
    /// (`users.store = "django"`): Django keeps verifying what sessiongate writes.
    DjangoPbkdf2Sha256 { iterations: u32 },
}

/// Hashes and verifies passwords off the async runtime with bounded concurrency.
///
/// Configured for one [`HashFormat`] (the user store's, see [`Passwords::with_format`]): every
/// hash it writes — `user add`/`passwd`, signup, resets, upgrades after login — is in that
/// format, and unknown users cost the time of a hash in that format.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
    format: HashFormat,
    workers: Arc<Semaphore>,
    queue: Arc<Semaphore>,
    /// A real hash of a random password: unknown users are verified against it so they cost the
    /// same time as wrong passwords.
    dummy_hash: Arc<str>,
    /// The same for [`HashFormat::DjangoPbkdf2Sha256`], computed on first need.
    django_dummy: Arc<OnceLock<String>>,
}

impl Passwords {
    pub fn new(params: &Argon2Params) -> Result<Self, String> {
        let params = params.build()?;
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let dummy = hash_sync(&params, &crate::secret::random_b64(16)).map_err(|e| e.to_string())?;
        Ok(Passwords {
            params,
            format: HashFormat::Argon2id,
            workers: Arc::new(Semaphore::new(workers)),
            queue: Arc::new(Semaphore::new(workers * 16)),
            dummy_hash: dummy.into(),
            django_dummy: Arc::new(OnceLock::new()),
        })
    }

    /// At most `n` operations may wait for a worker (`users.hash_queue`); 0 keeps the default
    /// (16 per worker). Beyond it callers get [`PasswordError::Overloaded`] at once.
    #[must_use]
    pub fn with_queue(mut self, n: usize) -> Self {
        if n > 0 {
            self.queue = Arc::new(Semaphore::new(n));
        }
        self
    }

    /// Write (and time unknown users) in `format` instead of Argon2id.
    #[must_use]
    pub fn with_format(mut self, format: HashFormat) -> Self {
        self.format = format;
        self
    }

    /// The format [`Passwords::hash`] writes.
    pub fn format(&self) -> HashFormat {
        self.format
    }

    /// Run `f` on a thread of its own at a lower scheduling priority (nice +10 on Linux): with
    /// every core hashing during a login flood, request handling still gets a core at once
    /// (whoami p99 under a flood: bench/REPORT.md), while idle cores still hash at full speed.
    /// A thread per hash rather than tokio's blocking pool, whose threads also run other work
    /// and could not get their priority back; starting one costs far less than a hash.
    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, PasswordError> {
        let _queued = self.queue.clone().try_acquire_owned().map_err(|_| PasswordError::Overloaded)?;
        let _working =
            self.workers.clone().acquire_owned().await.map_err(|e| PasswordError::Internal(e.to_string()))?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("sessiongate-hash".into())
            .spawn(move || {
                lower_priority();
                let _ = tx.send(f());
            })
            .map_err(|e| PasswordError::Internal(e.to_string()))?;
        rx.await.map_err(|_| PasswordError::Internal("the hashing thread panicked".into()))
    }

    /// A hash of `password` in the configured format ([`Passwords::format`]).
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        self.hash_as(password, self.format).await
    }

    /// A hash of `password` in `format`: an Argon2id PHC string, or Django's `pbkdf2_sha256`.
    pub async fn hash_as(&self, password: String, format: HashFormat) -> Result<String, PasswordError> {
        let params = self.params.clone();
        self.run(move || match format {
            HashFormat::Argon2id => hash_sync(&params, &password).map_err(|e| e.to_string()),
            HashFormat::DjangoPbkdf2Sha256 { iterations } => Ok(django::encode_pbkdf2_sha256(&password, iterations)),
        })
        .await?
        .map_err(PasswordError::Internal)
    }

    /// Check `password` against `stored` (Argon2 PHC or a Django format). `None` (no such user)
    /// and unusable or unknown hashes verify against the dummy hash so they take the same time,
    /// then answer false.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, PasswordError> {
        let (dummy, django_dummy, format) = (self.dummy_hash.clone(), self.django_dummy.clone(), self.format);
        self.run(move || match stored {
            Some(h) if h.starts_with("$argon2") => verify_phc(&password, &h),
            Some(h) if django::identify(&h).is_some() => django::verify(&password, &h),
            _ => {
                match format {
                    HashFormat::Argon2id => {
                        verify_phc(&password, &dummy);
                    }
                    HashFormat::DjangoPbkdf2Sha256 { iterations } => {
                        let dummy = django_dummy
                            .get_or_init(|| django::encode_pbkdf2_sha256(&crate::secret::random_b64(16), iterations));
                        std::hint::black_box(django::verify(&password, dummy));
                    }
                }
                false
            }
        })
        .await
    }

    /// Whether a stored hash should be replaced by one in the configured format with the current
    /// parameters: imported Django hashes or older Argon2 costs for Argon2id; for Django's
    /// format anything but `pbkdf2_sha256` with the configured iterations (as Django's own
    /// `must_update`). Callers decide whether to act on it
    /// ([`crate::users::UserStore::rehash_on_login`]).
    pub fn needs_rehash(&self, stored: &str) -> bool {
        if let HashFormat::DjangoPbkdf2Sha256 { iterations } = self.format {
            let mut parts = stored.split('$');
            return parts.next() != Some("pbkdf2_sha256") || parts.next() != Some(iterations.to_string().as_str());
        }
        match PasswordHash::new(stored) {
            Ok(h) => {
                h.algorithm.as_str() != "argon2id"
                    || Params::try_from(&h).map_or(true, |p| {
                        p.m_cost() != self.params.m_cost()
                            || p.t_cost() != self.params.t_cost()
                            || p.p_cost() != self.params.p_cost()
                    })
            }
            Err(_) => true,
        }
    }
}

/// Lower the calling thread's scheduling priority (Linux: nice +10; elsewhere nothing).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10);
    }
}

fn hash_sync(params: &Params, password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::encode_b64(&crate::secret::random_bytes::<16>())?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

fn verify_phc(password: &str, phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    // Refuse absurd costs from a tampered or imported hash instead of burning a core on it.
    if Params::try_from(&hash).is_ok_and(|p| p.m_cost() > 1 << 20 || p.t_cost() > 64) {
        return false;
    }
    Argon2::default().verify_password(password.as_bytes(), &hash).is_ok()
}

/// A short digest of a stored password hash: changes whenever the password does.
pub fn password_fingerprint(password_hash: &str) -> String {
    hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(password_hash.as_bytes())[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Passwords {
        Passwords::new(&Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 }).unwrap()
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let p = cheap();
        let h = p.hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert!(p.verify("correct horse".into(), Some(h.clone())).await.unwrap());
        assert!(!p.verify("correct horse!".into(), Some(h.clone())).await.unwrap());
        assert!(!p.needs_rehash(&h));
    }

    #[tokio::test]
    async fn unknown_user_and_garbage_hashes_never_verify() {
        let p = cheap();
        assert!(!p.verify("x".into(), None).await.unwrap());
        for bad in ["", "!unusable", "$argon2id$garbage", "plaintext", "md5$$"] {
            assert!(!p.verify("x".into(), Some(bad.into())).await.unwrap(), "{bad}");
        }
    }

    #[tokio::test]
    async fn django_hash_verifies_and_wants_rehash() {
        let p = cheap();
        let h = "pbkdf2_sha1$100000$seasalt1234567890abcde$8D2Vl/WTKu+ZWPaLCNDSrrchRAI=";
        assert!(p.verify("correct horse battery staple".into(), Some(h.into())).await.unwrap());
        assert!(p.needs_rehash(h));
    }

    #[tokio::test]
    async fn django_format_writes_django_hashes() {
        let p = cheap().with_format(HashFormat::DjangoPbkdf2Sha256 { iterations: 1000 });
        let h = p.hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("pbkdf2_sha256$1000$"), "{h}");
        assert!(django::verify("correct horse", &h));
        assert!(p.verify("correct horse".into(), Some(h.clone())).await.unwrap());
        assert!(!p.needs_rehash(&h));
        assert!(p.needs_rehash(&django::encode_pbkdf2_sha256("x", 999)));
        assert!(p.needs_rehash("pbkdf2_sha1$1000$salt$digest"));
        let argon = p.hash_as("x".into(), HashFormat::Argon2id).await.unwrap();
        assert!(argon.starts_with("$argon2id$"));
        assert!(p.needs_rehash(&argon));
        // Unknown users and unusable hashes still answer false (against the Django-format dummy).
        assert!(!p.verify("x".into(), None).await.unwrap());
        assert!(!p.verify("x".into(), Some("!unusable".into())).await.unwrap());
        assert!(p.django_dummy.get().is_some_and(|d| d.starts_with("pbkdf2_sha256$1000$")));
    }

    #[tokio::test]
    async fn full_queue_is_overloaded_not_slow() {
        let p = cheap();
        let n = p.queue.available_permits();
        let _held = p.queue.clone().try_acquire_many_owned(n as u32).unwrap();
        assert!(matches!(p.hash("x".into()).await, Err(PasswordError::Overloaded)));
    }
}

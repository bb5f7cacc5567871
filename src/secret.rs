//! Randomness and the gateway's long-lived secret key.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// `n` bytes from the OS CSPRNG. Panics only if the OS has no entropy source, which leaves
/// nothing secure to do anyway.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("OS random number generator unavailable");
    buf
}

/// `n` random bytes, base64url without padding.
pub fn random_b64(n: usize) -> String {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).expect("OS random number generator unavailable");
    URL_SAFE_NO_PAD.encode(buf)
}

/// The secret key: signs nothing by itself, but keys derived from it protect state at rest.
/// `Debug` redacts it.
#[derive(Clone)]
pub struct SecretKey(Vec<u8>);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    pub fn from_config(value: &str) -> Self {
        SecretKey(value.as_bytes().to_vec())
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// A 256-bit key for one purpose, derived with HKDF-SHA-256 (RFC 5869): keys for different
    /// `purpose` labels are independent, and none reveals the secret key.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"sessiongate key derivation"), &self.0);
        let mut out = [0u8; 32];
        hk.expand(purpose.as_bytes(), &mut out).expect("32 bytes is a valid HKDF-SHA-256 length");
        out
    }

    /// The key a configuration names: `secret_key`, or `data_dir/secret.key` (created when
    /// missing).
    pub fn for_settings(settings: &crate::config::Settings) -> std::io::Result<Self> {
        if settings.raw.secret_key.is_empty() {
            Self::load_or_create(&settings.data_dir.join("secret.key"))
        } else {
            Ok(Self::from_config(&settings.raw.secret_key))
        }
    }

    /// Read `path`, or create it with 32 fresh random bytes (base64url) and mode 0600.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(s) if !s.trim().is_empty() => return Ok(SecretKey(s.trim().as_bytes().to_vec())),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let value = random_b64(32);
        write_private(path, value.as_bytes())?;
        Ok(SecretKey(value.into_bytes()))
    }
}

/// Write a file readable only by its owner (created with mode 0600, never widened).
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

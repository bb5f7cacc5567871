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

/// Whether `raw` could be [`random_b64`]`(n)`: its exact length and alphabet. Tokens that came
/// back from a client are checked so before any store sees them.
pub fn is_random_b64(raw: &str, n: usize) -> bool {
    raw.len() == (n * 4).div_ceil(3) && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
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

/// Create `dir` (and missing parents) readable only by its owner (0700): whatever the umask,
/// the data directory holds the database, the secret key and mail with live tokens.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// Create `path` empty with mode 0600 unless it exists (SQLite then keeps the mode, and gives
/// its `-wal` and `-shm` files the same).
pub fn private_file(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        private_dir(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Write a file readable only by its owner (created with mode 0600, never widened).
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        private_dir(dir)?;
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

#[cfg(test)]
mod shape_tests {
    #[test]
    fn random_b64_has_the_shape_is_random_b64_checks() {
        for n in [16, 32] {
            assert!(super::is_random_b64(&super::random_b64(n), n));
        }
        assert!(!super::is_random_b64(&super::random_b64(31), 32));
        assert!(!super::is_random_b64(&format!("{}+", &super::random_b64(32)[1..]), 32));
    }
}

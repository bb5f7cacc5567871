//! `sessiongate dev-cert`: a local CA and a server certificate for testing HTTPS and
//! `SameSite=None` cookies on a development machine. Never for production.

use std::path::Path;

use anyhow::Context;
use base64::Engine;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
use sha2::{Digest, Sha256};

/// What `generate` wrote.
pub struct DevCert {
    pub ca_cert: std::path::PathBuf,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    /// base64(SHA-256(SubjectPublicKeyInfo)) of the server key, for Chromium's
    /// `--ignore-certificate-errors-spki-list`.
    pub spki_sha256: String,
}

pub fn generate(hosts: &[String], out: &Path) -> anyhow::Result<DevCert> {
    anyhow::ensure!(!hosts.is_empty(), "give at least one --host");
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;

    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "sessiongate development CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;

    let mut leaf = CertificateParams::new(hosts.to_vec()).context("--host must be DNS names or IP addresses")?;
    leaf.distinguished_name.push(DnType::CommonName, hosts[0].clone());
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    let key = KeyPair::generate()?;
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key)?;

    let files = DevCert {
        ca_cert: out.join("ca.pem"),
        cert: out.join("cert.pem"),
        key: out.join("key.pem"),
        spki_sha256: base64::engine::general_purpose::STANDARD.encode(Sha256::digest(key.public_key_der())),
    };
    std::fs::write(&files.ca_cert, ca_cert.pem())?;
    crate::secret::write_private(&out.join("ca-key.pem"), ca_key.serialize_pem().as_bytes())?;
    // The chain (leaf + CA) so clients that only trust the CA can build it.
    std::fs::write(&files.cert, format!("{}{}", cert.pem(), ca_cert.pem()))?;
    crate::secret::write_private(&files.key, key.serialize_pem().as_bytes())?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    #[test]
    fn writes_a_loadable_pair() {
        let dir = tempfile::tempdir().unwrap();
        let c = super::generate(&["app.example.test".into(), "127.0.0.1".into()], dir.path()).unwrap();
        assert!(crate::listener::ReloadableTls::load(&c.cert, &c.key).is_ok());
        assert_eq!(c.spki_sha256.len(), 44);
    }
}

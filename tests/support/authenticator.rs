//! A software WebAuthn authenticator (ES256, "none" attestation) for the passkey API tests: it
//! answers the gateway's creation and request options the way a browser and a platform
//! authenticator would, and can be told to misbehave (another origin, no user verification, a
//! cloned key with a lower sign count). Chromium's virtual authenticator covers the browser
//! side in tests/e2e.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{DerSignature, SigningKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

#[derive(Clone)]
pub struct Authenticator {
    key: SigningKey,
    pub credential_id: Vec<u8>,
    /// The user handle the gateway gave at registration.
    pub user_handle: Vec<u8>,
    pub counter: u32,
    /// The page origin the browser would write into clientDataJSON.
    pub origin: String,
    /// Whether the user is verified (PIN, biometric) in the next ceremony.
    pub verify_user: bool,
}

fn b64(b: &[u8]) -> String {
    B64.encode(b)
}

fn unb64(v: &Value) -> Vec<u8> {
    B64.decode(v.as_str().expect("base64url string")).expect("base64url")
}

/// CBOR head of major type `major` with argument `n` (RFC 8949 §3).
fn head(out: &mut Vec<u8>, major: u8, n: usize) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend([m | 24, n as u8]),
        _ => out.extend([m | 25, (n >> 8) as u8, n as u8]),
    }
}

fn text(out: &mut Vec<u8>, s: &str) {
    head(out, 3, s.len());
    out.extend(s.as_bytes());
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    head(out, 2, b.len());
    out.extend(b);
}

/// A CBOR integer key or value (small magnitudes only).
fn int(out: &mut Vec<u8>, i: i64) {
    if i >= 0 { head(out, 0, i as usize) } else { head(out, 1, (-1 - i) as usize) }
}

impl Authenticator {
    pub fn new(origin: &str) -> Self {
        let key = SigningKey::from_bytes(&sessiongate::secret::random_bytes::<32>().into()).expect("a P-256 scalar");
        Authenticator {
            key,
            credential_id: sessiongate::secret::random_bytes::<32>().to_vec(),
            user_handle: Vec::new(),
            counter: 0,
            origin: origin.to_owned(),
            verify_user: true,
        }
    }

    fn flags(&self, attested: bool) -> u8 {
        let mut f = 0x01; // user present
        if self.verify_user {
            f |= 0x04;
        }
        if attested {
            f |= 0x40;
        }
        f
    }

    fn client_data(&self, kind: &str, challenge: &Value) -> Vec<u8> {
        let c = json!({ "type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false });
        serde_json::to_vec(&c).unwrap()
    }

    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.verifying_key().to_encoded_point(false);
        let mut k = Vec::new();
        head(&mut k, 5, 5);
        int(&mut k, 1);
        int(&mut k, 2); // kty: EC2
        int(&mut k, 3);
        int(&mut k, -7); // alg: ES256
        int(&mut k, -1);
        int(&mut k, 1); // crv: P-256
        int(&mut k, -2);
        bytes(&mut k, point.x().unwrap());
        int(&mut k, -3);
        bytes(&mut k, point.y().unwrap());
        k
    }

    /// Answer `{publicKey: …}` creation options: the body of `/passkeys/register/finish`'s
    /// `credential`.
    pub fn create(&mut self, options: &Value) -> Value {
        let pk = &options["publicKey"];
        self.user_handle = unb64(&pk["user"]["id"]);
        let rp_id = pk["rp"]["id"].as_str().expect("rp.id");
        let mut auth = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth.push(self.flags(true));
        auth.extend(self.counter.to_be_bytes());
        auth.extend([0u8; 16]); // AAGUID
        auth.extend((self.credential_id.len() as u16).to_be_bytes());
        auth.extend(&self.credential_id);
        auth.extend(self.cose_key());
        let mut att = Vec::new();
        head(&mut att, 5, 3);
        text(&mut att, "fmt");
        text(&mut att, "none");
        text(&mut att, "attStmt");
        head(&mut att, 5, 0);
        text(&mut att, "authData");
        bytes(&mut att, &auth);
        let client_data = self.client_data("webauthn.create", &pk["challenge"]);
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "attestationObject": b64(&att),
                "clientDataJSON": b64(&client_data),
                "transports": ["internal"],
            },
            "clientExtensionResults": { "credProps": { "rk": true } },
        })
    }

    /// Answer `{publicKey: …}` request options (the counter moves first, as a real
    /// authenticator's does): the body of a finish's `credential`.
    pub fn get(&mut self, options: &Value) -> Value {
        let pk = &options["publicKey"];
        self.counter += 1;
        let rp_id = pk["rpId"].as_str().expect("rpId");
        let mut auth = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth.push(self.flags(false));
        auth.extend(self.counter.to_be_bytes());
        let client_data = self.client_data("webauthn.get", &pk["challenge"]);
        let mut signed = auth.clone();
        signed.extend(Sha256::digest(&client_data));
        let sig: DerSignature = self.key.sign(&signed);
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "authenticatorData": b64(&auth),
                "clientDataJSON": b64(&client_data),
                "signature": b64(sig.as_bytes()),
                "userHandle": b64(&self.user_handle),
            },
            "clientExtensionResults": {},
        })
    }
}

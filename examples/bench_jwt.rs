//! A measurement, not a product (issue 14, item 11; bench/fixes.md): the identity JWT signed by
//! the hand-written `identity::jwt::Key::sign` against the `jsonwebtoken` crate's `encode`, with
//! the same Ed25519 key (one PKCS#8 PEM file, read by both) and the same claims.
//!
//! ```text
//! cargo build --release --example bench_jwt
//! target/release/examples/bench_jwt check            # both verify with the JWK Set; same claims
//! target/release/examples/bench_jwt hand  20000      # ns/sign, wall time
//! target/release/examples/bench_jwt crate 20000
//! valgrind --tool=callgrind target/release/examples/bench_jwt hand 1000   # then 5000: the
//!                                                    # difference ÷ 4000 is instructions/sign
//! ```

use std::hint::black_box;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::Value;
use sessiongate::identity::jwt::{Claims, KeyRing, Keys};

/// When the key file says it was created: `KeyRing::load` at this time keeps it.
const CREATED: i64 = 1_700_000_000;

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    let n: u32 = args.next().map_or(20_000, |s| s.parse().expect("N is a number"));

    // One fixed key, as the gateway keeps it: a PKCS#8 PEM file in the key directory.
    let dir = tempfile::tempdir().expect("temp dir");
    let pem = SigningKey::from_bytes(&[7; 32]).to_pkcs8_pem(LineEnding::LF).expect("PEM");
    std::fs::write(dir.path().join(format!("ed25519-{CREATED}-bench.pem")), pem.as_bytes()).expect("key file");
    let keys = KeyRing::new(dir.path().to_path_buf(), sessiongate::identity::KEY_PERIOD).load(CREATED).expect("keys");

    // The crate's key and header are built once per key, as a switch would keep them.
    let encoding = EncodingKey::from_ed_pem(pem.as_bytes()).expect("jsonwebtoken reads the PEM");
    let header = Header { kid: Some(keys.current.kid.clone()), ..Header::new(Algorithm::EdDSA) };

    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        iss: "https://app.example.com".into(),
        sub: "42".into(),
        name: "alice".into(),
        email: Some("alice@example.com".into()),
        email_verified: Some(true),
        sid: "Vq3v9c1mJzH8cN0xq2Yt4w".into(),
        amr: vec!["pwd".into()],
        aud: "http://127.0.0.1:8000".into(),
        iat: now,
        exp: now + sessiongate::identity::jwt::LIFETIME,
    };
    let hand = || keys.current.sign(black_box(&claims));
    let krate = || jsonwebtoken::encode(black_box(&header), black_box(&claims), &encoding).expect("encode");

    match mode.as_str() {
        "hand" => report("hand", n, hand),
        "crate" => report("crate", n, krate),
        "check" => check(&keys, &claims, &hand(), &krate()),
        _ => {
            eprintln!("usage: bench_jwt hand|crate [N] | check");
            std::process::exit(2);
        }
    }
}

fn report(name: &str, n: u32, sign: impl Fn() -> String) {
    // Warm-up (allocator, caches) before the timed loop.
    for _ in 0..n.min(1000) {
        black_box(sign());
    }
    let start = Instant::now();
    for _ in 0..n {
        black_box(sign());
    }
    let t = start.elapsed();
    println!("{name}: {n} signs in {t:?}, {} ns/sign", (t / n).as_nanos());
}

/// Both tokens verify with the gateway's JWK Set, by hand (as `src/identity/jwt.rs`'s tests do)
/// and by `jsonwebtoken::decode` from the published JWK; headers and claims compared as JSON and
/// as bytes.
fn check(keys: &Keys, claims: &Claims, hand: &str, krate: &str) {
    let jwks = keys.jwks();
    let jwk_value = &jwks["keys"][0];
    let x: [u8; 32] = URL_SAFE_NO_PAD.decode(jwk_value["x"].as_str().unwrap()).unwrap().try_into().unwrap();
    let public = VerifyingKey::from_bytes(&x).unwrap();
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk_value.clone()).expect("our JWK parses");
    let decoding = DecodingKey::from_jwk(&jwk).expect("decoding key from our JWK");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[&claims.aud]);
    validation.set_issuer(&[&claims.iss]);

    let mut parsed = Vec::new();
    for (name, token) in [("hand", hand), ("crate", krate)] {
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3, "{name}: three parts");
        let sig = Signature::from_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).unwrap();
        public.verify_strict(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig).expect("verifies (dalek)");
        let data = jsonwebtoken::decode::<Claims>(token, &decoding, &validation).expect("verifies (jsonwebtoken)");
        assert_eq!(&data.claims, claims, "{name}: claims round-trip");
        assert_eq!(data.header.kid.as_deref(), Some(keys.current.kid.as_str()));
        let header = URL_SAFE_NO_PAD.decode(parts[0]).unwrap();
        let body = URL_SAFE_NO_PAD.decode(parts[1]).unwrap();
        println!("{name}: {} bytes", token.len());
        println!("  header {}", String::from_utf8_lossy(&header));
        println!("  claims {}", String::from_utf8_lossy(&body));
        parsed.push((header, body));
    }
    let ((h1, c1), (h2, c2)) = (&parsed[0], &parsed[1]);
    let json = |b: &[u8]| serde_json::from_slice::<Value>(b).unwrap();
    assert_eq!(json(h1), json(h2), "headers: equivalent JSON");
    assert_eq!(c1, c2, "claims: byte-identical");
    println!("headers byte-identical: {}", h1 == h2);
    println!("claims byte-identical: {}", c1 == c2);
    println!("tokens byte-identical: {}", hand == krate);
}

//! Passkeys over the API with a software authenticator (tests/support/authenticator.rs):
//! registration, both login flows, reauth, management, and the refusals — wrong origin, no user
//! verification, a replayed or cross-session ceremony, a replayed assertion, a cloned
//! authenticator, a foreign user handle, an expired ceremony, the last login method.

use std::time::Duration;

use reqwest::Response;
use serde_json::{Value, json};

use crate::harness::{Browser, Gateway, PASSWORD, USER, problem, start_with};
use crate::support::authenticator::Authenticator;

/// A gateway on `http://localhost:PORT` (WebAuthn needs a domain name, not 127.0.0.1).
async fn gateway(toml: &str) -> Gateway {
    start_with(toml, |cfg| {
        let port = cfg.server.listen.rsplit(':').next().unwrap().to_owned();
        cfg.public_url = format!("http://localhost:{port}");
    })
    .await
}

fn origin(gw: &Gateway) -> String {
    gw.url.replace("127.0.0.1", "localhost")
}

/// A browser on the gateway's `localhost` origin.
fn browser(gw: &Gateway) -> Browser {
    let mut b = Browser::new(gw);
    b.base = origin(gw);
    b
}

async fn json_of(res: Response) -> Value {
    let status = res.status();
    let body = res.text().await.unwrap();
    serde_json::from_str(&body).unwrap_or_else(|_| panic!("{status}: {body}"))
}

/// Register `auth`'s passkey for the logged-in `b`; returns the stored passkey's view.
async fn register(b: &Browser, token: &str, auth: &mut Authenticator) -> Value {
    let res = b.post("/passkeys/register/start", token, json!({ "name": "Laptop" })).await;
    assert_eq!(res.status(), 200);
    let options = json_of(res).await;
    assert_eq!(options["publicKey"]["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(options["publicKey"]["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(B64.decode(options["publicKey"]["challenge"].as_str().unwrap()).unwrap().len(), 32);
    let res = b.post("/passkeys/register/finish", token, json!({ "credential": auth.create(&options) })).await;
    assert_eq!(res.status(), 201);
    json_of(res).await
}

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

/// Start a login (optionally for `username`): the options.
async fn login_start(b: &Browser, username: Option<&str>) -> Value {
    let token = b.csrf().await;
    let body = username.map_or(json!({}), |u| json!({ "username": u }));
    let res = b.post("/login/passkey/start", &token, body).await;
    assert_eq!(res.status(), 200);
    json_of(res).await
}

async fn login_finish(b: &Browser, credential: Value) -> Response {
    let token = b.csrf().await;
    b.post("/login/passkey/finish", &token, json!({ "credential": credential })).await
}

/// Alice logged in with her password on a fresh browser, with `auth` registered.
async fn alice_with_passkey(gw: &Gateway) -> (Browser, String, Authenticator) {
    let b = browser(gw);
    let token = b.login().await;
    let mut auth = Authenticator::new(&origin(gw));
    let view = register(&b, &token, &mut auth).await;
    assert_eq!(view["name"], "Laptop");
    assert_eq!(view["discoverable"], true);
    assert_eq!(view["transports"], json!(["internal"]));
    (b, token, auth)
}

#[tokio::test]
async fn register_then_log_in_without_a_username() {
    let gw = gateway("").await;
    let (_, _, mut auth) = alice_with_passkey(&gw).await;

    let b = browser(&gw);
    let options = login_start(&b, None).await;
    assert_eq!(options["mediation"], "conditional", "suits passkey autofill");
    assert_eq!(options["publicKey"]["allowCredentials"], json!([]));
    let res = login_finish(&b, auth.get(&options)).await;
    assert_eq!(res.status(), 200);
    let body = json_of(res).await;
    assert_eq!(body["user"]["username"], USER);
    assert_eq!(body["csrfToken"].as_str().unwrap().len(), 64);
    let me = json_of(b.http.get(b.api("/session")).send().await.unwrap()).await;
    assert_eq!(me["session"]["authenticationMethods"], json!([{ "method": "passkey" }]));
    // Forward auth (and proxied upstreams) learn it too.
    let verify = b.http.get(b.api("/verify")).send().await.unwrap();
    assert_eq!(verify.status(), 200);
    assert_eq!(verify.headers()["x-auth-methods"], "passkey");
    let pw = browser(&gw);
    pw.login().await;
    let verify = pw.http.get(pw.api("/verify")).send().await.unwrap();
    assert_eq!(verify.headers()["x-auth-methods"], "password");
    // A client cannot claim a method.
    let spoof = pw.http.get(pw.api("/verify")).header("X-Auth-Methods", "passkey").send().await.unwrap();
    assert_eq!(spoof.headers().get_all("x-auth-methods").iter().collect::<Vec<_>>(), ["password"]);
    // The list shows the use.
    let list = json_of(b.http.get(b.api("/passkeys")).send().await.unwrap()).await;
    assert!(list["passkeys"][0]["lastUsedAt"].is_string(), "{list}");
}

#[tokio::test]
async fn log_in_with_a_username_lists_only_that_accounts_passkeys() {
    let gw = gateway("").await;
    let (_, _, mut auth) = alice_with_passkey(&gw).await;
    let b = browser(&gw);
    let options = login_start(&b, Some("ALICE")).await;
    let allowed = options["publicKey"]["allowCredentials"].as_array().unwrap();
    assert_eq!(allowed.len(), 1);
    assert_eq!(allowed[0]["id"], B64.encode(&auth.credential_id));
    assert!(options.get("mediation").is_none_or(Value::is_null));
    assert_eq!(login_finish(&b, auth.get(&options)).await.status(), 200);

    // An unknown name gets decoy credentials, the same each time, not an empty list.
    let decoy = login_start(&b, Some("nobody")).await;
    let again = login_start(&b, Some("nobody")).await;
    assert_eq!(decoy["publicKey"]["allowCredentials"], again["publicKey"]["allowCredentials"]);
    assert_ne!(decoy["publicKey"]["allowCredentials"][0]["id"], B64.encode(&auth.credential_id));
}

#[tokio::test]
async fn a_passkey_counts_as_both_factors() {
    let gw = gateway("").await;
    let (b, token, mut auth) = alice_with_passkey(&gw).await;
    crate::mfa::enroll(&b, &token).await;
    // A password login now needs a code…
    let res = browser(&gw).login_as(USER, PASSWORD).await;
    assert_eq!(json_of(res).await, json!({ "mfaRequired": true }));
    // …a passkey login does not.
    let fresh = browser(&gw);
    let options = login_start(&fresh, None).await;
    let res = login_finish(&fresh, auth.get(&options)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(fresh.whoami().await, 200);
}

#[tokio::test]
async fn a_passkey_satisfies_reauth() {
    let gw = gateway("").await;
    let (b, token, mut auth) = alice_with_passkey(&gw).await;
    gw.clock().advance(Duration::from_secs(3600));
    // Too long ago for a sensitive change…
    let (status, code, _) = problem(b.post("/passkeys/register/start", &token, json!({})).await).await;
    assert_eq!((status, code.as_str()), (403, "reauth_required"));
    let res = b.post("/reauth/passkey/start", &token, json!({})).await;
    assert_eq!(res.status(), 200);
    let options = json_of(res).await;
    let res = b.post("/reauth/passkey/finish", &token, json!({ "credential": auth.get(&options) })).await;
    assert_eq!(res.status(), 200);
    let token = json_of(res).await["csrfToken"].as_str().unwrap().to_owned();
    // …and now recent again.
    assert_eq!(b.post("/passkeys/register/start", &token, json!({})).await.status(), 200);
}

#[tokio::test]
async fn a_replayed_assertion_is_refused() {
    let gw = gateway("").await;
    let (_, _, mut auth) = alice_with_passkey(&gw).await;
    let b = browser(&gw);
    let options = login_start(&b, None).await;
    let assertion = auth.get(&options);
    assert_eq!(login_finish(&b, assertion.clone()).await.status(), 200);
    // The same finish again: its ceremony was taken.
    let (status, code, _) = problem(login_finish(&b, assertion.clone()).await).await;
    assert_eq!((status, code.as_str()), (400, "ceremony_expired"));
    // With a fresh ceremony the old assertion signs the wrong challenge.
    let other = browser(&gw);
    login_start(&other, None).await;
    let (status, code, _) = problem(login_finish(&other, assertion).await).await;
    assert_eq!((status, code.as_str()), (401, "invalid_credentials"));
    assert_eq!(other.whoami().await, 401);
}

#[tokio::test]
async fn parallel_finishes_of_one_ceremony_open_one_session() {
    let gw = gateway("").await;
    let (_, _, mut auth) = alice_with_passkey(&gw).await;
    let b = browser(&gw);
    let options = login_start(&b, None).await;
    let assertion = auth.get(&options);
    let token = b.csrf().await;
    let tries = (0..6).map(|_| b.post("/login/passkey/finish", &token, json!({ "credential": assertion.clone() })));
    let statuses: Vec<u16> = futures_util::future::join_all(tries).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
}

#[tokio::test]
async fn a_cloned_authenticator_is_detected() {
    let gw = gateway("").await;
    let (_, _, mut auth) = alice_with_passkey(&gw).await;
    let mut clone = auth.clone();
    for _ in 0..3 {
        let b = browser(&gw);
        let options = login_start(&b, None).await;
        assert_eq!(login_finish(&b, auth.get(&options)).await.status(), 200);
    }
    // The copy counts from where it was copied: behind the stored counter.
    let b = browser(&gw);
    let options = login_start(&b, None).await;
    let (status, code, _) = problem(login_finish(&b, clone.get(&options)).await).await;
    assert_eq!((status, code.as_str()), (401, "invalid_credentials"));
    assert!(gw.state.audit.flush(Duration::from_secs(5)).await, "audit queue flushed");
    let q = sessiongate::audit::AuditQuery { limit: 100, ..Default::default() };
    let events = gw.state.audit.table().query(&q).await.unwrap();
    let clone_event = events.iter().find(|e| e.detail.as_deref().is_some_and(|d| d.contains("cloned authenticator")));
    let e = clone_event.unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!((e.event, e.outcome), (sessiongate::audit::Event::Login, sessiongate::audit::Outcome::Failure));
    assert!(e.user_id.is_some(), "names the account");
    assert!(e.detail.as_deref().unwrap().contains("sign count 1 "), "{e:?}");
}

#[tokio::test]
async fn another_origin_and_no_user_verification_are_refused() {
    let gw = gateway("").await;
    let b = browser(&gw);
    let token = b.login().await;
    // Registration from a page on another origin.
    let mut evil = Authenticator::new("http://localhost.evil.example");
    let options = json_of(b.post("/passkeys/register/start", &token, json!({})).await).await;
    let res = b.post("/passkeys/register/finish", &token, json!({ "credential": evil.create(&options) })).await;
    assert_eq!(problem(res).await.0, 400);
    // Without user verification.
    let mut lax = Authenticator::new(&origin(&gw));
    lax.verify_user = false;
    let options = json_of(b.post("/passkeys/register/start", &token, json!({})).await).await;
    let res = b.post("/passkeys/register/finish", &token, json!({ "credential": lax.create(&options) })).await;
    assert_eq!(problem(res).await.0, 400);
    let list = json_of(b.http.get(b.api("/passkeys")).send().await.unwrap()).await;
    assert_eq!(list["passkeys"], json!([]));

    // A registered passkey asserting from another origin, or without verification.
    let mut auth = Authenticator::new(&origin(&gw));
    register(&b, &token, &mut auth).await;
    for tweak in [0, 1] {
        let fresh = browser(&gw);
        let options = login_start(&fresh, None).await;
        let mut a = auth.clone();
        if tweak == 0 {
            a.origin = "http://127.0.0.1:1".into();
        } else {
            a.verify_user = false;
        }
        let (status, code, _) = problem(login_finish(&fresh, a.get(&options)).await).await;
        assert_eq!((status, code.as_str()), (401, "invalid_credentials"), "tweak {tweak}");
        auth.counter = a.counter;
    }
}

#[tokio::test]
async fn a_credential_under_another_accounts_handle_is_refused() {
    let gw = gateway("").await;
    let (_, _, mut auth) = alice_with_passkey(&gw).await;
    let b = browser(&gw);
    let options = login_start(&b, None).await;
    auth.user_handle = vec![7; 16];
    let (status, code, _) = problem(login_finish(&b, auth.get(&options)).await).await;
    assert_eq!((status, code.as_str()), (401, "invalid_credentials"));
}

#[tokio::test]
async fn ceremonies_expire_and_are_bound_to_their_session() {
    let gw = gateway("").await;
    let (b, token, mut auth) = alice_with_passkey(&gw).await;
    // A login ceremony older than five minutes.
    let fresh = browser(&gw);
    let login_options = login_start(&fresh, None).await;
    gw.clock().advance(Duration::from_secs(301));
    let (status, code, _) = problem(login_finish(&fresh, auth.get(&login_options)).await).await;
    assert_eq!((status, code.as_str()), (400, "ceremony_expired"));
    // A registration started in one session cannot be finished in another of the same user.
    let token = {
        let res = b.post("/reauth", &token, json!({ "password": PASSWORD })).await;
        json_of(res).await["csrfToken"].as_str().unwrap().to_owned()
    };
    let options = json_of(b.post("/passkeys/register/start", &token, json!({})).await).await;
    let other = browser(&gw);
    let other_token = other.login().await;
    other.set_cookie(&format!("sessiongate_passkey={}", b.cookie("sessiongate_passkey").unwrap()));
    let mut second = Authenticator::new(&origin(&gw));
    let res =
        other.post("/passkeys/register/finish", &other_token, json!({ "credential": second.create(&options) })).await;
    let (status, code, _) = problem(res).await;
    assert_eq!((status, code.as_str()), (400, "ceremony_expired"));
    // No ceremony at all.
    let (status, code, _) = problem(login_finish(&browser(&gw), auth.get(&login_options)).await).await;
    assert_eq!((status, code.as_str()), (400, "ceremony_expired"));
}

#[tokio::test]
async fn rename_delete_and_the_last_login_method() {
    let gw = gateway("").await;
    let (b, token, auth) = alice_with_passkey(&gw).await;
    let id = json_of(b.http.get(b.api("/passkeys")).send().await.unwrap()).await["passkeys"][0]["id"].as_i64().unwrap();
    let res = b
        .http
        .patch(b.api(&format!("/passkeys/{id}")))
        .header("X-CSRFToken", &token)
        .json(&json!({ "name": "  Phone  " }))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(res).await["name"], "Phone");
    for bad in [json!({ "name": "" }), json!({ "name": "x".repeat(65) }), json!({ "name": "a\u{7}b" })] {
        let res = b
            .http
            .patch(b.api(&format!("/passkeys/{id}")))
            .header("X-CSRFToken", &token)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(problem(res).await.0, 400, "{bad}");
    }
    // Another user can neither rename nor delete it.
    let hash = gw.state.passwords.hash(PASSWORD.into()).await.unwrap();
    let new = sessiongate::users::NewUser { username: "mallory".into(), email: None, password_hash: hash };
    gw.state.users.create(new).await.unwrap();
    let mallory = browser(&gw);
    let res = mallory.login_as("mallory", PASSWORD).await;
    let mt = json_of(res).await["csrfToken"].as_str().unwrap().to_owned();
    let res =
        mallory.http.delete(mallory.api(&format!("/passkeys/{id}"))).header("X-CSRFToken", &mt).send().await.unwrap();
    assert_eq!(problem(res).await.0, 404);
    let res = mallory
        .http
        .patch(mallory.api(&format!("/passkeys/{id}")))
        .header("X-CSRFToken", &mt)
        .json(&json!({ "name": "mine" }))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(res).await.0, 404);
    drop(auth);

    // An account with no usable password keeps its last passkey.
    let b2 = browser(&gw);
    let t2 = b2.login().await;
    let mut a2 = Authenticator::new(&origin(&gw));
    register(&b2, &t2, &mut a2).await;
    let users = gw.state.users.clone();
    let alice = users.find_by_login(USER).await.unwrap().unwrap();
    users.set_password(alice.id, "!unusable").await.unwrap();
    let list = json_of(b2.http.get(b2.api("/passkeys")).send().await.unwrap()).await;
    let ids: Vec<i64> = list["passkeys"].as_array().unwrap().iter().map(|p| p["id"].as_i64().unwrap()).collect();
    let delete = |id: i64| b2.http.delete(b2.api(&format!("/passkeys/{id}"))).header("X-CSRFToken", &t2).send();
    let mut last = None;
    for id in &ids {
        let res = delete(*id).await.unwrap();
        if res.status() == 409 {
            let (_, code, _) = problem(res).await;
            assert_eq!(code, "last_login_method");
            last = Some(*id);
        } else {
            assert_eq!(res.status(), 204);
        }
    }
    assert!(last.is_some(), "one passkey stays");
    assert_eq!(problem(delete(987_654).await.unwrap()).await.0, 404);
    // A path that is not an id: problem JSON, not axum's plain text.
    let res = b2
        .http
        .patch(b2.api("/passkeys/abc"))
        .header("X-CSRFToken", &t2)
        .json(&json!({ "name": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(res).await.0, 400);
}

#[tokio::test]
async fn parallel_deletes_keep_the_last_passkey() {
    let gw = gateway("").await;
    let b = browser(&gw);
    let token = b.login().await;
    for _ in 0..2 {
        register(&b, &token, &mut Authenticator::new(&origin(&gw))).await;
    }
    let alice = gw.state.users.find_by_login(USER).await.unwrap().unwrap();
    gw.state.users.set_password(alice.id, "!unusable").await.unwrap();
    let list = json_of(b.http.get(b.api("/passkeys")).send().await.unwrap()).await;
    let ids: Vec<i64> = list["passkeys"].as_array().unwrap().iter().map(|p| p["id"].as_i64().unwrap()).collect();
    let deletes =
        ids.iter().map(|id| b.http.delete(b.api(&format!("/passkeys/{id}"))).header("X-CSRFToken", &token).send());
    let statuses: Vec<u16> =
        futures_util::future::join_all(deletes).await.into_iter().map(|r| r.unwrap().status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 204).count(), 1, "{statuses:?}");
}

#[tokio::test]
async fn passkeys_off_answer_not_supported() {
    let gw = start_with("[passkeys]\nenabled = false", |_| {}).await;
    let b = Browser::new(&gw);
    let token = b.login().await;
    let (status, code, _) = problem(b.post("/passkeys/register/start", &token, json!({})).await).await;
    assert_eq!((status, code.as_str()), (403, "not_supported"));
    let (status, code, _) = problem(b.post("/login/passkey/start", &token, json!({})).await).await;
    assert_eq!((status, code.as_str()), (403, "not_supported"));
}

/// The default `public_url` (`http://127.0.0.1:PORT`) serves passkeys on `http://localhost:PORT`,
/// which it trusts as an origin; another port on localhost stays foreign.
#[tokio::test]
async fn the_loopback_default_has_passkeys_on_localhost() {
    let gw = start_with("", |_| {}).await;
    let b = browser(&gw);
    let token = b.login().await;
    let mut auth = Authenticator::new(&origin(&gw));
    let res = b
        .http
        .post(b.api("/passkeys/register/start"))
        .header("X-CSRFToken", &token)
        .header("Origin", origin(&gw))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let options = json_of(res).await;
    assert_eq!(options["publicKey"]["rp"]["id"], "localhost");
    let res = b.post("/passkeys/register/finish", &token, json!({ "credential": auth.create(&options) })).await;
    assert_eq!(res.status(), 201);
    let other_port = "http://localhost:1";
    let res = b
        .http
        .post(b.api("/login/passkey/start"))
        .header("X-CSRFToken", &token)
        .header("Origin", other_port)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(res).await.0, 403, "another localhost origin is not trusted");
}

#[tokio::test]
async fn bad_credentials_are_problems_not_crashes() {
    let gw = gateway("").await;
    let b = browser(&gw);
    login_start(&b, None).await;
    let token = b.csrf().await;
    for bad in [
        json!({}),
        json!({ "credential": "nope" }),
        json!({ "credential": { "id": "x", "rawId": "!!", "type": "public-key", "response": {} } }),
    ] {
        let res = b.post("/login/passkey/finish", &token, bad.clone()).await;
        assert!(matches!(res.status().as_u16(), 400 | 422), "{bad}: {}", res.status());
    }
    // A well-formed assertion for no known credential.
    let options = login_start(&b, None).await;
    let mut stranger = Authenticator::new(&origin(&gw));
    stranger.user_handle = vec![1; 16];
    let (status, code, _) = problem(login_finish(&b, stranger.get(&options)).await).await;
    assert_eq!((status, code.as_str()), (401, "invalid_credentials"));
}

/// Each start stores a ceremony for five minutes: starts are rate-limited per IP, so an
/// anonymous client cannot fill the store — apart from logins, which a login page offering
/// autofill (one start per view) must not use up.
#[tokio::test]
async fn ceremony_starts_are_rate_limited() {
    let gw = gateway("[rate_limit]\npasskey_start_per_ip = \"3/1m\"\n").await;
    let b = browser(&gw);
    let token = b.csrf().await;
    for _ in 0..3 {
        assert_eq!(b.post("/login/passkey/start", &token, json!({})).await.status(), 200);
    }
    let (status, code, _) = problem(b.post("/login/passkey/start", &token, json!({})).await).await;
    assert_eq!((status, code.as_str()), (429, "rate_limited"));
    assert_eq!(b.login_as(USER, PASSWORD).await.status(), 200, "password logins have their own budget");
}

/// Adversarial pass: the answer for an unknown name (or one without passkeys) had a key the real
/// one lacked (`extensions`), and always one 16-byte id.
#[tokio::test]
async fn the_decoy_is_shaped_like_a_real_answer() {
    let gw = gateway("[rate_limit]\nlogin_per_ip = \"1000/1m\"").await;
    let (_, _, _) = alice_with_passkey(&gw).await;
    let b = browser(&gw);
    let shape = |v: &Value| {
        let mut keys: Vec<String> = v["publicKey"].as_object().unwrap().keys().cloned().collect();
        keys.sort();
        (
            keys,
            v.as_object().unwrap().keys().cloned().collect::<Vec<_>>(),
            v["publicKey"]["allowCredentials"][0]["type"].clone(),
        )
    };
    let real = login_start(&b, Some(USER)).await;
    let mut counts = std::collections::BTreeSet::new();
    let mut lengths = std::collections::BTreeSet::new();
    for i in 0..40 {
        let decoy = login_start(&b, Some(&format!("nobody{i}"))).await;
        assert_eq!(shape(&decoy), shape(&real), "{decoy} vs {real}");
        let ids = decoy["publicKey"]["allowCredentials"].as_array().unwrap();
        counts.insert(ids.len());
        for id in ids {
            lengths.insert(B64.decode(id["id"].as_str().unwrap()).unwrap().len());
        }
    }
    assert_eq!(counts, [1, 2].into(), "one or two ids, as accounts have");
    assert!(lengths.iter().all(|l| [16, 32, 48, 64].contains(l)) && lengths.len() > 1, "{lengths:?}");
}

/// Adversarial pass: a username ceremony compared the counter with a copy taken at its start,
/// and two assertions with one counter could both be accepted.
#[tokio::test]
async fn counters_are_checked_against_the_store_at_the_finish_and_atomically() {
    let gw = gateway("").await;
    let (_, _, mut auth) = alice_with_passkey(&gw).await;
    // A ceremony started now, answered later by a copy made now…
    let slow = browser(&gw);
    let early = login_start(&slow, Some(USER)).await;
    let mut copy = auth.clone();
    // …while the real authenticator logs in twice meanwhile.
    for _ in 0..2 {
        let b = browser(&gw);
        let options = login_start(&b, None).await;
        assert_eq!(login_finish(&b, auth.get(&options)).await.status(), 200);
    }
    let (status, _, _) = problem(login_finish(&slow, copy.get(&early)).await).await;
    assert_eq!(status, 401, "counter {} is behind the stored {}", copy.counter, auth.counter);

    // Two ceremonies answered with one counter (a clone racing the original): one login.
    let (b1, b2) = (browser(&gw), browser(&gw));
    let (o1, o2) = (login_start(&b1, None).await, login_start(&b2, None).await);
    let mut twin = auth.clone();
    let (a1, a2) = (auth.get(&o1), twin.get(&o2));
    let (t1, t2) = (b1.csrf().await, b2.csrf().await);
    let (r1, r2) = tokio::join!(
        b1.post("/login/passkey/finish", &t1, json!({ "credential": a1 })),
        b2.post("/login/passkey/finish", &t2, json!({ "credential": a2 }))
    );
    let ok = [r1.status(), r2.status()].iter().filter(|s| **s == 200).count();
    assert_eq!(ok, 1, "{} {}", r1.status(), r2.status());
}

#[tokio::test]
async fn registration_limits_names_ids_and_duplicates() {
    let gw = gateway("[rate_limit]\nlogin_per_ip = \"1000/1m\"").await;
    let b = browser(&gw);
    let token = b.login().await;
    // Names that would not read as what they are.
    for bad in ["evil\u{202E}gpj.exe", "zero\u{200B}width", "bom\u{FEFF}"] {
        let (status, _, body) = problem(b.post("/passkeys/register/start", &token, json!({ "name": bad })).await).await;
        assert_eq!(status, 400, "{bad:?}: {body}");
    }
    // A credential id longer than WebAuthn allows.
    let mut long = Authenticator::new(&origin(&gw));
    long.credential_id = vec![7; 1024];
    let options = json_of(b.post("/passkeys/register/start", &token, json!({})).await).await;
    let (status, code, _) =
        problem(b.post("/passkeys/register/finish", &token, json!({ "credential": long.create(&options) })).await)
            .await;
    assert_eq!((status, code.as_str()), (400, "invalid_request"));
    // The same authenticator twice: 409, not a misleading 400.
    let mut auth = Authenticator::new(&origin(&gw));
    register(&b, &token, &mut auth).await;
    let options = json_of(b.post("/passkeys/register/start", &token, json!({})).await).await;
    let (status, code, _) =
        problem(b.post("/passkeys/register/finish", &token, json!({ "credential": auth.create(&options) })).await)
            .await;
    assert_eq!((status, code.as_str()), (409, "passkey_taken"));
    // At most 20 per account.
    for _ in 1..20 {
        register(&b, &token, &mut Authenticator::new(&origin(&gw))).await;
    }
    let (status, code, _) = problem(b.post("/passkeys/register/start", &token, json!({})).await).await;
    assert_eq!((status, code.as_str()), (409, "too_many_passkeys"));
}

/// Adversarial pass: a passkey added from a hijacked session was silent; now the owner is told.
#[tokio::test]
async fn adding_a_passkey_is_mailed_to_the_owner() {
    let gw = gateway("").await;
    let (_, _, _) = alice_with_passkey(&gw).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mails = crate::smtp::read_dir_mails(&gw.data_dir().join("outbox"));
        if let Some(m) = mails.iter().find(|m| m.subject.contains("A passkey was added")) {
            assert!(m.to.contains("alice@example.com"));
            assert!(m.text.contains("Laptop") && m.text.contains("remove it"), "{}", m.text);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no passkey notice");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `passkeys.enabled = false` turns every passkey endpoint off, listing and deleting included.
#[tokio::test]
async fn passkeys_off_turns_every_endpoint_off() {
    let gw = start_with("[passkeys]\nenabled = false", |_| {}).await;
    let b = Browser::new(&gw);
    let token = b.login().await;
    let list = b.http.get(b.api("/passkeys")).send().await.unwrap();
    assert_eq!(problem(list).await.1, "not_supported");
    // A well-formed assertion, so that only the passkeys-off check can refuse the finishes.
    let credential =
        Authenticator::new(&gw.url).get(&json!({ "publicKey": { "rpId": "localhost", "challenge": "AAAA" } }));
    for (method, path) in [
        (reqwest::Method::PATCH, "/passkeys/1"),
        (reqwest::Method::DELETE, "/passkeys/1"),
        (reqwest::Method::POST, "/login/passkey/finish"),
        (reqwest::Method::POST, "/reauth/passkey/finish"),
        (reqwest::Method::POST, "/reauth/passkey/start"),
    ] {
        let body = json!({ "name": "x", "credential": credential });
        let res =
            b.http.request(method.clone(), b.api(path)).header("X-CSRFToken", &token).json(&body).send().await.unwrap();
        let (status, code, _) = problem(res).await;
        assert_eq!((status, code.as_str()), (403, "not_supported"), "{method} {path}");
    }
}

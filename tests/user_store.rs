//! Conformance of the user stores: the native ones (SQLite and PostgreSQL), and the Django store
//! (read-only for accounts) over a database Django itself migrated and filled, on each backend
//! Django supports here (SQLite and PostgreSQL).
//!
//! Run with: `cargo test --test user_store`
//!
//! PostgreSQL (`postgres://postgres@127.0.0.1:5432/test`, trust auth) must be running, and the
//! Django virtualenv must build (`tests/django/setup.sh`: python3 with venv, PyPI): the tests
//! fail — never skip — when they cannot. Each run uses fresh schemas.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sessiongate::db::{connect_postgres, open_sqlite};
use sessiongate::http::Problem;
use sessiongate::password::HashFormat;
use sessiongate::users::django::{DjangoOptions, DjangoUsers};
use sessiongate::users::postgres::PostgresUsers;
use sessiongate::users::sqlite::SqliteUsers;
use sessiongate::users::{AccountToken, NewPasskey, NewUser, TokenPurpose, User, UserStore, UserStoreError};

mod support;

use support::django::{Db, HASHERS, django_authenticates, django_shell, django_user, password_of};
use support::pg::{PG_HELP, PG_URL, Schema};

fn new_user(username: &str, email: Option<&str>) -> NewUser {
    NewUser {
        username: username.into(),
        email: email.map(Into::into),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
    }
}

async fn conformance(store: Arc<dyn UserStore>) {
    store.ping().await.unwrap();
    assert_eq!(store.count().await.unwrap(), 0);

    let alice = store.create(new_user(" Alice ", Some("Alice@Example.com"))).await.unwrap();
    assert!(alice.id > 0);
    assert_eq!(alice.username, "Alice", "stored trimmed, case kept");
    assert_eq!(alice.email.as_deref(), Some("Alice@Example.com"));
    assert!(alice.is_active && !alice.email_verified && alice.last_login.is_none());
    assert!((Utc::now() - alice.created_at).num_seconds().abs() < 60);

    // Case-insensitive uniqueness, each mapped to its field.
    let err = store.create(new_user("ALICE", None)).await.unwrap_err();
    assert!(matches!(err, UserStoreError::UsernameTaken), "{err:?}");
    let err = store.create(new_user("alice2", Some("alice@EXAMPLE.com"))).await.unwrap_err();
    assert!(matches!(err, UserStoreError::EmailTaken), "{err:?}");
    let err = store.create(new_user("alice", Some("alice@example.com"))).await.unwrap_err();
    assert!(matches!(err, UserStoreError::UsernameTaken | UserStoreError::EmailTaken), "{err:?}");

    // Several users without an email are fine.
    let bob = store.create(new_user("bob", None)).await.unwrap();
    let carol = store.create(new_user("carol", None)).await.unwrap();
    assert!(bob.id > alice.id && carol.id > bob.id);

    // Lookup by username in any case, or by email.
    for login in ["alice", "ALICE", " Alice", "alice@example.com", "ALICE@example.COM"] {
        let found = store.find_by_login(login).await.unwrap();
        assert_eq!(found.map(|u| u.id), Some(alice.id), "login {login:?}");
    }
    assert!(store.find_by_login("nobody").await.unwrap().is_none());
    assert!(store.find_by_login("nobody@example.com").await.unwrap().is_none());
    // An email is only matched when the login looks like one.
    assert!(store.find_by_login("example.com").await.unwrap().is_none());
    // An address names the account that has it, even when another (older) account's username is
    // that address: the username cannot capture its owner's login by email (issue 13).
    let dave = store.create(new_user("dave", Some("erin@example.com"))).await.unwrap();
    let erin = store.create(new_user("erin@example.com", None)).await.unwrap();
    assert_eq!(store.find_by_login("Erin@Example.com").await.unwrap().map(|u| u.id), Some(dave.id));
    assert_ne!(dave.id, erin.id);
    // A username that was its owner's address stays when the owner moves; nobody else may then
    // take that address as an email (second adversarial pass of issue 13).
    let grace = store.create(new_user("grace@example.com", Some("grace@example.com"))).await.unwrap();
    assert!(store.accounts().unwrap().set_email(grace.id, Some("grace@new.example"), true).await.unwrap());
    let err = store.create(new_user("henry", Some("Grace@Example.com"))).await.unwrap_err();
    assert!(matches!(err, UserStoreError::EmailTaken), "{err:?}");
    let err = store.accounts().unwrap().set_email(bob.id, Some("GRACE@example.com"), false).await.unwrap_err();
    assert!(matches!(err, UserStoreError::EmailTaken), "{err:?}");
    assert!(
        store.accounts().unwrap().set_email(grace.id, Some("Grace@Example.com"), true).await.unwrap(),
        "her own again"
    );
    assert!(store.remove(grace.id).await.unwrap());

    // Look-alike names are the same name: width and compatibility forms fold into the key,
    // confusables (UTS #39 skeletons) collide; stored names are NFKC.
    for lookalike in ["ａｌｉｃｅ", "\u{0430}lice", "ALİCE"] {
        let err = store.create(new_user(lookalike, None)).await;
        assert!(matches!(err, Err(UserStoreError::UsernameTaken)), "{lookalike:?}: {:?}", err.map(|u| u.username));
    }
    assert_eq!(store.find_by_login("ａｌｉｃｅ").await.unwrap().map(|u| u.id), Some(alice.id), "full-width login");
    let kelvin = store.create(new_user("\u{212A}elvin", None)).await.unwrap();
    assert_eq!(kelvin.username, "Kelvin", "stored NFKC");
    assert_eq!(store.find_by_login("kelvin").await.unwrap().map(|u| u.id), Some(kelvin.id));
    assert!(store.remove(kelvin.id).await.unwrap());

    assert_eq!(store.get(bob.id).await.unwrap().map(|u| u.username), Some("bob".into()));
    assert!(store.get(alice.id + 10_000).await.unwrap().is_none());

    // Password, activity and last login.
    assert!(store.set_password(bob.id, "$argon2id$new").await.unwrap());
    assert_eq!(store.get(bob.id).await.unwrap().unwrap().password_hash, "$argon2id$new");
    assert!(!store.set_password(alice.id + 10_000, "x").await.unwrap());
    assert!(store.set_active(bob.id, false).await.unwrap());
    assert!(!store.get(bob.id).await.unwrap().unwrap().is_active);
    assert!(store.set_active(bob.id, true).await.unwrap());
    assert!(store.get(bob.id).await.unwrap().unwrap().is_active);
    assert!(!store.set_active(alice.id + 10_000, false).await.unwrap());
    let at = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    store.record_login(alice.id, at).await.unwrap();
    assert_eq!(store.get(alice.id).await.unwrap().unwrap().last_login, Some(at));
    // Claiming a login is a compare-and-set on the last one: true once per value.
    let later = at + chrono::Duration::milliseconds(5);
    assert!(store.second_factor().unwrap().claim_login(alice.id, Some(at), later).await.unwrap());
    assert!(
        !store
            .second_factor()
            .unwrap()
            .claim_login(alice.id, Some(at), later + chrono::Duration::milliseconds(5))
            .await
            .unwrap()
    );
    assert_eq!(store.get(alice.id).await.unwrap().unwrap().last_login, Some(later));
    assert!(
        store.second_factor().unwrap().claim_login(bob.id, None, at).await.unwrap(),
        "a first login claims from none"
    );
    assert!(!store.second_factor().unwrap().claim_login(bob.id, None, at).await.unwrap());

    // Listing and removal.
    assert_eq!(store.count().await.unwrap(), 5);
    let listed: Vec<i64> = store.list().await.unwrap().iter().map(|u| u.id).collect();
    assert_eq!(listed, vec![alice.id, bob.id, carol.id, dave.id, erin.id]);
    assert!(store.remove(carol.id).await.unwrap());
    assert!(!store.remove(carol.id).await.unwrap());
    assert!(store.get(carol.id).await.unwrap().is_none());
    assert_eq!(store.count().await.unwrap(), 4);
    // A removed name is free again.
    store.create(new_user("Carol", None)).await.unwrap();
    assert_eq!(store.count().await.unwrap(), 5);

    account_lifecycle(store.as_ref()).await;
    passkeys(store.clone()).await;
}

fn passkey(user_id: i64, credential: &str) -> NewPasskey {
    NewPasskey {
        user_id,
        credential_id: credential.into(),
        user_handle: vec![9; 16],
        passkey: format!("{{\"cred\":\"{credential}\"}}"),
        name: "Laptop".into(),
        transports: Some("internal hybrid".into()),
        discoverable: Some(true),
    }
}

/// Passkey rows (issue 15): unique credentials across accounts, ownership on every change, the
/// last login method kept even against concurrent deletes, rows gone with their account.
async fn passkeys(store: Arc<dyn UserStore>) {
    let pk = store.passkeys().expect("native stores keep passkeys");
    let henry = store.create(new_user("henry", None)).await.unwrap();
    let ivy = store.create(new_user("ivy", None)).await.unwrap();
    let at = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let a = pk.add_passkey(&passkey(henry.id, "cred-a"), at).await.unwrap();
    assert_eq!((a.user_id, a.name.as_str(), a.discoverable, a.created_at), (henry.id, "Laptop", Some(true), at));
    assert_eq!(a.user_handle, vec![9; 16]);
    assert!(a.last_used_at.is_none());
    let err = pk.add_passkey(&passkey(ivy.id, "cred-a"), at).await.unwrap_err();
    assert!(matches!(err, UserStoreError::PasskeyTaken), "{err:?}");
    let b = pk.add_passkey(&passkey(henry.id, "cred-b"), at).await.unwrap();
    assert_eq!(pk.passkeys_of(henry.id).await.unwrap().iter().map(|p| p.id).collect::<Vec<_>>(), vec![a.id, b.id]);
    assert_eq!(pk.passkey_by_credential("cred-b").await.unwrap().map(|p| p.id), Some(b.id));
    assert!(pk.passkey_by_credential("cred-x").await.unwrap().is_none());

    // Use: the last use always, the credential only when it changed.
    let later = at + chrono::Duration::seconds(5);
    assert!(pk.record_passkey_use(a.id, None, 0, later).await.unwrap());
    assert!(pk.record_passkey_use(b.id, Some("{\"new\":1}"), 5, later).await.unwrap());
    // Counters only move forward, atomically: of two uses with one counter, one is recorded.
    let (x, y) = tokio::join!(pk.record_passkey_use(b.id, None, 7, later), pk.record_passkey_use(b.id, None, 7, later));
    assert!(x.unwrap() ^ y.unwrap(), "exactly one of two uses with counter 7");
    assert!(!pk.record_passkey_use(b.id, None, 6, later).await.unwrap(), "behind the stored count");
    assert!(pk.record_passkey_use(a.id, None, 0, later).await.unwrap(), "0: an authenticator that does not count");
    let (a2, b2) = (
        pk.passkey_by_credential("cred-a").await.unwrap().unwrap(),
        pk.passkey_by_credential("cred-b").await.unwrap().unwrap(),
    );
    assert_eq!((a2.passkey.as_str(), a2.last_used_at), ("{\"cred\":\"cred-a\"}", Some(later)));
    assert_eq!(b2.passkey, "{\"new\":1}");

    // Only the owner renames or deletes.
    assert!(pk.rename_passkey(ivy.id, a.id, "mine").await.unwrap().is_none());
    assert_eq!(pk.rename_passkey(henry.id, a.id, "Phone").await.unwrap().map(|p| p.name), Some("Phone".into()));
    assert_eq!(pk.passkey_by_credential("cred-a").await.unwrap().unwrap().name, "Phone");
    assert_eq!(pk.remove_passkey(ivy.id, a.id, true).await.unwrap(), None);

    // Without another method, two concurrent deletes of the last two passkeys: one wins.
    let (x, y) = tokio::join!(pk.remove_passkey(henry.id, a.id, false), pk.remove_passkey(henry.id, b.id, false));
    let mut outcomes = vec![x.unwrap(), y.unwrap()];
    outcomes.sort();
    assert_eq!(outcomes, vec![Some(false), Some(true)]);
    assert_eq!(pk.passkeys_of(henry.id).await.unwrap().len(), 1);
    // With a password, the last one may go.
    let last = pk.passkeys_of(henry.id).await.unwrap()[0].id;
    assert_eq!(pk.remove_passkey(henry.id, last, true).await.unwrap(), Some(true));

    // Removing the account removes its passkeys (and frees the credential id).
    pk.add_passkey(&passkey(ivy.id, "cred-i"), at).await.unwrap();
    assert!(store.remove(ivy.id).await.unwrap());
    assert!(pk.passkey_by_credential("cred-i").await.unwrap().is_none());
    pk.add_passkey(&passkey(henry.id, "cred-i"), at).await.unwrap();
}

/// Email changes, TOTP state, recovery codes and one-time tokens (issue 5).
async fn account_lifecycle(store: &dyn UserStore) {
    let frank = store.create(new_user("frank", Some("frank@example.com"))).await.unwrap();
    let grace = store.create(new_user("grace", Some("grace@example.com"))).await.unwrap();
    assert!(!frank.mfa);

    // Email: lookup by address only, change, verification, uniqueness.
    assert_eq!(store.find_by_email("FRANK@example.com").await.unwrap().map(|u| u.id), Some(frank.id));
    assert!(store.find_by_email("frank").await.unwrap().is_none(), "a username is not an address");
    assert!(store.accounts().unwrap().set_email(frank.id, Some("Frank@New.example"), true).await.unwrap());
    let f = store.get(frank.id).await.unwrap().unwrap();
    assert_eq!((f.email.as_deref(), f.email_verified), (Some("Frank@New.example"), true));
    assert_eq!(store.find_by_email("frank@new.example").await.unwrap().map(|u| u.id), Some(frank.id));
    assert!(store.find_by_email("frank@example.com").await.unwrap().is_none());
    let err = store.accounts().unwrap().set_email(frank.id, Some("GRACE@example.com"), false).await.unwrap_err();
    assert!(matches!(err, UserStoreError::EmailTaken), "{err:?}");
    assert!(store.accounts().unwrap().set_email(frank.id, None, true).await.unwrap());
    let f = store.get(frank.id).await.unwrap().unwrap();
    assert_eq!((f.email, f.email_verified), (None, false), "no address is never verified");
    assert!(!store.accounts().unwrap().set_email(frank.id + 10_000, Some("x@example.com"), false).await.unwrap());

    // TOTP: pending secret, enabling with recovery codes, single-use steps, disabling.
    assert!(store.second_factor().unwrap().totp(frank.id).await.unwrap().is_none());
    assert!(store.second_factor().unwrap().set_totp_pending(frank.id, b"sealed-1").await.unwrap());
    assert!(
        store.second_factor().unwrap().set_totp_pending(frank.id, b"sealed-2").await.unwrap(),
        "a pending secret is replaced"
    );
    let t = store.second_factor().unwrap().totp(frank.id).await.unwrap().unwrap();
    assert_eq!((t.sealed_secret.as_slice(), t.enabled, t.last_step), (b"sealed-2".as_slice(), false, None));
    assert!(!store.second_factor().unwrap().use_totp_step(frank.id, 100).await.unwrap(), "no codes before enabling");
    let hashes: Vec<String> = (0..10).map(|i| format!("hash-{i}")).collect();
    assert!(store.second_factor().unwrap().enable_totp(frank.id, 100, &hashes).await.unwrap());
    assert!(!store.second_factor().unwrap().enable_totp(frank.id, 100, &hashes).await.unwrap(), "already enabled");
    assert!(
        !store.second_factor().unwrap().set_totp_pending(frank.id, b"sealed-3").await.unwrap(),
        "enabled: disable first"
    );
    assert!(store.get(frank.id).await.unwrap().unwrap().mfa);
    assert!(store.find_by_login("frank").await.unwrap().unwrap().mfa);
    let t = store.second_factor().unwrap().totp(frank.id).await.unwrap().unwrap();
    assert_eq!((t.enabled, t.last_step), (true, Some(100)));
    assert!(!store.second_factor().unwrap().use_totp_step(frank.id, 100).await.unwrap(), "the confirming step is used");
    assert!(!store.second_factor().unwrap().use_totp_step(frank.id, 99).await.unwrap(), "older steps are refused");
    assert!(store.second_factor().unwrap().use_totp_step(frank.id, 101).await.unwrap());
    assert!(!store.second_factor().unwrap().use_totp_step(frank.id, 101).await.unwrap(), "each step once");
    // Concurrent uses of one step: exactly one wins.
    let wins =
        futures_util::future::join_all((0..8).map(|_| store.second_factor().unwrap().use_totp_step(frank.id, 102)))
            .await;
    assert_eq!(wins.into_iter().filter(|r| *r.as_ref().unwrap()).count(), 1);

    assert_eq!(store.second_factor().unwrap().recovery_codes_left(frank.id).await.unwrap(), 10);
    let at = Utc::now();
    assert!(store.second_factor().unwrap().use_recovery_code(frank.id, "hash-3", at).await.unwrap());
    assert!(!store.second_factor().unwrap().use_recovery_code(frank.id, "hash-3", at).await.unwrap(), "single use");
    assert!(
        !store.second_factor().unwrap().use_recovery_code(grace.id, "hash-4", at).await.unwrap(),
        "another user's code"
    );
    assert!(!store.second_factor().unwrap().use_recovery_code(frank.id, "nope", at).await.unwrap());
    assert_eq!(store.second_factor().unwrap().recovery_codes_left(frank.id).await.unwrap(), 9);
    let wins = futures_util::future::join_all(
        (0..8).map(|_| store.second_factor().unwrap().use_recovery_code(frank.id, "hash-5", at)),
    )
    .await;
    assert_eq!(wins.into_iter().filter(|r| *r.as_ref().unwrap()).count(), 1);

    assert!(store.second_factor().unwrap().disable_totp(frank.id).await.unwrap());
    assert!(!store.second_factor().unwrap().disable_totp(frank.id).await.unwrap());
    assert!(store.second_factor().unwrap().totp(frank.id).await.unwrap().is_none());
    assert_eq!(store.second_factor().unwrap().recovery_codes_left(frank.id).await.unwrap(), 0);
    assert!(!store.get(frank.id).await.unwrap().unwrap().mfa);
    // Re-enrolling replaces the codes.
    assert!(store.second_factor().unwrap().set_totp_pending(frank.id, b"sealed-4").await.unwrap());
    assert!(store.second_factor().unwrap().enable_totp(frank.id, 5, &hashes[..2]).await.unwrap());
    assert_eq!(store.second_factor().unwrap().recovery_codes_left(frank.id).await.unwrap(), 2);

    // One-time tokens: stored by hash, live until used or expired, single use.
    let ttl = Duration::from_secs(1800);
    let (raw, reset) = AccountToken::generate(
        TokenPurpose::PasswordReset,
        grace.id,
        Some("grace@example.com".into()),
        ttl,
        Utc::now(),
    );
    assert_eq!(raw.len(), 43);
    assert_eq!(reset.token_hash, AccountToken::hash(&raw));
    store.accounts().unwrap().create_token(&reset).await.unwrap();
    let now = Utc::now();
    assert_eq!(
        store.accounts().unwrap().find_token(&reset.token_hash, TokenPurpose::PasswordReset, now).await.unwrap(),
        Some(reset.clone())
    );
    assert!(
        store.accounts().unwrap().find_token(&reset.token_hash, TokenPurpose::Email, now).await.unwrap().is_none(),
        "purpose"
    );
    let later = reset.expires_at + chrono::Duration::seconds(1);
    assert!(
        store
            .accounts()
            .unwrap()
            .find_token(&reset.token_hash, TokenPurpose::PasswordReset, later)
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    assert!(
        store
            .accounts()
            .unwrap()
            .consume_token(&reset.token_hash, TokenPurpose::PasswordReset, later)
            .await
            .unwrap()
            .is_none()
    );
    let used = store
        .accounts()
        .unwrap()
        .consume_token(&reset.token_hash, TokenPurpose::PasswordReset, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((used.user_id, used.email.as_deref()), (grace.id, Some("grace@example.com")));
    assert!(
        store
            .accounts()
            .unwrap()
            .consume_token(&reset.token_hash, TokenPurpose::PasswordReset, now)
            .await
            .unwrap()
            .is_none(),
        "once"
    );
    assert!(
        store
            .accounts()
            .unwrap()
            .find_token(&reset.token_hash, TokenPurpose::PasswordReset, now)
            .await
            .unwrap()
            .is_none()
    );

    // Email-change tokens keep their binding to the session and the password.
    let (_, change) =
        AccountToken::generate(TokenPurpose::EmailChange, grace.id, Some("g@new.example".into()), ttl, Utc::now());
    let change = change.bound("sess-public-id", "$argon2id$hash");
    store.accounts().unwrap().create_token(&change).await.unwrap();
    let found = store
        .accounts()
        .unwrap()
        .find_token(&change.token_hash, TokenPurpose::EmailChange, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, change);
    assert_eq!(found.session_id.as_deref(), Some("sess-public-id"));
    assert!(
        store.accounts().unwrap().find_token(&change.token_hash, TokenPurpose::Email, now).await.unwrap().is_none(),
        "purpose"
    );
    assert_eq!(store.accounts().unwrap().revoke_tokens(grace.id, TokenPurpose::EmailChange).await.unwrap(), 1);

    // Concurrent consumption: exactly one wins.
    let (_, t2) = AccountToken::generate(TokenPurpose::Email, grace.id, Some("g2@example.com".into()), ttl, Utc::now());
    store.accounts().unwrap().create_token(&t2).await.unwrap();
    let wins = futures_util::future::join_all(
        (0..8).map(|_| store.accounts().unwrap().consume_token(&t2.token_hash, TokenPurpose::Email, Utc::now())),
    )
    .await;
    assert_eq!(wins.into_iter().filter(|r| r.as_ref().unwrap().is_some()).count(), 1);

    // Revocation by user and purpose; purge of expired tokens.
    let (_, t3) = AccountToken::generate(TokenPurpose::PasswordReset, grace.id, None, ttl, Utc::now());
    let (_, t4) = AccountToken::generate(TokenPurpose::Email, grace.id, None, ttl, Utc::now());
    let (_, t5) = AccountToken::generate(TokenPurpose::PasswordReset, frank.id, None, ttl, Utc::now());
    for t in [&t3, &t4, &t5] {
        store.accounts().unwrap().create_token(t).await.unwrap();
    }
    assert_eq!(store.accounts().unwrap().revoke_tokens(grace.id, TokenPurpose::PasswordReset).await.unwrap(), 1);
    assert!(
        store.accounts().unwrap().find_token(&t3.token_hash, TokenPurpose::PasswordReset, now).await.unwrap().is_none()
    );
    assert!(
        store.accounts().unwrap().find_token(&t4.token_hash, TokenPurpose::Email, now).await.unwrap().is_some(),
        "other purpose kept"
    );
    assert!(
        store.accounts().unwrap().find_token(&t5.token_hash, TokenPurpose::PasswordReset, now).await.unwrap().is_some(),
        "other user kept"
    );
    assert_eq!(store.accounts().unwrap().purge_tokens(now).await.unwrap(), 0, "nothing expired yet");
    assert!(store.accounts().unwrap().purge_tokens(later + chrono::Duration::hours(1)).await.unwrap() >= 5);
    assert!(
        store.accounts().unwrap().find_token(&t5.token_hash, TokenPurpose::PasswordReset, now).await.unwrap().is_none()
    );

    // Removing a user removes their tokens and codes.
    let (_, t6) = AccountToken::generate(TokenPurpose::PasswordReset, frank.id, None, ttl, Utc::now());
    store.accounts().unwrap().create_token(&t6).await.unwrap();
    assert!(store.remove(frank.id).await.unwrap());
    assert!(
        store.accounts().unwrap().find_token(&t6.token_hash, TokenPurpose::PasswordReset, now).await.unwrap().is_none()
    );
    assert_eq!(store.second_factor().unwrap().recovery_codes_left(frank.id).await.unwrap(), 0);
}

#[tokio::test]
async fn sqlite_users() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open_sqlite(&dir.path().join("sessiongate.db")).await.unwrap();
    conformance(Arc::new(SqliteUsers::new(pool))).await;
}

#[tokio::test]
async fn postgres_users() {
    let schema = Schema::new("sg_users").await;
    let pool = connect_postgres(&schema.url).await.unwrap_or_else(|e| panic!("PostgreSQL at {PG_URL}: {e}: {PG_HELP}"));
    conformance(Arc::new(PostgresUsers::new(pool))).await;
    schema.drop().await;
}

/// Rows written by a release before issue 13 (plain lower-cased keys, no skeleton) get the new
/// keys at start; rows that collide under the new rules keep what they had, and log why.
async fn legacy_keys(
    store: &dyn UserStore,
    sql: &(dyn Fn(String) -> futures_util::future::BoxFuture<'static, ()> + Sync),
) {
    let a = store.create(new_user("Legacy", Some("Legacy@Example.com"))).await.unwrap();
    let b = store.create(new_user("zed", None)).await.unwrap();
    let c = store.create(new_user("zee", None)).await.unwrap();
    // As an older release stored them: `ｚｅｄ` (full width) next to `zed`, keys lower-cased only.
    for (id, name, key) in [(a.id, "Legacy", "legacy"), (b.id, "zed", "zed"), (c.id, "ｚｅｄ", "ｚｅｄ")] {
        sql(format!(
            "UPDATE users SET username = '{name}', username_key = '{key}', username_skeleton = NULL, key_version = 1 WHERE id = {id}"
        ))
        .await;
    }
    assert_eq!(store.upgrade_keys().await.unwrap(), 3);
    assert_eq!(store.upgrade_keys().await.unwrap(), 0, "done once");
    assert_eq!(store.find_by_login("LEGACY").await.unwrap().map(|u| u.id), Some(a.id));
    assert_eq!(store.find_by_login("legacy@example.COM").await.unwrap().map(|u| u.id), Some(a.id));
    assert_eq!(store.find_by_login("zed").await.unwrap().map(|u| u.id), Some(b.id), "the first keeps the name");
    assert_eq!(store.find_by_login("ｚｅｄ").await.unwrap().map(|u| u.id), Some(b.id), "its look-alike folds into it");
    assert!(matches!(store.create(new_user("ＬＥＧＡＣＹ", None)).await, Err(UserStoreError::UsernameTaken)));
}

#[tokio::test]
async fn sqlite_legacy_keys() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open_sqlite(&dir.path().join("sessiongate.db")).await.unwrap();
    let store = SqliteUsers::new(pool.clone());
    let sql = move |q: String| -> futures_util::future::BoxFuture<'static, ()> {
        let pool = pool.clone();
        Box::pin(async move {
            sqlx::query(&q).execute(&pool).await.unwrap();
        })
    };
    legacy_keys(&store, &sql).await;
}

#[tokio::test]
async fn postgres_legacy_keys() {
    let schema = Schema::new("sg_keys").await;
    let pool = connect_postgres(&schema.url).await.unwrap();
    let store = PostgresUsers::new(pool.clone());
    let sql = move |q: String| -> futures_util::future::BoxFuture<'static, ()> {
        let pool = pool.clone();
        Box::pin(async move {
            sqlx::query(&q).execute(&pool).await.unwrap();
        })
    };
    legacy_keys(&store, &sql).await;
    schema.drop().await;
}

// ---------------------------------------------------------------------------------------------
// The Django store

/// The users of `create_users.py`, in the order Django created them (ids ascending).
const DJANGO_USERS: [&str; 15] = [
    "u_pbkdf2_sha256",
    "u_pbkdf2_sha1",
    "u_argon2",
    "u_bcrypt_sha256",
    "u_bcrypt",
    "u_scrypt",
    "u_md5",
    "alice",
    "Carol",
    "inactive",
    "nopass",
    "shared1",
    "shared2",
    "admin",
    "zoë",
];

async fn django_store(db: &Db, login_with_email: bool) -> Arc<dyn UserStore> {
    let mut opts = DjangoOptions::read(&db.url(), "auth_user");
    opts.login_with_email = login_with_email;
    Arc::new(DjangoUsers::connect(opts).await.unwrap_or_else(|e| panic!("the Django store opens {}: {e}", db.url())))
}

async fn login_id(store: &dyn UserStore, login: &str) -> Option<i64> {
    store.find_by_login(login).await.unwrap().map(|u| u.id)
}

/// What applies of [`conformance`] to the Django store, with Django's rules: lookups (exact
/// usernames; email addresses only when configured), reads, the two writes it makes
/// (`password`, `last_login`, read back by Django), and no account management — the capability
/// accessors are absent and the rest is `Unsupported` (`not_supported` to API clients), leaving
/// the table as it was.
async fn django_conformance(db: &Db) {
    // Three more users, made by Django: an address that is another account's username, and no
    // address at all.
    django_shell(
        db,
        "from django.contrib.auth.models import User\n\
         for name, email in [('dave', 'erin@example.com'), ('erin@example.com', 'frank@example.com'), ('noemail', '')]: \
         u = User(username=name, email=email); u.set_unusable_password(); u.save()\n\
         print('{}')",
    );
    let store = django_store(db, false).await;
    let store = store.as_ref();
    store.ping().await.unwrap();
    let all = store.list().await.unwrap();
    let names: Vec<&str> = all.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names[..15], DJANGO_USERS, "listed by id");
    assert_eq!(names[15..], ["dave", "erin@example.com", "noemail"]);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(store.count().await.unwrap(), 18);
    let by_name = |name: &str| all.iter().find(|u| u.username == name).unwrap().clone();

    // Every user reads the same by id and by (exact) username.
    for u in &all {
        assert_eq!(store.get(u.id).await.unwrap().as_ref(), Some(u), "{}", u.username);
        assert_eq!(store.find_by_login(&u.username).await.unwrap().as_ref(), Some(u), "{}", u.username);
        assert!(!u.email_verified && !u.mfa && u.last_login.is_none(), "{}", u.username);
    }
    let max_id = all.last().unwrap().id;
    assert!(store.get(max_id + 10_000).await.unwrap().is_none());
    assert!(store.get(0).await.unwrap().is_none());

    // The columns as Django wrote them.
    let alice = by_name("alice");
    assert_eq!(alice.email.as_deref(), Some("alice@example.com"));
    assert!(alice.is_active);
    assert_eq!(alice.created_at.to_rfc3339(), "2020-01-02T03:04:05.678901+00:00", "date_joined");
    assert!(!by_name("inactive").is_active, "is_active = False");
    assert!(by_name("nopass").password_hash.starts_with('!'), "an unusable password");
    assert_eq!(by_name("noemail").email, None, "an empty email is none");
    assert_eq!(by_name("shared2").email.as_deref(), Some("Shared@Example.com"), "as written");
    for h in HASHERS {
        let u = by_name(&format!("u_{h}"));
        assert!(u.password_hash.starts_with(&format!("{h}$")), "u_{h}: Django's hash as is");
        assert_eq!(u.email, Some(format!("{h}@example.com")));
    }

    // Usernames are exact, as Django's ModelBackend has them: case-sensitive, trimmed like its
    // login form; no email login unless configured.
    for login in [" alice ", "alice\t", "\nalice"] {
        assert_eq!(login_id(store, login).await, Some(alice.id), "{login:?}");
    }
    assert_eq!(login_id(store, "Carol").await, Some(by_name("Carol").id));
    assert_eq!(login_id(store, "zoë").await, Some(by_name("zoë").id));
    for login in ["ALICE", "Alice", "carol", "CAROL", "zoe", "Zoë", "alice@example.com", "nobody", "", "  "] {
        assert_eq!(login_id(store, login).await, None, "{login:?}");
    }
    assert_eq!(login_id(store, "erin@example.com").await, Some(by_name("erin@example.com").id), "a username");
    assert!(store.find_by_email("alice@example.com").await.unwrap().is_none(), "no email login");

    // With django_login_with_email: an address (any case) names the one account that has it.
    let by_email = django_store(db, true).await;
    let by_email = by_email.as_ref();
    for login in ["carol@example.com", "CAROL@Example.COM", " carol@example.com "] {
        assert_eq!(login_id(by_email, login).await, Some(by_name("Carol").id), "{login:?}");
    }
    assert_eq!(login_id(by_email, "shared@example.com").await, None, "an address two accounts share");
    assert_eq!(login_id(by_email, "nobody@example.com").await, None);
    assert_eq!(login_id(by_email, "erin@example.com").await, Some(by_name("dave").id), "its owner, not the username");
    assert_eq!(login_id(by_email, "frank@example.com").await, Some(by_name("erin@example.com").id));
    assert_eq!(login_id(by_email, "carol").await, None, "usernames stay exact");
    assert_eq!(login_id(by_email, "Carol").await, Some(by_name("Carol").id));
    assert_eq!(by_email.find_by_email("ALICE@example.com").await.unwrap().map(|u| u.id), Some(alice.id));
    assert!(by_email.find_by_email("alice").await.unwrap().is_none(), "a username is not an address");

    // The writes: `password` (Django keeps verifying it) and `last_login`.
    let carol = by_name("Carol");
    let md5 = by_name("u_md5");
    assert!(store.set_password(carol.id, &md5.password_hash).await.unwrap());
    assert_eq!(store.get(carol.id).await.unwrap().unwrap().password_hash, md5.password_hash);
    assert!(!store.set_password(max_id + 10_000, "x").await.unwrap());
    let at = DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap();
    store.record_login(alice.id, at).await.unwrap();
    assert_eq!(store.get(alice.id).await.unwrap().unwrap().last_login, Some(at));
    let later = at + chrono::Duration::microseconds(1_500_001);
    store.record_login(alice.id, later).await.unwrap();
    assert_eq!(store.find_by_login("alice").await.unwrap().unwrap().last_login, Some(later), "replaced");
    let seen = django_user(db, "alice");
    let seen: DateTime<Utc> = seen["last_login"].as_str().expect("Django reads last_login").parse().unwrap();
    assert_eq!(seen, later, "as Django reads it");
    let md5_password = password_of("u_md5");
    let carol_password = password_of("Carol");
    assert_eq!(
        django_authenticates(db, &[("Carol", &md5_password), ("Carol", &carol_password)]),
        [true, false],
        "Django verifies the hash set_password wrote"
    );
    assert_eq!(store.hash_format(), HashFormat::DjangoPbkdf2Sha256 { iterations: 1_000_000 });
    assert!(!store.rehash_on_login(), "no rehash unless configured");
    assert_eq!(store.upgrade_keys().await.unwrap(), 0, "Django's own keys");

    // No account management: absent capabilities, `Unsupported` operations, the table untouched.
    assert!(store.accounts().is_none() && store.second_factor().is_none());
    assert!(by_email.accounts().is_none() && by_email.second_factor().is_none());
    let unsupported = |what: &str, r: Result<(), UserStoreError>| {
        let e = r.expect_err(what);
        assert!(matches!(e, UserStoreError::Unsupported(_)), "{what}: {e:?}");
        let p = Problem::from(e);
        assert_eq!((p.status, p.code), (403, "not_supported"), "{what}");
    };
    unsupported("create", store.create(new_user("newbie", None)).await.map(drop));
    unsupported("create of an existing name", store.create(new_user("alice", None)).await.map(drop));
    unsupported("remove", store.remove(carol.id).await.map(drop));
    unsupported("set_active", store.set_active(alice.id, false).await.map(drop));
    unsupported("set_active of a missing user", store.set_active(max_id + 10_000, true).await.map(drop));
    let copy = User { username: "copy".into(), email: None, ..alice.clone() };
    unsupported("import", store.import(&copy).await.map(drop));
    assert_eq!(store.count().await.unwrap(), 18);
    assert!(store.find_by_login("newbie").await.unwrap().is_none());
    assert!(store.get(carol.id).await.unwrap().is_some(), "not removed");
    assert!(store.get(alice.id).await.unwrap().unwrap().is_active, "not disabled");

    // ping (also run by connect) names a table that is not there.
    let Err(e) = DjangoUsers::connect(DjangoOptions::read(&db.url(), "accounts_user")).await else {
        panic!("no accounts_user table")
    };
    assert!(e.to_string().contains("accounts_user"), "{e}");
}

#[tokio::test]
async fn django_sqlite_users() {
    let dir = tempfile::tempdir().unwrap();
    django_conformance(&Db::sqlite_copy(dir.path())).await;
}

#[tokio::test]
async fn django_postgres_users() {
    let (db, schema) = Db::postgres("sg_django_users").await;
    django_conformance(&db).await;
    schema.drop().await;
}

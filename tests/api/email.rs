//! Email addresses through a real SMTP server: verification on signup, change with a notice to
//! the old address, notices on password change.

use serde_json::{Value, json};

use crate::harness::{Browser, PASSWORD, problem, start};
use crate::smtp::Smtp;

async fn me(b: &Browser) -> Value {
    b.http.get(b.api("/session")).send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn signup_sends_a_verification_link() {
    let smtp = Smtp::start().await;
    let gw = start(&format!("[auth]\nsignup = true\n[mail]\nsmtp_url = \"{}\"\n", smtp.url())).await;
    let b = Browser::new(&gw);
    let token = b.csrf().await;
    let res = b
        .post(
            "/signup",
            &token,
            json!({ "username": "bob", "password": "bob's long passphrase", "email": "Bob@Example.com" }),
        )
        .await;
    assert_eq!(res.status(), 201);
    assert_eq!(me(&b).await["user"]["emailVerified"], false);

    let mail = smtp.wait_for("Bob@Example.com", "Confirm your email").await;
    let prefix = format!("{}/#/verify-email?token=", gw.url);
    let t = mail.token_after(&prefix);
    // Any browser may use the link (it proves the mailbox, not the session).
    let other = Browser::new(&gw);
    let csrf = other.csrf().await;
    let res = other.post("/email/verify", &csrf, json!({ "token": t })).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({ "email": "Bob@Example.com", "emailVerified": true }));
    assert_eq!(me(&b).await["user"]["emailVerified"], true);
    let (status, code, _) = problem(other.post("/email/verify", &csrf, json!({ "token": t })).await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_request"), "single use");
}

#[tokio::test]
async fn email_change_is_confirmed_by_the_new_address_and_announced_to_the_old() {
    let smtp = Smtp::start().await;
    let gw = start(&format!("[mail]\nsmtp_url = \"{}\"\n", smtp.url())).await;
    let b = Browser::new(&gw);
    let token = b.login().await;

    let (status, _, _) = problem(b.post("/email", &token, json!({ "email": "not an address" })).await).await;
    assert_eq!(status, 400);
    let res = b.post("/email", &token, json!({ "email": "alice@new.example" })).await;
    assert_eq!(res.status(), 202);
    let notice = smtp.wait_for("alice@example.com", "is being changed").await;
    assert!(notice.text.contains("alice@new.example"), "{}", notice.text);
    let verify = smtp.wait_for("alice@new.example", "Confirm your email").await;
    assert_eq!(me(&b).await["user"]["email"], "alice@example.com", "unchanged until confirmed");

    // A second request replaces the first link.
    assert_eq!(b.post("/email", &token, json!({ "email": "alice@newer.example" })).await.status(), 202);
    let newer = smtp.wait_for("alice@newer.example", "Confirm your email").await;
    let (status, _, _) =
        problem(b.post("/email/verify", &token, json!({ "token": verify.token_after("token=") })).await).await;
    assert_eq!(status, 400, "superseded link");

    let res = b.post("/email/verify", &token, json!({ "token": newer.token_after("token=") })).await;
    assert_eq!(res.status(), 200);
    let user = &me(&b).await["user"];
    assert_eq!((user["email"].as_str(), user["emailVerified"].as_bool()), (Some("alice@newer.example"), Some(true)));

    // Password change: a notice to the (new) address.
    let token = b.csrf().await;
    let res = b
        .post("/password", &token, json!({ "currentPassword": PASSWORD, "newPassword": "a brand new passphrase" }))
        .await;
    assert_eq!(res.status(), 200);
    let n = smtp.wait_for("alice@newer.example", "was changed").await;
    assert!(n.text.contains("signed-in session") && n.html.contains("<html"), "{}", n.text);
}

//! Account security over real HTTP, attacked: two-factor sign-in (replayed and
//! guessed codes, recovery codes spent twice, re-enrolment over a working secret),
//! password change and reset ending sessions and tokens, reset links reused or
//! asked for unknown addresses, "your sessions", and the events each step records.

mod common;

use common::{browser_like, client, csrf_token, login, register, Demo, PASSWORD};
use portcullis::totp::{Totp, TotpSecret};
use serde_json::{json, Value};

const NEW_PASSWORD: &str = "another long passphrase 2026 ok";

/// The demo with the per-IP limits of the sign-in routes lifted (every test client is
/// 127.0.0.1): what is tested here is the per-account delay, which stays on.
fn start() -> Demo {
    Demo::start(&[("PORTCULLIS_RATE_LIMITS", "bench")])
}

async fn api_token(
    demo: &Demo,
    username: &str,
    password: &str,
    otp: Option<&str>,
) -> reqwest::Response {
    let mut body = json!({ "username": username, "password": password });
    if let Some(otp) = otp {
        body["otp"] = otp.into();
    }
    client()
        .post(demo.url("/api/token"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn access_token(demo: &Demo, username: &str, password: &str, otp: Option<&str>) -> String {
    let response = api_token(demo, username, password, otp).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let pair: Value = response.json().await.unwrap();
    pair["access_token"].as_str().unwrap().to_owned()
}

async fn post(demo: &Demo, token: &str, path: &str, body: Value) -> reqwest::Response {
    client()
        .post(demo.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn get(demo: &Demo, token: &str, path: &str) -> Value {
    let response = client()
        .get(demo.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_owned(),
    )
}

async fn event_types(demo: &Demo, token: &str) -> Vec<String> {
    get(demo, token, "/api/account/events").await["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["type"].as_str().unwrap().to_owned())
        .collect()
}

fn now() -> u64 {
    portcullis::totp::unix_now()
}

/// A user with two-factor sign-in on: the secret, the recovery codes, and a token
/// minted before it was turned on.
async fn enrolled(demo: &Demo, username: &str) -> (TotpSecret, Vec<String>, String) {
    assert_eq!(
        register(&browser_like(), demo, username, PASSWORD)
            .await
            .status(),
        303
    );
    let token = access_token(demo, username, PASSWORD, None).await;
    let response = post(
        demo,
        &token,
        "/api/account/totp",
        json!({ "password": PASSWORD }),
    )
    .await;
    assert_eq!(response.status(), 200);
    let started: Value = response.json().await.unwrap();
    let secret = TotpSecret::from_base32(started["secret"].as_str().unwrap()).unwrap();
    let url = started["otpauth_url"].as_str().unwrap();
    assert!(url.starts_with("otpauth://totp/"), "{url}");
    assert!(url.contains(&format!("secret={}", secret.to_base32())));
    let code = Totp::default().code_at(&secret, now() - 30);
    let response = post(
        demo,
        &token,
        "/api/account/totp/confirm",
        json!({ "code": code }),
    )
    .await;
    assert_eq!(response.status(), 200);
    let confirmed: Value = response.json().await.unwrap();
    let codes: Vec<String> = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    (secret, codes, token)
}

#[tokio::test]
async fn totp_codes_are_needed_accepted_once_and_recovery_codes_once() {
    let demo = start();
    let (secret, recovery, token) = enrolled(&demo, "two-factor").await;
    let totp = Totp::default();

    // The password alone is no longer enough.
    let (status, code) = error_code(api_token(&demo, "two-factor", PASSWORD, None).await).await;
    assert_eq!((status, code.as_str()), (401, "otp_required"));
    // The enrolment's code (previous step) was used: replaying it is refused.
    let used = totp.code_at(&secret, now() - 30);
    let (status, code) =
        error_code(api_token(&demo, "two-factor", PASSWORD, Some(&used)).await).await;
    assert_eq!((status, code.as_str()), (401, "otp_invalid"));
    // A fresh code works once.
    let fresh = totp.code_at(&secret, now());
    access_token(&demo, "two-factor", PASSWORD, Some(&fresh)).await;
    let (status, code) =
        error_code(api_token(&demo, "two-factor", PASSWORD, Some(&fresh)).await).await;
    assert_eq!((status, code.as_str()), (401, "otp_invalid"));
    // A code of two steps ago, or of the far future, is refused.
    for at in [now() - 90, now() + 300] {
        let stale = totp.code_at(&secret, at);
        let (status, _) =
            error_code(api_token(&demo, "two-factor", PASSWORD, Some(&stale)).await).await;
        assert_eq!(status, 401);
    }
    // A recovery code, typed in upper case, works once.
    let typed = recovery[0].to_uppercase();
    access_token(&demo, "two-factor", PASSWORD, Some(&typed)).await;
    let (status, code) =
        error_code(api_token(&demo, "two-factor", PASSWORD, Some(&recovery[0])).await).await;
    assert_eq!((status, code.as_str()), (401, "otp_invalid"));
    // A right code with a wrong password tells nothing about the code.
    let (status, _) =
        error_code(api_token(&demo, "two-factor", "wrong password", Some(&recovery[1])).await)
            .await;
    assert_eq!(status, 401);
    access_token(&demo, "two-factor", PASSWORD, Some(&recovery[1])).await;

    let events = event_types(&demo, &token).await;
    for expected in [
        "totp_enabled",
        "otp_failed",
        "recovery_code_used",
        "login_succeeded",
        "login_failed",
    ] {
        assert!(
            events.iter().any(|e| e == expected),
            "{expected} missing from {events:?}"
        );
    }
    // The secret never appears in the logs.
    assert!(!demo.log_text().contains(&secret.to_base32()));
}

#[tokio::test]
async fn racing_one_code_twice_signs_in_once() {
    let demo = start();
    let (secret, _, _) = enrolled(&demo, "racer").await;
    let code = Totp::default().code_at(&secret, now() + 30);
    let (a, b) = tokio::join!(
        api_token(&demo, "racer", PASSWORD, Some(&code)),
        api_token(&demo, "racer", PASSWORD, Some(&code)),
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401]);
}

#[tokio::test]
async fn guessing_the_second_factor_runs_into_a_growing_delay() {
    let demo = start();
    let (secret, _, token) = enrolled(&demo, "guessed").await;
    let mut statuses = Vec::new();
    for guess in ["000000", "111111", "222222", "333333", "444444", "555555"] {
        let response = api_token(&demo, "guessed", PASSWORD, Some(guess)).await;
        statuses.push(response.status().as_u16());
    }
    // Three wrong codes are free; the fourth starts a delay, and from then on even
    // the right code waits.
    assert_eq!(&statuses[..4], &[401, 401, 401, 401]);
    assert!(statuses[4..].iter().all(|s| *s == 429), "{statuses:?}");
    let right = Totp::default().code_at(&secret, now());
    let response = api_token(&demo, "guessed", PASSWORD, Some(&right)).await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    assert!(event_types(&demo, &token)
        .await
        .iter()
        .any(|e| e == "lockout_started"));
}

#[tokio::test]
async fn a_working_secret_is_never_replaced_and_disabling_needs_password_and_code() {
    let demo = start();
    let (secret, recovery, token) = enrolled(&demo, "keeper").await;
    let response = post(
        &demo,
        &token,
        "/api/account/totp",
        json!({ "password": PASSWORD }),
    )
    .await;
    assert_eq!(error_code(response).await, (409, "totp_enabled".to_owned()));
    // Still the same secret: its next code signs in.
    let code = Totp::default().code_at(&secret, now());
    let fresh = access_token(&demo, "keeper", PASSWORD, Some(&code)).await;
    // Wrong password, or no valid code: refused, and it stays on.
    let response = post(
        &demo,
        &fresh,
        "/api/account/totp/disable",
        json!({ "password": "nope", "code": recovery[0] }),
    )
    .await;
    assert_eq!(response.status(), 401);
    let response = post(
        &demo,
        &fresh,
        "/api/account/totp/disable",
        json!({ "password": PASSWORD, "code": "123456" }),
    )
    .await;
    assert_eq!(response.status(), 401);
    let response = post(
        &demo,
        &fresh,
        "/api/account/totp/disable",
        json!({ "password": PASSWORD, "code": recovery[0] }),
    )
    .await;
    assert_eq!(response.status(), 204);
    access_token(&demo, "keeper", PASSWORD, None).await;
    assert!(event_types(&demo, &fresh)
        .await
        .iter()
        .any(|e| e == "totp_disabled"));
    // A confirmation without a started enrolment is refused.
    let response = post(
        &demo,
        &fresh,
        "/api/account/totp/confirm",
        json!({ "code": "123456" }),
    )
    .await;
    assert_eq!(response.status(), 409);
}

/// Signs `username` in through the form on a fresh cookie jar.
async fn browser_session(demo: &Demo, username: &str, password: &str) -> reqwest::Client {
    let browser = browser_like();
    assert_eq!(
        login(&browser, demo, username, password).await.status(),
        303
    );
    browser
}

async fn signed_in(browser: &reqwest::Client, demo: &Demo) -> bool {
    browser
        .get(demo.url("/account"))
        .send()
        .await
        .unwrap()
        .status()
        == 200
}

#[tokio::test]
async fn a_password_change_ends_every_other_session_and_token() {
    let demo = start();
    assert_eq!(
        register(&browser_like(), &demo, "changer", PASSWORD)
            .await
            .status(),
        303
    );
    let other = browser_session(&demo, "changer", PASSWORD).await;
    assert!(signed_in(&other, &demo).await);
    let token = access_token(&demo, "changer", PASSWORD, None).await;
    let second = access_token(&demo, "changer", PASSWORD, None).await;
    // The current password must be right, and the new one pass the policy.
    let response = post(
        &demo,
        &token,
        "/api/account/password",
        json!({ "current_password": "wrong", "new_password": NEW_PASSWORD }),
    )
    .await;
    assert_eq!(response.status(), 401);
    let response = post(
        &demo,
        &token,
        "/api/account/password",
        json!({ "current_password": PASSWORD, "new_password": "short" }),
    )
    .await;
    assert_eq!(response.status(), 400);
    assert!(signed_in(&other, &demo).await);
    let response = post(
        &demo,
        &token,
        "/api/account/password",
        json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD }),
    )
    .await;
    assert_eq!(response.status(), 204);
    assert!(
        !signed_in(&other, &demo).await,
        "another session survived the change"
    );
    for old in [&token, &second] {
        let response = client()
            .get(demo.url("/api/me"))
            .bearer_auth(old)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "a token survived the change");
    }
    assert_eq!(
        api_token(&demo, "changer", PASSWORD, None).await.status(),
        401
    );
    let fresh = access_token(&demo, "changer", NEW_PASSWORD, None).await;
    assert!(event_types(&demo, &fresh)
        .await
        .iter()
        .any(|e| e == "password_changed"));
}

#[tokio::test]
async fn the_page_password_change_keeps_this_device_and_ends_the_others() {
    let demo = start();
    let me = browser_like();
    assert_eq!(register(&me, &demo, "pager", PASSWORD).await.status(), 303);
    let other = browser_session(&demo, "pager", PASSWORD).await;
    let page = me
        .get(demo.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = csrf_token(&page);
    let response = me
        .post(demo.url("/account/password"))
        .form(&[
            ("current_password", PASSWORD),
            ("new_password", NEW_PASSWORD),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(signed_in(&me, &demo).await);
    assert!(!signed_in(&other, &demo).await);
}

#[tokio::test]
async fn sessions_are_listed_and_ended_only_by_their_owner() {
    let demo = start();
    assert_eq!(
        register(&browser_like(), &demo, "owner", PASSWORD)
            .await
            .status(),
        303
    );
    assert_eq!(
        register(&browser_like(), &demo, "intruder", PASSWORD)
            .await
            .status(),
        303
    );
    let laptop = browser_session(&demo, "owner", PASSWORD).await;
    let phone = browser_session(&demo, "owner", PASSWORD).await;
    let token = access_token(&demo, "owner", PASSWORD, None).await;
    let listed = get(&demo, &token, "/api/account/sessions").await;
    let sessions = listed["sessions"].as_array().unwrap();
    // The registration's session and the two sign-ins.
    assert_eq!(sessions.len(), 3, "{listed}");
    for session in sessions {
        for field in ["id", "created_at", "last_seen_at", "client"] {
            assert!(session[field].is_string(), "{field} in {session}");
        }
        assert_eq!(session["current"], false);
        assert!(
            session["client"].as_str().unwrap().contains("127.0.0.0/24"),
            "{session}"
        );
    }
    let victim = sessions[0]["id"].as_str().unwrap();
    // Another user cannot end it, nor can a made-up id.
    let intruder = access_token(&demo, "intruder", PASSWORD, None).await;
    for (token, id) in [(&intruder, victim), (&token, "0".repeat(64).as_str())] {
        let response = client()
            .delete(demo.url(&format!("/api/account/sessions/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
    }
    assert!(
        get(&demo, &intruder, "/api/account/sessions").await["sessions"]
            .as_array()
            .unwrap()
            .len()
            == 1
    );
    // The owner ends each of them.
    for session in sessions {
        let id = session["id"].as_str().unwrap();
        let response = client()
            .delete(demo.url(&format!("/api/account/sessions/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
    }
    assert!(!signed_in(&laptop, &demo).await);
    assert!(!signed_in(&phone, &demo).await);
    assert!(
        get(&demo, &token, "/api/account/sessions").await["sessions"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(event_types(&demo, &token)
        .await
        .iter()
        .any(|e| e == "session_ended"));
}

#[tokio::test]
async fn the_form_sign_in_of_a_two_factor_account_waits_for_the_code() {
    let demo = start();
    let (secret, _, _) = enrolled(&demo, "formal").await;
    let browser = browser_like();
    let response = login(&browser, &demo, "formal", PASSWORD).await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/login/otp");
    // Not signed in until the code.
    assert!(!signed_in(&browser, &demo).await);
    let page = browser
        .get(demo.url("/login/otp"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_token(&page);
    let wrong = browser
        .post(demo.url("/login/otp"))
        .form(&[("code", "000000"), ("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let csrf = csrf_token(&wrong.text().await.unwrap());
    let code = Totp::default().code_at(&secret, now());
    let right = browser
        .post(demo.url("/login/otp"))
        .form(&[("code", code.as_str()), ("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 303);
    assert!(signed_in(&browser, &demo).await);
    // Without a password-verified attempt, the step is no way in.
    let stranger = browser_like();
    let page = stranger
        .get(demo.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_token(&page);
    let code = Totp::default().code_at(&secret, now() + 30);
    let response = stranger
        .post(demo.url("/login/otp"))
        .form(&[("code", code.as_str()), ("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["location"], "/login");
    assert!(!signed_in(&stranger, &demo).await);
}

#[tokio::test]
async fn password_guessing_delays_the_account_and_is_recorded() {
    let demo = start();
    assert_eq!(
        register(&browser_like(), &demo, "target", PASSWORD)
            .await
            .status(),
        303
    );
    let mut statuses = Vec::new();
    for _ in 0..14 {
        statuses.push(
            api_token(&demo, "target", "guess guess guess", None)
                .await
                .status()
                .as_u16(),
        );
    }
    // Ten failures are free, the eleventh starts the delay, and from then on every
    // attempt waits.
    assert_eq!(&statuses[..11], &[401; 11], "{statuses:?}");
    assert!(statuses[11..].iter().all(|s| *s == 429), "{statuses:?}");
    // Another account is not slowed down by it.
    assert_eq!(
        register(&browser_like(), &demo, "bystander", PASSWORD)
            .await
            .status(),
        303
    );
    access_token(&demo, "bystander", PASSWORD, None).await;
    assert!(demo.log_text().contains("lockout_started"));
}

/// The messages in the demo's development outbox, decoded enough to read a link.
fn outbox(demo: &Demo) -> Vec<String> {
    let dir = demo.data_dir.path().join("outbox");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            (path.extension()? == "eml").then(|| std::fs::read_to_string(path).unwrap())
        })
        .map(|raw| decode_quoted_printable(&raw))
        .collect()
}

/// Undoes quoted-printable soft line breaks and `=XX` escapes (enough for links).
pub fn decode_quoted_printable(raw: &str) -> String {
    let joined = raw.replace("=\r\n", "").replace("=\n", "");
    let mut out = String::new();
    let mut rest = joined.as_str();
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        let hex = rest
            .get(at + 1..at + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) => {
                out.push(char::from(byte));
                rest = &rest[at + 3..];
            }
            None => {
                out.push('=');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The path of the first link to `prefix` in `message`.
fn link(message: &str, prefix: &str) -> String {
    let start = message
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix} link in {message}"));
    let path_start = message[..start].rfind("http").unwrap();
    let url: String = message[path_start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    url.split_once("://")
        .unwrap()
        .1
        .split_once('/')
        .map(|(_, p)| format!("/{p}"))
        .unwrap()
}

/// Posts `fields` to `path` as a form would, with the session's CSRF token (taken
/// from the reset page, which always has a form: a dead link's page has none).
async fn submit(
    browser: &reqwest::Client,
    demo: &Demo,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let csrf = common::token_from(browser, demo, "/reset").await;
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("csrf_token", &csrf));
    browser
        .post(demo.url(path))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// Asks for a reset of `email` through the form; the path of the link mailed to the
/// development outbox.
async fn mailed_reset_path(demo: &Demo, email: &str) -> String {
    let response = submit(&browser_like(), demo, "/reset", &[("email", email)]).await;
    assert_eq!(response.status(), 200);
    let message = outbox(demo)
        .into_iter()
        .find(|m| m.contains("/reset/"))
        .unwrap();
    link(&message, "/reset/")
}

/// Adds and confirms `email` for the account of `token`, through the mailed link.
async fn confirm_address(demo: &Demo, token: &str, email: &str) {
    let before = outbox(demo).len();
    let response = post(demo, token, "/api/account/email", json!({ "email": email })).await;
    assert_eq!(response.status(), 202);
    let messages = outbox(demo);
    assert_eq!(messages.len(), before + 1);
    let message = messages
        .iter()
        .find(|m| m.contains("/confirm-email/"))
        .unwrap();
    let path = link(message, "/confirm-email/");
    let browser = browser_like();
    let response = submit(&browser, demo, &path, &[]).await;
    assert_eq!(response.status(), 200);
    // The link is spent.
    let response = submit(&browser, demo, &path, &[]).await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn a_reset_link_works_once_ends_every_session_and_never_answers_differently() {
    let demo = start();
    assert_eq!(
        register(&browser_like(), &demo, "forgetful", PASSWORD)
            .await
            .status(),
        303
    );
    let token = access_token(&demo, "forgetful", PASSWORD, None).await;
    confirm_address(&demo, &token, "Forgetful@Example.com").await;
    let session = browser_session(&demo, "forgetful", PASSWORD).await;

    // Unknown and known addresses get the same page; only the known one gets mail.
    let before = outbox(&demo).len();
    let unknown = submit(
        &browser_like(),
        &demo,
        "/reset",
        &[("email", "nobody@example.com")],
    )
    .await;
    let unknown_status = unknown.status();
    let unknown_page = unknown.text().await.unwrap();
    assert_eq!(outbox(&demo).len(), before);
    let known = submit(
        &browser_like(),
        &demo,
        "/reset",
        &[("email", "forgetful@example.com")],
    )
    .await;
    assert_eq!(known.status(), unknown_status);
    // The pages differ only in their nonce.
    let strip = |page: &str| page.split("nonce=").next().unwrap().to_owned();
    assert_eq!(strip(&known.text().await.unwrap()), strip(&unknown_page));
    let messages = outbox(&demo);
    assert_eq!(messages.len(), before + 1);
    let message = messages.iter().find(|m| m.contains("/reset/")).unwrap();
    assert!(message.contains("To: forgetful@example.com"), "{message}");
    let path = link(message, "/reset/");

    // A forged or altered link is refused.
    let forged = format!("{}x", path);
    assert_eq!(
        browser_like()
            .get(demo.url(&forged))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    // A weak new password is refused and the link stays good.
    let browser = browser_like();
    let response = submit(&browser, &demo, &path, &[("password", "short")]).await;
    assert_eq!(response.status(), 400);
    let response = submit(&browser, &demo, &path, &[("password", NEW_PASSWORD)]).await;
    assert_eq!(response.status(), 200);
    assert!(
        !signed_in(&session, &demo).await,
        "a session survived the reset"
    );
    let response = client()
        .get(demo.url("/api/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "a token survived the reset");
    // Used once: the same link is dead.
    assert_eq!(
        browser_like()
            .get(demo.url(&path))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let fresh = access_token(&demo, "forgetful", NEW_PASSWORD, None).await;
    let events = event_types(&demo, &fresh).await;
    for expected in [
        "email_confirmed",
        "password_reset_requested",
        "password_reset_completed",
    ] {
        assert!(
            events.iter().any(|e| e == expected),
            "{expected} missing from {events:?}"
        );
    }
}

#[tokio::test]
async fn a_reset_never_bypasses_the_second_factor() {
    let demo = start();
    let (secret, recovery, token) = enrolled(&demo, "guarded").await;
    confirm_address(&demo, &token, "guarded@example.com").await;
    let path = mailed_reset_path(&demo, "guarded@example.com").await;
    let browser = browser_like();
    let page = browser
        .get(demo.url(&path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("name=\"code\""),
        "the reset page asks no code"
    );
    // Without a code, or with a wrong one: refused, the password unchanged.
    for code in ["", "000000"] {
        let response = submit(
            &browser,
            &demo,
            &path,
            &[("password", NEW_PASSWORD), ("code", code)],
        )
        .await;
        assert_eq!(response.status(), 401, "code {code:?}");
    }
    access_token(&demo, "guarded", PASSWORD, Some(&recovery[0])).await;
    // With a code the reset completes.
    let code = Totp::default().code_at(&secret, now() + 30);
    let response = submit(
        &browser,
        &demo,
        &path,
        &[("password", NEW_PASSWORD), ("code", &code)],
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        api_token(&demo, "guarded", PASSWORD, Some(&recovery[1]))
            .await
            .status(),
        401
    );
    access_token(&demo, "guarded", NEW_PASSWORD, Some(&recovery[1])).await;
}

/// A real SMTP server on loopback (Python's aiosmtpd, storing each message in a
/// maildir), killed on drop.
struct SmtpServer {
    child: std::process::Child,
    port: u16,
    maildir: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpServer {
    /// `None` (the test skipped) when aiosmtpd is not set up, unless
    /// `PORTCULLIS_REQUIRE_SMTP` says it must be.
    fn start() -> Option<Self> {
        let Some(python) = std::env::var_os("PORTCULLIS_SMTP_PYTHON") else {
            assert!(
                std::env::var_os("PORTCULLIS_REQUIRE_SMTP").is_none(),
                "PORTCULLIS_REQUIRE_SMTP is set but PORTCULLIS_SMTP_PYTHON is not"
            );
            eprintln!("SKIPPED: PORTCULLIS_SMTP_PYTHON is not set (a Python with aiosmtpd)");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let maildir = tempfile::tempdir().unwrap();
        let child = std::process::Command::new(python)
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(maildir.path().join("mail"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "aiosmtpd did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(Self {
            child,
            port,
            maildir,
        })
    }

    /// Every message received so far, decoded enough to read a link.
    fn messages(&self) -> Vec<String> {
        let new = self.maildir.path().join("mail").join("new");
        let Ok(entries) = std::fs::read_dir(new) else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path()).ok())
            .map(|raw| decode_quoted_printable(&raw))
            .collect()
    }

    /// Waits for the `count`th message.
    async fn wait_for(&self, count: usize) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no message {count} arrived"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn reset_links_travel_through_a_real_smtp_server() {
    let Some(smtp) = SmtpServer::start() else {
        return;
    };
    let url = format!("smtp://127.0.0.1:{}", smtp.port);
    let demo = Demo::start(&[
        ("PORTCULLIS_RATE_LIMITS", "bench"),
        ("PORTCULLIS_SMTP_URL", &url),
        ("PORTCULLIS_MAIL_FROM", "security@demo.example"),
    ]);
    assert_eq!(
        register(&browser_like(), &demo, "mailed", PASSWORD)
            .await
            .status(),
        303
    );
    let token = access_token(&demo, "mailed", PASSWORD, None).await;
    let response = post(
        &demo,
        &token,
        "/api/account/email",
        json!({ "email": "mailed@example.net" }),
    )
    .await;
    assert_eq!(response.status(), 202);
    let messages = smtp.wait_for(1).await;
    let confirmation = &messages[0];
    assert!(
        confirmation.contains("security@demo.example"),
        "{confirmation}"
    );
    let path = link(confirmation, "/confirm-email/");
    assert_eq!(
        submit(&browser_like(), &demo, &path, &[]).await.status(),
        200
    );
    // Nothing went to the development outbox.
    assert!(outbox(&demo).is_empty());

    // An unknown address: the same answer, and no message.
    let response = submit(
        &browser_like(),
        &demo,
        "/reset",
        &[("email", "stranger@example.net")],
    )
    .await;
    assert_eq!(response.status(), 200);
    let response = submit(
        &browser_like(),
        &demo,
        "/reset",
        &[("email", "mailed@example.net")],
    )
    .await;
    assert_eq!(response.status(), 200);
    let messages = smtp.wait_for(2).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        smtp.messages().len(),
        2,
        "a message went to an unknown address"
    );
    let reset = messages.iter().find(|m| m.contains("/reset/")).unwrap();
    assert!(reset.contains("mailed@example.net"));
    let path = link(reset, "/reset/");
    let browser = browser_like();
    assert_eq!(
        submit(&browser, &demo, &path, &[("password", NEW_PASSWORD)])
            .await
            .status(),
        200
    );
    assert_eq!(
        submit(
            &browser,
            &demo,
            &path,
            &[("password", "yet another passphrase 99")]
        )
        .await
        .status(),
        400
    );
    access_token(&demo, "mailed", NEW_PASSWORD, None).await;
    // No link is ever logged.
    let logs = demo.log_text();
    let token = path.trim_start_matches("/reset/");
    let leaked: Vec<&str> = logs.lines().filter(|line| line.contains(token)).collect();
    assert!(leaked.is_empty(), "a reset link is in the logs: {leaked:?}");
}

#[tokio::test]
async fn reset_requests_are_limited_per_address() {
    let demo = start();
    assert_eq!(
        register(&browser_like(), &demo, "flooded", PASSWORD)
            .await
            .status(),
        303
    );
    let token = access_token(&demo, "flooded", PASSWORD, None).await;
    confirm_address(&demo, &token, "flooded@example.com").await;
    let before = outbox(&demo).len();
    // A flood of requests for one address: every answer the same, a few messages.
    for _ in 0..10 {
        let response = submit(
            &browser_like(),
            &demo,
            "/reset",
            &[("email", "flooded@example.com")],
        )
        .await;
        assert_eq!(response.status(), 200);
    }
    let sent = outbox(&demo).len() - before;
    assert_eq!(sent, 3, "{sent} reset messages for one address");
}

#[tokio::test]
async fn two_factor_sign_in_and_reset_work_on_postgres() {
    let Some(db) = common::pg::TestDatabase::create().await else {
        return;
    };
    let demo = Demo::start(&[
        ("DATABASE_URL", &db.url),
        ("PORTCULLIS_RATE_LIMITS", "bench"),
    ]);
    let (secret, recovery, token) = enrolled(&demo, "pg-two-factor").await;
    let totp = Totp::default();
    let used = totp.code_at(&secret, now() - 30);
    let (status, code) =
        error_code(api_token(&demo, "pg-two-factor", PASSWORD, Some(&used)).await).await;
    assert_eq!((status, code.as_str()), (401, "otp_invalid"));
    let fresh = totp.code_at(&secret, now());
    access_token(&demo, "pg-two-factor", PASSWORD, Some(&fresh)).await;
    access_token(&demo, "pg-two-factor", PASSWORD, Some(&recovery[0])).await;
    assert_eq!(
        api_token(&demo, "pg-two-factor", PASSWORD, Some(&recovery[0]))
            .await
            .status(),
        401
    );
    confirm_address(&demo, &token, "pg@example.com").await;
    let path = mailed_reset_path(&demo, "pg@example.com").await;
    let browser = browser_like();
    let code = totp.code_at(&secret, now() + 30);
    let response = submit(
        &browser,
        &demo,
        &path,
        &[("password", NEW_PASSWORD), ("code", &code)],
    )
    .await;
    assert_eq!(response.status(), 200);
    let fresh = access_token(&demo, "pg-two-factor", NEW_PASSWORD, Some(&recovery[1])).await;
    let events = event_types(&demo, &fresh).await;
    for expected in [
        "totp_enabled",
        "otp_failed",
        "recovery_code_used",
        "email_confirmed",
        "password_reset_completed",
    ] {
        assert!(
            events.iter().any(|e| e == expected),
            "{expected} missing from {events:?}"
        );
    }
    db.drop_now(demo).await;
}

#[tokio::test]
async fn a_reused_refresh_token_is_recorded() {
    let demo = start();
    assert_eq!(
        register(&browser_like(), &demo, "reused", PASSWORD)
            .await
            .status(),
        303
    );
    let response = api_token(&demo, "reused", PASSWORD, None).await;
    let pair: Value = response.json().await.unwrap();
    let refresh = pair["refresh_token"].as_str().unwrap().to_owned();
    let refreshed = client()
        .post(demo.url("/api/token/refresh"))
        .json(&json!({ "refresh_token": refresh }))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    // The same refresh token again, as a thief holding a copy would send it.
    let replayed = client()
        .post(demo.url("/api/token/refresh"))
        .json(&json!({ "refresh_token": refresh }))
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), 401);
    let fresh = access_token(&demo, "reused", PASSWORD, None).await;
    let events = event_types(&demo, &fresh).await;
    assert!(
        events.iter().any(|e| e == "token_reuse_detected"),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_session_is_ended_from_the_account_page() {
    let demo = start();
    let me = browser_like();
    assert_eq!(register(&me, &demo, "tidy", PASSWORD).await.status(), 303);
    let laptop = browser_session(&demo, "tidy", PASSWORD).await;
    let token = access_token(&demo, "tidy", PASSWORD, None).await;
    let listed = get(&demo, &token, "/api/account/sessions").await;
    // Newest first: the laptop's sign-in.
    let laptop_id = listed["sessions"][0]["id"].as_str().unwrap().to_owned();
    let page = me
        .get(demo.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("(this device)"), "{page}");
    assert!(page.contains(&laptop_id));
    let csrf = csrf_token(&page);
    let response = me
        .post(demo.url(&format!("/account/sessions/{laptop_id}/end")))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/account");
    assert!(!signed_in(&laptop, &demo).await);
    assert!(signed_in(&me, &demo).await);
}

/// The email address (where reset links go) changes only with a token from a recent
/// sign-in: a token whose sign-in is an hour old, however freshly refreshed, is
/// refused with RFC 9470's step-up answer, and nothing is mailed.
#[tokio::test]
async fn an_email_change_needs_a_recent_sign_in() {
    use portcullis::jwt::{Jwt, JwtConfig, JwtKeys, MemoryRevocationStore};
    use portcullis::keys::{Keyring, SecretKey};

    let demo = Demo::start(&[
        ("PORTCULLIS_RATE_LIMITS", "bench"),
        ("PORTCULLIS_SECRET_KEY", common::STRONG_KEY),
    ]);
    assert_eq!(
        register(&browser_like(), &demo, "stale", PASSWORD)
            .await
            .status(),
        303
    );
    let fresh = access_token(&demo, "stale", PASSWORD, None).await;
    // The same token, its sign-in an hour ago, signed with the demo's own key: what a
    // client holding a long-refreshed token presents.
    let keyring = Keyring::new(SecretKey::parse(common::STRONG_KEY), vec![]);
    let jwt = Jwt::new(
        JwtConfig::default(),
        JwtKeys::from_keyring(&keyring),
        std::sync::Arc::new(MemoryRevocationStore::default()),
    );
    let mut claims = jwt.decode(&fresh).unwrap();
    claims.auth_time -= 3_600;
    let stale = jwt.sign_claims(&claims).unwrap();
    // Otherwise a working token.
    get(&demo, &stale, "/api/account/sessions").await;

    let response = post(
        &demo,
        &stale,
        "/api/account/email",
        json!({ "email": "thief@example.net" }),
    )
    .await;
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        error_code(response).await,
        (401, "insufficient_user_authentication".to_owned())
    );
    assert!(challenge.contains("max_age=900"), "{challenge}");
    // A token without the claim at all is never recent either.
    let mut legacy = serde_json::to_value(&claims).unwrap();
    legacy.as_object_mut().unwrap().remove("auth_time");
    let legacy: portcullis::jwt::Claims = serde_json::from_value(legacy).unwrap();
    let legacy = jwt.sign_claims(&legacy).unwrap();
    let response = post(
        &demo,
        &legacy,
        "/api/account/email",
        json!({ "email": "thief@example.net" }),
    )
    .await;
    assert_eq!(response.status(), 401);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(outbox(&demo).is_empty(), "a confirmation link was mailed");

    let response = post(
        &demo,
        &fresh,
        "/api/account/email",
        json!({ "email": "owner@example.net" }),
    )
    .await;
    assert_eq!(response.status(), 202);
}

/// A flood of sign-in attempts past the per-address limit is a `rate_limited`
/// security event with the client's address and the request id, stored once a
/// minute per source (not one row per refused request) beside the log line.
#[tokio::test]
async fn refused_sign_in_attempts_are_recorded_once_a_minute() {
    use sqlx::Connection as _;

    let demo = Demo::start(&[]);
    let mut statuses = Vec::new();
    for _ in 0..25 {
        let status = api_token(&demo, "nobody-at-all", "guess guess guess", None)
            .await
            .status()
            .as_u16();
        statuses.push(status);
    }
    assert_eq!(&statuses[..10], &[401; 10], "{statuses:?}");
    assert!(statuses[10..].iter().all(|s| *s == 429), "{statuses:?}");

    let db_path = demo.data_dir.path().join("portcullis.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db_path.display()))
        .await
        .unwrap();
    let rows: Vec<(Option<i64>, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT user_id, ip, request_id FROM security_events WHERE kind = 'rate_limited'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    // The address's bucket and the username's ran out together: one event for each.
    assert!(!rows.is_empty() && rows.len() <= 2, "{rows:?}");
    for (user_id, ip, request_id) in &rows {
        assert_eq!(*user_id, None);
        assert_eq!(ip.as_deref(), Some("127.0.0.1"));
        assert!(
            request_id.as_deref().is_some_and(|id| id.len() == 36),
            "{request_id:?}"
        );
    }
    let logs = demo.log_text();
    assert!(
        logs.lines()
            .any(|line| line.contains("security event") && line.contains("rate_limited")),
        "{logs}"
    );
}

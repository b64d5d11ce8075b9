//! The `/api` half of the contract over real HTTP: tokens, refresh, revocation, the
//! JSON routes and their errors, key rotation across restarts, and interoperability
//! with PyJWT.

mod common;

use common::{browser_like, client, register, Demo, PASSWORD, STRONG_KEY};
use serde_json::{json, Value};

async fn demo_with_user(envs: &[(&str, &str)]) -> Demo {
    let demo = Demo::start(envs);
    assert_eq!(
        register(&browser_like(), &demo, "api-user", PASSWORD)
            .await
            .status(),
        303
    );
    demo
}

async fn tokens(demo: &Demo, username: &str, password: &str) -> reqwest::Response {
    client()
        .post(demo.url("/api/token"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap()
}

async fn pair(demo: &Demo) -> Value {
    let response = tokens(demo, "api-user", PASSWORD).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn me(demo: &Demo, token: &str) -> reqwest::Response {
    client()
        .get(demo.url("/api/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test]
async fn token_me_and_comments_follow_the_contract() {
    let demo = demo_with_user(&[]).await;
    let pair = pair(&demo).await;
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 900);
    let access = pair["access_token"].as_str().unwrap();

    let profile: Value = me(&demo, access).await.json().await.unwrap();
    let keys: Vec<&str> = profile
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["created_at", "id", "username"],
        "no hash, nothing extra"
    );
    assert_eq!(profile["username"], "api-user");

    let created = client()
        .post(demo.url("/api/comments"))
        .bearer_auth(access)
        .json(&json!({ "body": "  <b>from the API</b>  " }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["content-type"], "application/json");
    let comment: Value = created.json().await.unwrap();
    assert_eq!(comment["body"], "<b>from the API</b>");
    let mut keys: Vec<_> = comment.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["body", "body_html", "created_at", "id", "username"]);
    // The HTML page shows the API's comment escaped.
    let page = client()
        .get(demo.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(comment["body_html"], "<p><b>from the API</b></p>\n");
    // The HTML page shows the comment's sanitised HTML.
    assert!(page.contains("<div class=\"comment-body\"><p><b>from the API</b></p>\n</div>"));
    for n in 0..25 {
        client()
            .post(demo.url("/api/comments"))
            .bearer_auth(access)
            .json(&json!({ "body": format!("comment {n}") }))
            .send()
            .await
            .unwrap();
    }
    let list = |query: &'static str| {
        let request = client()
            .get(demo.url(&format!("/api/comments{query}")))
            .bearer_auth(access);
        async move { request.send().await.unwrap() }
    };
    let default: Vec<Value> = list("").await.json().await.unwrap();
    assert_eq!(default.len(), 20);
    assert_eq!(default[0]["body"], "comment 24", "newest first");
    let five: Vec<Value> = list("?limit=5").await.json().await.unwrap();
    assert_eq!(five.len(), 5);
    let hundred: Vec<Value> = list("?limit=100").await.json().await.unwrap();
    assert_eq!(hundred.len(), 26);
    for bad in [
        "?limit=0",
        "?limit=101",
        "?limit=-1",
        "?limit=abc",
        "?limit=1e3",
    ] {
        assert_eq!(
            error_code(list(bad).await).await,
            (400, "bad_request".into()),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn bad_bodies_get_the_contracts_json_error() {
    let demo = demo_with_user(&[]).await;
    let access = pair(&demo).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let post = |path: &'static str, content_type: &'static str, body: Vec<u8>| {
        let request = client()
            .post(demo.url(path))
            .bearer_auth(&access)
            .header("content-type", content_type)
            .body(body);
        async move { error_code(request.send().await.unwrap()).await }
    };
    let json_type = "application/json";
    assert_eq!(
        post("/api/token", json_type, b"{not json".to_vec()).await.0,
        400
    );
    assert_eq!(
        post("/api/token", "text/plain", b"{}".to_vec()).await.0,
        415
    );
    assert_eq!(
        post("/api/token", json_type, br#"{"username":"a"}"#.to_vec())
            .await
            .0,
        422
    );
    assert_eq!(
        post(
            "/api/token",
            json_type,
            br#"{"username":"a","password":"b","admin":true}"#.to_vec()
        )
        .await
        .0,
        422
    );
    assert_eq!(
        post("/api/comments", json_type, br#"{"body":""}"#.to_vec())
            .await
            .0,
        400
    );
    assert_eq!(
        post("/api/comments", json_type, br#"{"body":7}"#.to_vec())
            .await
            .0,
        422
    );
    assert_eq!(
        post(
            "/api/comments",
            json_type,
            format!(r#"{{"body":"{}"}}"#, "x".repeat(2001)).into_bytes()
        )
        .await
        .0,
        400
    );
    let huge = format!(r#"{{"body":"{}"}}"#, "x".repeat(2 * 1024 * 1024)).into_bytes();
    assert_eq!(post("/api/comments", json_type, huge).await.0, 413);
    assert_eq!(
        post("/api/comments", json_type, b"[1,2,3]".to_vec())
            .await
            .0,
        422
    );
    assert_eq!(
        post("/api/comments", json_type, b"\xff\xfe".to_vec())
            .await
            .0,
        400
    );
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_answer() {
    let demo = demo_with_user(&[]).await;
    let unknown = tokens(&demo, "nobody", PASSWORD).await;
    let wrong = tokens(&demo, "api-user", "not the password at all").await;
    let sql = tokens(&demo, "' OR '1'='1", "' OR '1'='1").await;
    assert_eq!(unknown.status(), 401);
    assert_eq!(wrong.status(), 401);
    assert_eq!(sql.status(), 401);
    let bodies = [
        unknown.text().await.unwrap(),
        wrong.text().await.unwrap(),
        sql.text().await.unwrap(),
    ];
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[0], bodies[2]);
}

#[tokio::test]
async fn bad_tokens_get_401_with_a_bearer_challenge_never_422_or_500() {
    let demo = demo_with_user(&[]).await;
    let missing = client().get(demo.url("/api/me")).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(
        missing.headers()["www-authenticate"],
        "Bearer realm=\"api\""
    );
    for value in [
        "Bearer",
        "Bearer ",
        "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
        "Bearer a.b.c",
        "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.",
        "bearer x",
        "Bearer \u{ff}\u{fe}",
    ] {
        // Raw bytes, as a hostile client sends them, not what a client library allows.
        let header = reqwest::header::HeaderValue::from_bytes(
            &value.chars().map(|c| c as u8).collect::<Vec<u8>>(),
        )
        .unwrap();
        let response = client()
            .get(demo.url("/api/me"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{value:?}");
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(challenge.starts_with("Bearer"), "{value:?}: {challenge}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"]["code"].is_string(), "{value:?}");
    }
    let access = pair(&demo).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let tampered = format!("{}x", access);
    let response = me(&demo, &tampered).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"api\", error=\"invalid_token\""
    );
}

#[tokio::test]
async fn revoke_refresh_and_reuse_detection_over_http() {
    let demo = demo_with_user(&[]).await;
    let first = pair(&demo).await;
    let refresh = |token: String| {
        let request = client()
            .post(demo.url("/api/token/refresh"))
            .json(&json!({ "refresh_token": token }));
        async move { request.send().await.unwrap() }
    };
    // The refresh token is not an access token, nor the reverse.
    assert_eq!(
        me(&demo, first["refresh_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
    assert_eq!(
        refresh(first["access_token"].as_str().unwrap().to_owned())
            .await
            .status(),
        401
    );
    let second: Value = refresh(first["refresh_token"].as_str().unwrap().to_owned())
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(
        me(&demo, second["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    // Reusing the retired refresh token revokes the whole family.
    let reuse = refresh(first["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(error_code(reuse).await, (401, "token_revoked".into()));
    assert_eq!(
        me(&demo, second["access_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
    assert_eq!(
        refresh(second["refresh_token"].as_str().unwrap().to_owned())
            .await
            .status(),
        401
    );

    // Revoking an access token ends it and its refresh token.
    let third = pair(&demo).await;
    let access = third["access_token"].as_str().unwrap();
    let revoked = client()
        .post(demo.url("/api/token/revoke"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    assert_eq!(
        error_code(me(&demo, access).await).await,
        (401, "token_revoked".into())
    );
    assert_eq!(
        refresh(third["refresh_token"].as_str().unwrap().to_owned())
            .await
            .status(),
        401
    );
    // Another login still works.
    assert_eq!(
        me(&demo, pair(&demo).await["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn key_rotation_across_restarts() {
    let old_key = STRONG_KEY;
    let new_key = "Hk3nQ8vZp1Xw6sLr9TbY2cMf5dGj0aEu7NiRoKtVqWx";
    // Tokens outlive a restart only where their revocation records do: in Redis. An
    // in-memory store that restarted refuses every token it can no longer vouch for
    // (a revoked one would otherwise come back).
    let redis = match std::env::var("PORTCULLIS_TEST_REDIS") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                std::env::var_os("PORTCULLIS_REQUIRE_REDIS").is_none(),
                "PORTCULLIS_REQUIRE_REDIS is set but PORTCULLIS_TEST_REDIS is not"
            );
            None
        }
    };
    let prefix = format!("rotation-{}", portcullis::upload::random_id());
    let shared = |key_envs: &[(&'static str, &'static str)]| -> Vec<(String, String)> {
        let mut envs: Vec<(String, String)> = key_envs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        if let Some(url) = &redis {
            envs.push(("REDIS_URL".into(), url.clone()));
            envs.push(("PORTCULLIS_REDIS_PREFIX".into(), prefix.clone()));
        }
        envs
    };
    let first = shared(&[("PORTCULLIS_SECRET_KEY", old_key)]);
    let demo = demo_with_user(&borrowed(&first)).await;
    let access = pair(&demo).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let data = demo.stop();
    let second = shared(&[
        ("PORTCULLIS_SECRET_KEY", new_key),
        ("PORTCULLIS_SECRET_KEY_FALLBACKS", old_key),
    ]);
    let rotated = Demo::start_in(&borrowed(&second), data);
    let expected = if redis.is_some() { 200 } else { 401 };
    assert_eq!(
        me(&rotated, &access).await.status(),
        expected,
        "a fallback key must verify (with its records in Redis); a restarted \
         in-memory store must refuse what it forgot"
    );
    let data = rotated.stop();
    let third = shared(&[("PORTCULLIS_SECRET_KEY", new_key)]);
    let retired = Demo::start_in(&borrowed(&third), data);
    assert_eq!(
        me(&retired, &access).await.status(),
        401,
        "a retired key must not"
    );
}

fn borrowed(envs: &[(String, String)]) -> Vec<(&str, &str)> {
    envs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect()
}

/// A restart of an instance with in-memory state: every API token from before is
/// refused, since the new store cannot tell the ones revoked before the restart.
#[tokio::test]
async fn tokens_revoked_before_a_restart_stay_refused_after_it() {
    let demo = demo_with_user(&[("PORTCULLIS_SECRET_KEY", STRONG_KEY)]).await;
    let tokens = pair(&demo).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let revoked = client()
        .post(demo.url("/api/token/revoke"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success(), "{}", revoked.status());
    assert_eq!(me(&demo, &access).await.status(), 401);
    let data = demo.stop();
    let restarted = Demo::start_in(&[("PORTCULLIS_SECRET_KEY", STRONG_KEY)], data);
    assert_eq!(
        me(&restarted, &access).await.status(),
        401,
        "a revoked token came back after a restart"
    );
}

/// PyJWT, from PyPI, on both sides of the exchange. `.ci/run` installs it in a virtual
/// environment and names its Python in `PORTCULLIS_PYJWT_PYTHON`.
#[tokio::test]
async fn pyjwt_and_portcullis_accept_each_others_tokens() {
    let Some(python) = std::env::var_os("PORTCULLIS_PYJWT_PYTHON") else {
        assert!(
            std::env::var_os("PORTCULLIS_REQUIRE_PYJWT").is_none(),
            "PORTCULLIS_REQUIRE_PYJWT is set but PORTCULLIS_PYJWT_PYTHON is not"
        );
        eprintln!(
            "SKIPPED: PORTCULLIS_PYJWT_PYTHON is not set; PyJWT interoperability did not run"
        );
        return;
    };
    let demo = demo_with_user(&[("PORTCULLIS_SECRET_KEY", STRONG_KEY)]).await;
    let access = pair(&demo).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let keyring =
        portcullis::keys::Keyring::new(portcullis::keys::SecretKey::parse(STRONG_KEY), vec![]);
    let subkey = &keyring.subkeys(portcullis::keys::Purpose::JWT)[0];
    let key_hex: String = subkey.bytes().iter().map(|b| format!("{b:02x}")).collect();
    // PyJWT mints an access token of the same login (its family), as a Python service
    // sharing the key would: a family the store does not know is refused.
    let script = r#"
import json, os, sys, time, jwt
key = bytes.fromhex(os.environ["KEY_HEX"])
claims = jwt.decode(os.environ["TOKEN"], key, algorithms=["HS256"],
                    audience="portcullis-api", issuer="portcullis",
                    options={"require": ["exp", "nbf", "iat", "iss", "aud", "sub"]})
now = int(time.time())
mine = {"sub": claims["sub"], "iat": now, "nbf": now, "exp": now + 300,
        "jti": "pyjwt-1", "iss": "portcullis", "aud": "portcullis-api",
        "typ": "access", "fam": claims["fam"]}
token = jwt.encode(mine, key, algorithm="HS256", headers={"kid": os.environ["KID"]})
print(json.dumps({"verified": claims, "token": token, "version": jwt.__version__}))
"#;
    let output = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .env("KEY_HEX", key_hex)
        .env("KID", subkey.id())
        .env("TOKEN", &access)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "PyJWT refused the Portcullis token: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["verified"]["typ"], "access");
    let pyjwt_token = result["token"].as_str().unwrap();
    let profile = me(&demo, pyjwt_token).await;
    assert_eq!(profile.status(), 200, "Portcullis refused the PyJWT token");
    let profile: Value = profile.json().await.unwrap();
    assert_eq!(profile["username"], "api-user");
}

#[tokio::test]
async fn tokens_and_personal_pages_are_kept_out_of_shared_caches() {
    let demo = demo_with_user(&[]).await;
    // RFC 6749 §5.1: the token endpoint's answers are never stored.
    let issued = tokens(&demo, "api-user", PASSWORD).await;
    assert_eq!(issued.status(), 200);
    assert_eq!(issued.headers()["cache-control"], "no-store");
    assert_eq!(issued.headers()["pragma"], "no-cache");
    let body: Value = issued.json().await.unwrap();
    let refreshed = client()
        .post(demo.url("/api/token/refresh"))
        .json(&json!({ "refresh_token": body["refresh_token"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    assert_eq!(refreshed.headers()["cache-control"], "no-store");

    // A form view that starts a session (its CSRF secret) must not be cached for
    // everyone: the next visitor would get this visitor's cookie and token.
    let form = client().get(demo.url("/login")).send().await.unwrap();
    assert!(form.headers().contains_key("set-cookie"));
    assert_eq!(form.headers()["cache-control"], "no-store");
    let vary = form.headers()["vary"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(vary.contains("cookie"), "{vary}");

    // A signed-in page: personal, so not stored, and keyed by the cookie.
    let browser = browser_like();
    register(&browser, &demo, "cache-user", PASSWORD).await;
    let home = browser.get(demo.url("/")).send().await.unwrap();
    assert_eq!(home.status(), 200);
    assert_eq!(home.headers()["cache-control"], "no-store");
    let vary = home.headers()["vary"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(vary.contains("cookie"), "{vary}");

    // An anonymous page still carries a nonce in its CSP: not stored either.
    let anonymous = client().get(demo.url("/")).send().await.unwrap();
    assert_eq!(anonymous.headers()["cache-control"], "no-store");
    // Static files depend on nobody and stay cacheable.
    let css = client()
        .get(demo.url("/static/style.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert_ne!(
        css.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
}

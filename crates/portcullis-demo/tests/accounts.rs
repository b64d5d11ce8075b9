//! Register, log in, comment, log out, over real HTTP against the real binary; and the
//! attacks on each step: session fixation and replay, tampered cookies, CSRF, XSS, SQL
//! injection, user enumeration, open redirects, legacy password hashes.

mod common;

use common::{
    assert_no_active_markup, browser_like, client, comment, comments_section, csrf_token, database,
    html_text, login, page_with_session, register, token_from, Demo, PASSWORD,
};

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("session="))
        .map(str::to_owned)
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("session=")
        .to_owned()
}

async fn home(client: &reqwest::Client, demo: &Demo) -> String {
    client
        .get(demo.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn comment_count(demo: &Demo) -> i64 {
    let mut db = database(demo).await;
    sqlx::query_scalar("SELECT count(*) FROM comments")
        .fetch_one(&mut db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_person_registers_comments_and_logs_out() {
    let demo = Demo::start(&[]);
    let http = browser_like();
    let response = register(&http, &demo, "alice", PASSWORD).await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/");
    let cookie = session_cookie(&response).expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.to_ascii_lowercase().contains("domain"), "{cookie}");
    // Plain HTTP in development: no Secure, and no __Host- prefix.
    assert!(!cookie.contains("Secure"), "{cookie}");

    let page = home(&http, &demo).await;
    assert!(
        page.contains("Signed in as <strong>alice</strong>"),
        "{page}"
    );
    let posted = comment(&http, &demo, "Hello from alice").await;
    assert_eq!(posted.status(), 303);
    assert!(home(&http, &demo).await.contains("Hello from alice"));

    let token = csrf_token(&home(&http, &demo).await);
    let out = http
        .post(demo.url("/logout"))
        .form(&[("csrf_token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let page = home(&http, &demo).await;
    assert!(!page.contains("Signed in as"), "{page}");
    assert!(page.contains("Hello from alice"));

    // Log in again with the same password.
    let again = login(&http, &demo, "alice", PASSWORD).await;
    assert_eq!(again.status(), 303);
    assert!(home(&http, &demo).await.contains("Signed in as"));
}

#[tokio::test]
async fn session_id_changes_at_login_and_the_fixated_one_is_worthless() {
    let demo = Demo::start(&[]);
    register(&browser_like(), &demo, "bob", PASSWORD).await;

    // The attacker gets an anonymous session id and plants it on the victim.
    let anonymous = client().get(demo.url("/login")).send().await.unwrap();
    let planted = cookie_value(&session_cookie(&anonymous).unwrap());
    let token = csrf_token(&anonymous.text().await.unwrap());
    let logged_in = client()
        .post(demo.url("/login"))
        .header("cookie", format!("session={planted}"))
        .form(&[
            ("username", "bob"),
            ("password", PASSWORD),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(logged_in.status(), 303);
    let issued = cookie_value(&session_cookie(&logged_in).expect("a new cookie at login"));
    assert_ne!(issued, planted);

    let with_planted = page_with_session(&demo, "/", &planted).await;
    assert!(!with_planted.contains("Signed in as"), "fixation worked");
    let with_issued = page_with_session(&demo, "/", &issued).await;
    assert!(with_issued.contains("Signed in as <strong>bob</strong>"));
}

#[tokio::test]
async fn an_old_cookie_replayed_after_logout_is_anonymous() {
    let demo = Demo::start(&[]);
    let http = browser_like();
    let response = register(&http, &demo, "carol", PASSWORD).await;
    let stolen = cookie_value(&session_cookie(&response).unwrap());
    let stolen_token = csrf_token(&home(&http, &demo).await);
    let token = csrf_token(&home(&http, &demo).await);
    http.post(demo.url("/logout"))
        .form(&[("csrf_token", token)])
        .send()
        .await
        .unwrap();

    let page = page_with_session(&demo, "/", &stolen).await;
    assert!(!page.contains("Signed in as"), "{page}");
    let before = comment_count(&demo).await;
    let post = client()
        .post(demo.url("/comments"))
        .header("cookie", format!("session={stolen}"))
        .form(&[("body", "replayed"), ("csrf_token", &stolen_token)])
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 403, "a token from before logout must fail");
    let body: serde_json::Value = client()
        .post(demo.url("/comments"))
        .header("cookie", format!("session={stolen}"))
        .header("accept", "application/json")
        .form(&[("body", "replayed"), ("csrf_token", &stolen_token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["error"]["code"], "csrf_expired");
    assert_eq!(comment_count(&demo).await, before);
}

#[tokio::test]
async fn tampered_and_forged_cookies_are_anonymous() {
    let demo = Demo::start(&[]);
    let response = register(&browser_like(), &demo, "dave", PASSWORD).await;
    let genuine = cookie_value(&session_cookie(&response).unwrap());
    let mut tampered = genuine.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let forged = format!("{}.{}", genuine.rsplit_once('.').unwrap().0, "A".repeat(43));
    for cookie in [
        tampered.as_str(),
        forged.as_str(),
        "",
        "x",
        "a.b.c",
        "%00%ff",
    ] {
        let response = client()
            .get(demo.url("/"))
            .header("cookie", format!("session={cookie}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{cookie:?}");
        let page = response.text().await.unwrap();
        assert!(!page.contains("Signed in as"), "{cookie:?}");
    }
}

#[tokio::test]
async fn forged_requests_are_refused_with_their_reason() {
    let demo = Demo::start(&[]);
    let victim = browser_like();
    register(&victim, &demo, "erin", PASSWORD).await;
    let other = browser_like();
    register(&other, &demo, "frank", PASSWORD).await;
    let valid = csrf_token(&home(&victim, &demo).await);
    let foreign = csrf_token(&home(&other, &demo).await);
    let before = comment_count(&demo).await;

    let attempt = |body: Vec<(&'static str, String)>, headers: Vec<(&'static str, String)>| {
        let mut request = victim
            .post(demo.url("/comments"))
            .header("accept", "application/json")
            .form(&body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let json: serde_json::Value = response.json().await.unwrap();
            (
                status,
                json["error"]["code"].as_str().unwrap_or("").to_owned(),
            )
        }
    };
    let body = |token: &str| {
        vec![
            ("body", "forged".to_owned()),
            ("csrf_token", token.to_owned()),
        ]
    };

    assert_eq!(
        attempt(vec![("body", "forged".to_owned())], vec![]).await,
        (403, "csrf_missing".into())
    );
    assert_eq!(
        attempt(body(""), vec![]).await,
        (403, "csrf_missing".into())
    );
    assert_eq!(
        attempt(body(&foreign), vec![]).await,
        (403, "csrf_invalid".into())
    );
    assert_eq!(
        attempt(body("garbage"), vec![]).await,
        (403, "csrf_invalid".into())
    );
    let mut flipped = valid.clone().into_bytes();
    flipped[5] ^= 1;
    assert_eq!(
        attempt(body(&String::from_utf8(flipped).unwrap()), vec![])
            .await
            .0,
        403
    );
    assert_eq!(
        attempt(body(&valid), vec![("origin", "http://evil.example".into())]).await,
        (403, "csrf_origin".into())
    );
    assert_eq!(
        attempt(body(&valid), vec![("sec-fetch-site", "cross-site".into())]).await,
        (403, "csrf_origin".into())
    );
    assert_eq!(
        attempt(body(&valid), vec![("origin", "null".into())]).await,
        (403, "csrf_origin".into())
    );
    assert_eq!(
        comment_count(&demo).await,
        before,
        "a forged comment was stored"
    );
    assert!(demo.log_text().contains("csrf_rejected"));

    // The genuine token, from the victim's own page, works.
    let (status, _) = {
        let response = victim
            .post(demo.url("/comments"))
            .form(&body(&valid))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), ())
    };
    assert_eq!(status, 303);
    // Tokens are masked afresh on every render.
    assert_ne!(
        csrf_token(&home(&victim, &demo).await),
        csrf_token(&home(&victim, &demo).await)
    );
}

#[tokio::test]
async fn login_and_register_forms_need_the_token_too() {
    let demo = Demo::start(&[]);
    let http = browser_like();
    let no_token = http
        .post(demo.url("/register"))
        .form(&[("username", "mallory"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 403);
    register(&http, &demo, "grace", PASSWORD).await;
    let attacker = browser_like();
    let forced_login = attacker
        .post(demo.url("/login"))
        .form(&[("username", "grace"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(forced_login.status(), 403);
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_answer() {
    let demo = Demo::start(&[]);
    register(&browser_like(), &demo, "heidi", PASSWORD).await;
    let demo = &demo;
    let answer = |username: &'static str, password: &'static str| async move {
        let http = browser_like();
        let response = login(&http, demo, username, password).await;
        let status = response.status();
        let body = response.text().await.unwrap();
        // Each page has its own nonce and token; everything else must match.
        let token = csrf_token(&body);
        let nonce = body
            .split("nonce=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap()
            .to_owned();
        (
            status,
            body.replace(&token, "TOKEN")
                .replace(&nonce, "NONCE")
                .replace(username, "USERNAME"),
        )
    };
    let unknown = answer("nobody-here", "correct horse battery staple 43").await;
    let wrong = answer("heidi", "correct horse battery staple 43").await;
    assert_eq!(unknown.0, 401);
    assert_eq!(unknown, wrong);
    assert!(unknown.1.contains("Unknown username or wrong password."));
    // The username typed is kept in the form; the password is not.
    assert!(unknown.1.contains("value=\"USERNAME\""));
    assert!(!unknown.1.contains("correct horse battery staple 43"));
}

#[tokio::test]
async fn next_is_followed_only_to_local_paths() {
    let demo = Demo::start(&[]);
    register(&browser_like(), &demo, "ivan", PASSWORD).await;
    for (next, expected) in [
        ("/files", "/files"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
    ] {
        let http = browser_like();
        let token = token_from(&http, &demo, "/login").await;
        let response = http
            .post(demo.url("/login"))
            .form(&[
                ("username", "ivan"),
                ("password", PASSWORD),
                ("csrf_token", &token),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
        assert_eq!(response.headers()["location"], expected, "{next}");
    }
    let form = client()
        .get(demo.url("/login?next=https://evil.example"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(form.contains("name=\"next\" value=\"&#x2f;\""), "{form}");
}

/// Payloads from the OWASP XSS filter-evasion cheat sheet.
const XSS_PAYLOADS: &[&str] = &[
    "<script>document.documentElement.dataset.xss='1'</script>",
    "<SCRIPT SRC=https://cdn.example/xss.js></SCRIPT>",
    "javascript:/*--></title></style></textarea></script></xmp><svg/onload='+/\"/+/onmouseover=1/+/[*/[]/+alert(1)//'>",
    "<IMG SRC=\"javascript:alert('XSS');\">",
    "<IMG SRC=javascript:alert('XSS')>",
    "<IMG SRC=`javascript:alert(\"RSnake says, 'XSS'\")`>",
    "<a onmouseover=\"alert(document.cookie)\">xxs link</a>",
    "<IMG \"\"\"><SCRIPT>alert(\"XSS\")</SCRIPT>\">",
    "<IMG SRC=# onmouseover=\"alert('xxs')\">",
    "<IMG SRC=/ onerror=\"alert(String.fromCharCode(88,83,83))\"></img>",
    "<img src=x onerror=\"&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116&#0000058&#0000097&#0000108&#0000101&#0000114&#0000116&#0000040&#0000039&#0000088&#0000083&#0000083&#0000039&#0000041\">",
    "<IMG SRC=\"jav\tascript:alert('XSS');\">",
    "<SCRIPT/XSS SRC=\"http://xss.rocks/xss.js\"></SCRIPT>",
    "<BODY onload!#$%&()*~+-_.,:;?@[/|\\]^`=alert(\"XSS\")>",
    "<<SCRIPT>alert(\"XSS\");//\\<</SCRIPT>",
    "<SCRIPT SRC=http://xss.rocks/xss.js?< B >",
    "<iframe src=http://xss.rocks/scriptlet.html <",
    "</TITLE><SCRIPT>alert(\"XSS\");</SCRIPT>",
    "<INPUT TYPE=\"IMAGE\" SRC=\"javascript:alert('XSS');\">",
    "<svg/onload=alert('XSS')>",
    "<BODY BACKGROUND=\"javascript:alert('XSS')\">",
    "<STYLE>@import'http://xss.rocks/xss.css';</STYLE>",
    "<META HTTP-EQUIV=\"refresh\" CONTENT=\"0;url=javascript:alert('XSS');\">",
    "<TABLE BACKGROUND=\"javascript:alert('XSS')\">",
    "<DIV STYLE=\"background-image: url(javascript:alert('XSS'))\">",
    "\"><script>alert(1)</script>",
    "'';!--\"<XSS>=&{()}",
    "<object data=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\"></object>",
];

#[tokio::test]
async fn xss_payloads_in_comments_are_sanitized() {
    let demo = Demo::start(&[]);
    let http = browser_like();
    register(&http, &demo, "judy", PASSWORD).await;
    let mut posted = 0;
    for payload in XSS_PAYLOADS {
        let response = comment(&http, &demo, payload).await;
        assert_eq!(response.status(), 303, "{payload}");
        posted += 1;
        // Check each page while it shows the newest twenty.
        let page = client()
            .get(demo.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let comments = comments_section(&page);
        assert_no_active_markup(comments, payload);
    }
    assert!(posted >= 20);
}

#[tokio::test]
async fn sql_injection_payloads_are_data() {
    // Fifteen login attempts from one address within a minute: more than the login
    // limit allows, which is not what this test is about.
    let demo = Demo::start(&[("PORTCULLIS_RATE_LIMITS", "bench")]);
    let http = browser_like();
    // A password full of SQL is just a password.
    let sql_password = "' OR '1'='1'; DROP TABLE users;-- x9";
    assert_eq!(
        register(&http, &demo, "kate", sql_password).await.status(),
        303
    );
    let payloads = [
        "' OR '1'='1",
        "'; DROP TABLE users;--",
        "' UNION SELECT username, password_hash FROM users--",
        "1; DELETE FROM comments",
        "admin'/*",
        "\" OR \"\"=\"",
        "') OR ('a'='a",
    ];
    for payload in payloads {
        assert_eq!(comment(&http, &demo, payload).await.status(), 303);
    }
    let page = home(&http, &demo).await;
    for payload in payloads {
        // Markdown text: only `&`, `<` and `>` are escaped.
        assert!(page.contains(&html_text(payload)), "{payload}");
    }
    // None of them logs anybody in, as username or as password.
    for payload in payloads {
        let attacker = browser_like();
        assert_eq!(
            login(&attacker, &demo, payload, payload).await.status(),
            401
        );
        assert_eq!(login(&attacker, &demo, "kate", payload).await.status(), 401);
        assert!(!home(&attacker, &demo).await.contains("Signed in as"));
    }
    assert_eq!(
        login(&browser_like(), &demo, "kate", sql_password)
            .await
            .status(),
        303
    );
    let mut db = database(&demo).await;
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(users, 1);
    let stored: Vec<String> = sqlx::query_scalar("SELECT body FROM comments ORDER BY id")
        .fetch_all(&mut db)
        .await
        .unwrap();
    assert_eq!(stored, payloads);
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_keeps_the_rest_of_the_form() {
    let demo = Demo::start(&[]);
    let http = browser_like();
    let weak = register(&http, &demo, "leo", "password123").await;
    assert_eq!(weak.status(), 400);
    let page = weak.text().await.unwrap();
    assert!(page.contains("most common"), "{page}");
    assert!(page.contains("value=\"leo\""), "{page}");
    let same = register(&http, &demo, "leonardo", "Leonardo").await;
    assert_eq!(same.status(), 400);
    let bad_name = register(&http, &demo, "le o<script>", PASSWORD).await;
    assert_eq!(bad_name.status(), 400);
    assert!(!bad_name.text().await.unwrap().contains("<script>"));
    assert_eq!(register(&http, &demo, "leo", PASSWORD).await.status(), 303);
    let taken = register(&browser_like(), &demo, "leo", PASSWORD).await;
    assert_eq!(taken.status(), 409);

    for (body, message) in [
        ("   ", "required"),
        ("bell\u{7}", "Control characters"),
        (&"x".repeat(2001) as &str, "at most 2000"),
    ] {
        let response = comment(&http, &demo, body).await;
        assert_eq!(response.status(), 400, "{body:?}");
        let page = response.text().await.unwrap();
        assert!(page.contains(message), "{page}");
    }
    let kept = comment(&http, &demo, &format!("keep me {}", "y".repeat(2000))).await;
    assert!(kept.text().await.unwrap().contains("keep me yyy"));
    assert_eq!(comment_count(&demo).await, 0);
    // Anonymous posting is refused.
    let anonymous = browser_like();
    let token = token_from(&anonymous, &demo, "/login").await;
    let response = anonymous
        .post(demo.url("/comments"))
        .form(&[("body", "hi"), ("csrf_token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_werkzeug_hash_logs_in_and_becomes_argon2id() {
    let vectors: serde_json::Value = serde_json::from_str(include_str!(
        "../../portcullis/tests/fixtures/password_vectors.json"
    ))
    .unwrap();
    let list = vectors
        .as_array()
        .or_else(|| vectors["vectors"].as_array())
        .unwrap();
    let vector = list
        .iter()
        .find(|v| v["hash"].as_str().unwrap().starts_with("scrypt:"))
        .unwrap();
    let (password, hash) = (
        vector["password"].as_str().unwrap(),
        vector["hash"].as_str().unwrap(),
    );
    let demo = Demo::start(&[]);
    register(&browser_like(), &demo, "setup", PASSWORD).await;
    let mut db = database(&demo).await;
    sqlx::query("INSERT INTO users (username, password_hash, created_at) VALUES ('flaskuser', ?, '2024-01-01T00:00:00Z')")
        .bind(hash)
        .execute(&mut db)
        .await
        .unwrap();
    assert_eq!(
        login(&browser_like(), &demo, "flaskuser", &format!("{password}x"))
            .await
            .status(),
        401
    );
    let http = browser_like();
    assert_eq!(
        login(&http, &demo, "flaskuser", password).await.status(),
        303
    );
    let upgraded: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE username = 'flaskuser'")
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert!(
        upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{upgraded}"
    );
    // And the upgraded hash still logs in.
    assert_eq!(
        login(&browser_like(), &demo, "flaskuser", password)
            .await
            .status(),
        303
    );
}

#[tokio::test]
async fn over_https_the_cookie_is_host_prefixed_and_secure() {
    let data_dir = tempfile::tempdir().unwrap();
    let (cert, key) = portcullis::https::write_dev_cert(&data_dir.path().join("tls")).unwrap();
    let demo = Demo::start_in(
        &[
            ("PORTCULLIS_TLS_CERT", cert.to_str().unwrap()),
            ("PORTCULLIS_TLS_KEY", key.to_str().unwrap()),
        ],
        data_dir,
    );
    let addr: std::net::SocketAddr = demo.base.trim_start_matches("https://").parse().unwrap();
    let https = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap(),
        )
        .resolve("localhost", addr)
        .build()
        .unwrap();
    let response = https
        .get(format!("https://localhost:{}/login", addr.port()))
        .send()
        .await
        .unwrap();
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-session="))
        .expect("a __Host- cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.to_ascii_lowercase().contains("domain"));
    // Log in over HTTPS; the same id under the plain name is not believed there (a
    // plain cookie may have been planted over HTTP or by a sibling subdomain).
    let base = format!("https://localhost:{}", addr.port());
    let html = https.get(format!("{base}/register")).send().await.unwrap();
    let jar_cookie = html
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-session="))
        .unwrap();
    let token = csrf_token(&html.text().await.unwrap());
    let registered = https
        .post(format!("{base}/register"))
        .header("cookie", &jar_cookie)
        .form(&[
            ("username", "tls-user"),
            ("password", PASSWORD),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 303);
    let session = registered
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-session="))
        .unwrap();
    let page = |cookie: String| {
        let request = https.get(format!("{base}/")).header("cookie", cookie);
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    assert!(page(session.clone()).await.contains("Signed in as"));
    let plain = session.replacen("__Host-session=", "session=", 1);
    assert!(!page(plain).await.contains("Signed in as"));
}

#[tokio::test]
async fn a_name_differing_only_in_case_cannot_register_again() {
    let demo = Demo::start(&[]);
    common::usernames_differing_in_case_are_one_account(&demo).await;
    let mut db = database(&demo).await;
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(users, 1);
    // The database refuses it too, whoever writes.
    let direct = sqlx::query(
        "INSERT INTO users (username, password_hash, created_at) VALUES ('ALICE', 'x', 'now')",
    )
    .execute(&mut db)
    .await;
    assert!(direct.is_err());
}

#[tokio::test]
async fn a_werkzeug_hash_signing_in_through_the_api_becomes_argon2id() {
    let vectors: serde_json::Value = serde_json::from_str(include_str!(
        "../../portcullis/tests/fixtures/password_vectors.json"
    ))
    .unwrap();
    let list = vectors
        .as_array()
        .or_else(|| vectors["vectors"].as_array())
        .unwrap();
    let demo = Demo::start(&[]);
    let mut db = database(&demo).await;
    // One werkzeug scrypt and one werkzeug PBKDF2 account, as a Flask app left them.
    for (name, prefix) in [("apiscrypt", "scrypt:"), ("apipbkdf2", "pbkdf2:")] {
        let vector = list
            .iter()
            .find(|v| v["hash"].as_str().unwrap().starts_with(prefix))
            .unwrap();
        let (password, hash) = (
            vector["password"].as_str().unwrap(),
            vector["hash"].as_str().unwrap(),
        );
        sqlx::query("INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, '2024-01-01T00:00:00Z')")
            .bind(name)
            .bind(hash)
            .execute(&mut db)
            .await
            .unwrap();
        let token = |password: String| {
            client()
                .post(demo.url("/api/token"))
                .json(&serde_json::json!({ "username": name, "password": password }))
                .send()
        };
        assert_eq!(token(format!("{password}x")).await.unwrap().status(), 401);
        let stored: String =
            sqlx::query_scalar("SELECT password_hash FROM users WHERE username = ?")
                .bind(name)
                .fetch_one(&mut db)
                .await
                .unwrap();
        assert_eq!(stored, hash, "a wrong password changed the hash");
        let issued = token(password.to_owned()).await.unwrap();
        assert_eq!(issued.status(), 200);
        let upgraded: String =
            sqlx::query_scalar("SELECT password_hash FROM users WHERE username = ?")
                .bind(name)
                .fetch_one(&mut db)
                .await
                .unwrap();
        assert!(
            upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{name}: {upgraded}"
        );
        // The upgraded hash signs in on both paths.
        assert_eq!(token(password.to_owned()).await.unwrap().status(), 200);
        assert_eq!(
            login(&browser_like(), &demo, name, password).await.status(),
            303
        );
    }
}

//! Sessions, login and CSRF on an HTML form: server-side sessions in memory, Argon2id
//! password hashes, and a CSRF token in every form.
//!
//!     cargo run -p example-form-login
//!     open http://127.0.0.1:3000/ and log in as alice / correct horse battery staple

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use portcullis::auth::{login, safe_next, CredentialStore, CurrentUser, MaybeUser};
use portcullis::csrf::{hidden_field, CsrfConfig, CsrfToken};
use portcullis::error::{escape_html, Error};
use portcullis::input::username_key;
use portcullis::keys::Keyring;
use portcullis::password::{PasswordConfig, Passwords};
use portcullis::serve::ServeConfig;
use portcullis::session::{MemorySessionStore, Session, SessionConfig};
use portcullis::stack::SecureStack;
use serde::Deserialize;

/// Your users table: `CredentialStore` is all `auth::login` needs from it.
struct Users(Mutex<HashMap<String, (i64, String)>>);

impl CredentialStore for Users {
    type Error = std::convert::Infallible;

    async fn find(&self, username: &str) -> Result<Option<(i64, String)>, Self::Error> {
        // The one key under which a name is stored and looked up (` Alice ` is `alice`).
        Ok(self.0.lock().unwrap().get(&username_key(username)).cloned())
    }

    // Called after a login with a legacy (werkzeug, bcrypt) or weaker hash.
    async fn replace_hash(&self, id: i64, hash: &str) -> Result<(), Self::Error> {
        for (user, stored) in self.0.lock().unwrap().values_mut() {
            if *user == id {
                *stored = hash.to_owned();
            }
        }
        Ok(())
    }
}

#[derive(Clone)]
struct AppState {
    passwords: Passwords,
    users: Arc<Users>,
}

async fn home(user: MaybeUser, token: CsrfToken) -> Html<String> {
    Html(match user.0 {
        // Logging out changes state, so it is a POST with the token, never a GET link.
        Some(id) => format!(
            "<p>Signed in as user {id}. <a href=/private>Private page</a></p>\
             <form method=post action=/logout>{}<button>Log out</button></form>",
            hidden_field(token.as_str())
        ),
        None => "<p><a href=/login>Log in</a></p>".to_owned(),
    })
}

#[derive(Deserialize)]
struct Next {
    next: Option<String>,
}

fn login_page(token: &CsrfToken, next: Option<&str>, error: &str) -> Html<String> {
    Html(format!(
        "<p>{}</p><form method=post action=/login>{}\
         <input type=hidden name=next value=\"{}\">\
         <input name=username autocomplete=username>\
         <input name=password type=password autocomplete=current-password>\
         <button>Log in</button></form>",
        escape_html(error),
        hidden_field(token.as_str()),
        escape_html(safe_next(next)),
    ))
}

async fn login_form(token: CsrfToken, Query(query): Query<Next>) -> Html<String> {
    login_page(&token, query.next.as_deref(), "")
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
    next: Option<String>,
}

// The CSRF layer has checked the form's token before this runs.
async fn login_submit(
    State(state): State<AppState>,
    session: Session,
    token: CsrfToken,
    Form(form): Form<Credentials>,
) -> Result<Response, Error> {
    // Unknown names cost the same time as wrong passwords.
    let account = login(
        &state.passwords,
        &*state.users,
        &form.username,
        &form.password,
    )
    .await?;
    match account {
        Some(id) => {
            // A new session id: a session fixed before login is worthless.
            session.login(id);
            // `safe_next` keeps the redirect on this site (no open redirect).
            Ok(Redirect::to(safe_next(form.next.as_deref())).into_response())
        }
        None => {
            let error = "Unknown username or wrong password.";
            let page = login_page(&token, form.next.as_deref(), error);
            Ok((StatusCode::UNAUTHORIZED, page).into_response())
        }
    }
}

async fn logout(session: Session) -> Redirect {
    // The record is deleted on the server: the old cookie, replayed, is anonymous.
    session.destroy();
    Redirect::to("/")
}

// `CurrentUser` answers anonymous requests with 401.
async fn private(user: CurrentUser) -> String {
    format!("Only user {} sees this.", user.id)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _logs = portcullis::logging::init("info");
    // A real app loads its key from `PORTCULLIS_SECRET_KEY`
    // (`portcullis::config::Settings::from_env()?.keyring()`); this one lasts the process.
    let keyring = Keyring::ephemeral();
    let passwords = Passwords::new(PasswordConfig::default())?;
    // One account, alice (id 1), with an Argon2id hash of her password.
    let hash = passwords
        .hash("correct horse battery staple".to_owned())
        .await?;
    let users = Users(Mutex::new(HashMap::from([("alice".to_owned(), (1, hash))])));

    let router = Router::new()
        .route("/", get(home))
        .route("/login", get(login_form).post(login_submit))
        .route("/logout", post(logout))
        .route("/private", get(private))
        .with_state(AppState {
            passwords,
            users: Arc::new(users),
        });

    let sessions = SessionConfig::default()
        // Development only: the cookie also travels over plain HTTP.
        .insecure_cookie_over_plain_http()
        .layer(&keyring, Arc::new(MemorySessionStore::default()));
    let app = SecureStack::default()
        .sessions(sessions)
        .csrf(CsrfConfig::default().layer(&keyring)?)
        .apply(router)?;

    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://127.0.0.1:{port}");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    portcullis::serve::serve(listener, app, ServeConfig::default(), shutdown).await?;
    Ok(())
}

//! What the fuzz targets share: one current-thread runtime, requests sent through a
//! router as a served app would see them, the fixed key the seed corpora are signed
//! with, and writing those seeds.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt as _;
use portcullis::keys::{Keyring, SecretKey};
use tower::ServiceExt as _;

/// The key every target signs with. Fixed, so that seeds written once (cookies, JWTs)
/// still carry a key id and a MAC the target knows, and the fuzzer starts past the
/// "unknown key" early return.
pub const FIXED_KEY: &str = "portcullis-fuzz-fixed-key-not-secret-0123456789abcdef";

/// The keyring of [`FIXED_KEY`].
pub fn keyring() -> Keyring {
    Keyring::new(SecretKey::parse(FIXED_KEY), vec![])
}

/// One current-thread runtime per fuzzing process: the layers spawn nothing that
/// needs more, and one thread keeps an execution deterministic.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime")
    })
}

/// The peer every request comes from (what `ConnectInfo` says when served).
pub const PEER: ([u8; 4], u16) = ([203, 0, 113, 7], 40000);

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Reply {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The value (before `;`) of the `Set-Cookie` named `name`.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(axum::http::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .filter_map(|pair| pair.split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_owned())
    }
}

/// Sends `req` through `app` from [`PEER`] and reads the whole response.
pub fn send(app: &Router, mut req: Request<Body>) -> Reply {
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(PEER)));
    runtime().block_on(async {
        let response = app
            .clone()
            .oneshot(req)
            .await
            .expect("routers are infallible");
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    })
}

/// Where to write seeds, when `PORTCULLIS_FUZZ_WRITE_SEEDS` names a directory: the
/// targets whose seeds must be signed with [`FIXED_KEY`] write them there on start.
pub fn seed_dir(target: &str) -> Option<PathBuf> {
    let root = std::env::var_os("PORTCULLIS_FUZZ_WRITE_SEEDS")?;
    let dir = PathBuf::from(root).join(target);
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir)
}

/// Writes `seeds` as `seed-N` files into the seed directory of `target`, if any.
pub fn write_seeds(target: &str, seeds: &[Vec<u8>]) {
    if let Some(dir) = seed_dir(target) {
        for (i, seed) in seeds.iter().enumerate() {
            let _ = std::fs::write(dir.join(format!("signed-{i}")), seed);
        }
    }
}

//! The floor's server: [`portcullis_bench_floor::app`] on `FLOOR_ADDR`.

use std::net::SocketAddr;

const DEFAULT_ADDR: &str = "127.0.0.1:8100";

fn fail(what: &str, error: impl std::fmt::Display) -> ! {
    eprintln!("portcullis-bench-floor: {what}: {error}");
    std::process::exit(1);
}

#[tokio::main]
async fn main() {
    let addr: SocketAddr = std::env::var("FLOOR_ADDR")
        .unwrap_or_else(|_| DEFAULT_ADDR.to_owned())
        .parse()
        .unwrap_or_else(|e| fail("FLOOR_ADDR", e));
    // Only the data folder is read from the environment: the demo's other settings
    // configure security layers the floor does not have.
    let settings = portcullis::config::Settings::from_lookup(|name| {
        (name == "PORTCULLIS_DATA_DIR")
            .then(|| std::env::var(name).ok())
            .flatten()
    })
    .unwrap_or_else(|e| fail("configuration", e));
    let app = portcullis_bench_floor::app(&settings)
        .await
        .unwrap_or_else(|e| fail("start", e));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| fail("listen", e));
    eprintln!("portcullis-bench-floor: listening on http://{addr}");
    if let Err(e) = axum::serve(listener, app).await {
        fail("server", e);
    }
}

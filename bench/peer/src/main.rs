//! The peer's server: [`portcullis_bench_peer::app`] on `PEER_ADDR` (default
//! `127.0.0.1:8200`), over the demo's data in `PORTCULLIS_DATA_DIR` (default
//! `./data`). `PEER_LOG` is the log filter (default `info`: one line per request, on
//! standard error), `PEER_RATE_LIMITS` is `normal` (default) or `bench`.

use std::net::SocketAddr;

use portcullis_bench_peer::Limits;

const DEFAULT_ADDR: &str = "127.0.0.1:8200";

fn fail(what: &str, error: impl std::fmt::Display) -> ! {
    eprintln!("portcullis-bench-peer: {what}: {error}");
    std::process::exit(1);
}

#[tokio::main]
async fn main() {
    let addr: SocketAddr = std::env::var("PEER_ADDR")
        .unwrap_or_else(|_| DEFAULT_ADDR.to_owned())
        .parse()
        .unwrap_or_else(|e| fail("PEER_ADDR", e));
    let limits = match std::env::var("PEER_RATE_LIMITS").as_deref() {
        Ok("normal") | Err(_) => Limits::Normal,
        Ok("bench") => Limits::Bench,
        Ok(other) => fail(
            "PEER_RATE_LIMITS",
            format!("{other:?} is not normal or bench"),
        ),
    };
    let filter = std::env::var("PEER_LOG").unwrap_or_else(|_| "info".into());
    let _flush_on_exit =
        portcullis_bench_peer::init_logging(&filter).unwrap_or_else(|e| fail("PEER_LOG", e));
    // Only the data folder is read from the demo's settings: the others configure
    // Portcullis's layers, which the peer does not have.
    let settings = portcullis::config::Settings::from_lookup(|name| {
        (name == "PORTCULLIS_DATA_DIR")
            .then(|| std::env::var(name).ok())
            .flatten()
    })
    .unwrap_or_else(|e| fail("configuration", e));
    let app = portcullis_bench_peer::app(&settings, limits)
        .await
        .unwrap_or_else(|e| fail("start", e));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| fail("listen", e));
    tracing::info!("listening on http://{addr}");
    // The rate limiter keys by the client's address, which only the connection knows.
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, service)
        .with_graceful_shutdown(shutdown_signal())
        .await
    {
        fail("server", e);
    }
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}

//! `portcullis::serve` over real sockets on 127.0.0.1, plain and TLS: slow and idle
//! clients are closed within the configured bounds, the connection cap queues new
//! clients instead of failing, an answer sent before the body was read reaches the
//! client, shutdown lets in-flight requests finish, and an app served without the
//! peer address refuses every request instead of seeing everyone as one client.

// Plain and TLS side by side: the TLS client needs the `tls` feature's crates.
#![cfg(feature = "tls")]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::{get, post};
use axum::Router;
use portcullis::client_ip::ClientInfo;
use portcullis::serve::{ServeConfig, ServeError};
use portcullis::stack::SecureStack;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Far beyond every bound the tests configure: reaching it means the bound did not act.
const DEADLINE: Duration = Duration::from_secs(20);
const SHORT: Duration = Duration::from_secs(1);
const LONG: Duration = Duration::from_secs(120);

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

fn routes() -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/echo",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .route(
            "/whoami",
            get(|client: ClientInfo| async move { client.ip.to_string() }),
        )
}

/// The app inside the secure stack, as an application serves it.
fn stacked(request_timeout: Duration) -> Router {
    SecureStack::default()
        .without_https_redirect()
        .request_timeout(request_timeout)
        .apply(routes())
        .unwrap()
}

/// Limits that stay out of the way, so that each test can shorten only the one it attacks.
fn relaxed() -> ServeConfig {
    ServeConfig::default()
        .header_read_timeout(LONG)
        .first_request_timeout(LONG)
        .tls_handshake_timeout(LONG)
        .idle_timeout(LONG)
}

struct Server {
    addr: SocketAddr,
    tls: Option<(Arc<rustls::ClientConfig>, Vec<u8>)>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<Result<(), ServeError>>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(app: Router, config: ServeConfig, tls: bool) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let dir = tempfile::tempdir().unwrap();
        let (done, tls) = if tls {
            let (cert, key) = portcullis::https::write_dev_cert(dir.path()).unwrap();
            let server_config = portcullis::https::load_tls(&cert, &key).await.unwrap();
            let pem = std::fs::read(&cert).unwrap();
            let done = tokio::spawn(portcullis::serve::serve_tls(
                listener,
                server_config,
                app,
                config,
                shutdown,
            ));
            (done, Some((client_tls(&pem), pem)))
        } else {
            let done = tokio::spawn(portcullis::serve::serve(listener, app, config, shutdown));
            (done, None)
        };
        Self {
            addr,
            tls,
            stop: Some(stop),
            done,
            _dir: dir,
        }
    }

    /// A raw connection, the TLS handshake done when the server speaks TLS.
    async fn connect(&self) -> Box<dyn Io> {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        match &self.tls {
            None => Box::new(tcp),
            Some((config, _)) => {
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
                Box::new(connector.connect(name, tcp).await.unwrap())
            }
        }
    }

    fn client(&self) -> reqwest::Client {
        let builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        match &self.tls {
            None => builder.build().unwrap(),
            Some((_, pem)) => builder
                .add_root_certificate(reqwest::Certificate::from_pem(pem).unwrap())
                .resolve("localhost", self.addr)
                .build()
                .unwrap(),
        }
    }

    fn url(&self, path: &str) -> String {
        match self.tls {
            None => format!("http://{}{path}", self.addr),
            Some(_) => format!("https://localhost:{}{path}", self.addr.port()),
        }
    }
}

fn client_tls(pem: &[u8]) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject as _;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// Reads until the server closes the connection; `None` if it is still open at the
/// deadline. Returns what the server sent before closing.
async fn read_until_closed(io: &mut Box<dyn Io>) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(DEADLINE, async {
        let mut buf = [0u8; 4096];
        loop {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok().map(|()| seen)
}

/// Reads one response head (up to the blank line).
async fn read_head(io: &mut Box<dyn Io>) -> String {
    let mut seen = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        let mut byte = [0u8; 1];
        while !seen.ends_with(b"\r\n\r\n") {
            if io.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            seen.push(byte[0]);
        }
    })
    .await
    .expect("no answer");
    String::from_utf8_lossy(&seen).into_owned()
}

async fn partial_request_heads_are_closed(tls: bool) {
    let config = relaxed().header_read_timeout(SHORT);
    let server = Server::start(stacked(LONG), config, tls).await;
    let mut io = server.connect().await;
    io.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    io.flush().await.unwrap();
    assert!(
        read_until_closed(&mut io).await.is_some(),
        "a half-sent request head kept its connection open"
    );
}

#[tokio::test]
async fn partial_request_heads_are_closed_by_the_header_timeout() {
    partial_request_heads_are_closed(false).await;
}

#[tokio::test]
async fn partial_request_heads_over_tls_are_closed_by_the_header_timeout() {
    partial_request_heads_are_closed(true).await;
}

async fn silent_connections_are_closed(tls: bool) {
    let config = relaxed().first_request_timeout(SHORT);
    let server = Server::start(stacked(LONG), config, tls).await;
    let mut io = server.connect().await;
    assert!(
        read_until_closed(&mut io).await.is_some(),
        "a connection that never sent a request stayed open"
    );
}

#[tokio::test]
async fn a_connection_that_never_sends_a_request_is_closed() {
    silent_connections_are_closed(false).await;
}

#[tokio::test]
async fn a_tls_connection_that_never_sends_a_request_is_closed() {
    silent_connections_are_closed(true).await;
}

#[tokio::test]
async fn a_stalled_tls_handshake_is_closed() {
    let config = relaxed().tls_handshake_timeout(SHORT);
    let server = Server::start(stacked(LONG), config, true).await;
    let mut tcp: Box<dyn Io> = Box::new(TcpStream::connect(server.addr).await.unwrap());
    // The start of a ClientHello record, and then nothing.
    tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    assert!(
        read_until_closed(&mut tcp).await.is_some(),
        "a stalled handshake kept its connection open"
    );
}

async fn idle_keep_alive_is_closed(tls: bool) {
    let config = relaxed().idle_timeout(SHORT);
    let server = Server::start(stacked(LONG), config, tls).await;
    let mut io = server.connect().await;
    io.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut io).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(!head.to_ascii_lowercase().contains("connection: close"));
    // The body ("ok") and then the close, once the connection has been idle too long.
    let rest = read_until_closed(&mut io)
        .await
        .expect("an idle kept-alive connection stayed open");
    assert_eq!(rest, b"ok");
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    idle_keep_alive_is_closed(false).await;
}

#[tokio::test]
async fn idle_keep_alive_connections_over_tls_are_closed() {
    idle_keep_alive_is_closed(true).await;
}

async fn stalled_bodies_are_answered_408(tls: bool) {
    let server = Server::start(stacked(SHORT), relaxed(), tls).await;
    let mut io = server.connect().await;
    io.write_all(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nab")
        .await
        .unwrap();
    io.flush().await.unwrap();
    let head = read_head(&mut io).await;
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    assert!(head.contains("x-frame-options: DENY"), "{head}");
}

#[tokio::test]
async fn stalled_bodies_get_408() {
    stalled_bodies_are_answered_408(false).await;
}

#[tokio::test]
async fn stalled_bodies_over_tls_get_408() {
    stalled_bodies_are_answered_408(true).await;
}

/// 6 MiB against the stack's 1 MiB limit, sent whole before the answer is read, as a
/// simple client does: refused at its `Content-Length` before a byte of the body is
/// read, or, chunked, once 1 MiB has been read. Either way the 413 must arrive, not a
/// reset.
async fn early_413_reaches_the_client(tls: bool) {
    let server = Server::start(stacked(LONG), ServeConfig::default(), tls).await;
    let body = vec![b'a'; 6 * 1024 * 1024];
    for chunked in [false, true] {
        let mut io = server.connect().await;
        let head = if chunked {
            "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_owned()
        } else {
            format!(
                "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
        };
        let sent = async {
            io.write_all(head.as_bytes()).await?;
            for piece in body.chunks(64 * 1024) {
                if chunked {
                    io.write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                        .await?;
                    io.write_all(piece).await?;
                    io.write_all(b"\r\n").await?;
                } else {
                    io.write_all(piece).await?;
                }
            }
            if chunked {
                io.write_all(b"0\r\n\r\n").await?;
            }
            io.flush().await
        };
        tokio::time::timeout(DEADLINE, sent)
            .await
            .expect("the upload stalled")
            .expect("the connection was closed under the upload");
        let answer = read_head(&mut io).await;
        assert!(
            answer.starts_with("HTTP/1.1 413"),
            "chunked: {chunked}: {answer:?}"
        );
    }
    // A client that reads while it sends (reqwest) sees it too.
    let response = server
        .client()
        .post(server.url("/echo"))
        .body(body)
        .send()
        .await
        .expect("the 413 was lost");
    assert_eq!(response.status(), 413);
    let text = response.text().await.unwrap();
    assert!(text.contains("Payload Too Large"), "{text}");
}

#[tokio::test]
async fn an_upload_refused_before_its_body_is_read_gets_its_413() {
    early_413_reaches_the_client(false).await;
}

#[tokio::test]
async fn an_upload_over_tls_refused_before_its_body_is_read_gets_its_413() {
    early_413_reaches_the_client(true).await;
}

#[tokio::test]
async fn beyond_the_connection_cap_new_clients_wait_and_are_served() {
    let config = relaxed()
        .max_connections(4)
        .first_request_timeout(SHORT)
        .header_read_timeout(SHORT);
    let server = Server::start(stacked(LONG), config, false).await;
    let mut slow = Vec::new();
    for _ in 0..12 {
        let mut io = server.connect().await;
        io.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
            .await
            .unwrap();
        slow.push(io);
    }
    let mut fresh = server.connect().await;
    fresh
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut fresh).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    for io in &mut slow {
        assert!(read_until_closed(io).await.is_some());
    }
}

#[tokio::test]
async fn at_capacity_connections_holding_a_slot_without_a_request_make_room() {
    // Long ordinary timeouts: only the shorter one at capacity can free the slots.
    let config = relaxed()
        .max_connections(4)
        .first_request_timeout_at_capacity(SHORT);
    for tls in [false, true] {
        let server = Server::start(stacked(LONG), config.clone(), tls).await;
        let mut slow = Vec::new();
        for _ in 0..4 {
            let mut io = server.connect().await;
            io.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
                .await
                .unwrap();
            slow.push(io);
        }
        // Queued behind them, more that never finish, then a client with a request.
        let mut queued = Vec::new();
        for _ in 0..8 {
            queued.push(TcpStream::connect(server.addr).await.unwrap());
        }
        let fresh = server.client().get(server.url("/healthz")).send();
        let response = tokio::time::timeout(DEADLINE, fresh)
            .await
            .expect("the fresh client is still waiting for a slot")
            .unwrap();
        assert_eq!(response.status(), 200);
        for io in &mut slow {
            assert!(read_until_closed(io).await.is_some());
        }
    }
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish_and_takes_no_new_ones() {
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let started_tx = Arc::new(std::sync::Mutex::new(Some(started_tx)));
    let release = Arc::new(tokio::sync::Notify::new());
    let app = Router::new().route(
        "/slow",
        get({
            let release = release.clone();
            move || async move {
                if let Some(tx) = started_tx.lock().unwrap().take() {
                    let _ = tx.send(());
                }
                release.notified().await;
                "finished"
            }
        }),
    );
    let mut server = Server::start(app, relaxed(), false).await;
    let client = server.client();
    let in_flight = tokio::spawn(client.get(server.url("/slow")).send());
    started_rx.await.unwrap();
    server.stop.take().unwrap().send(()).unwrap();
    // Shutdown has begun; the listener closes while the request is still running.
    let refused = tokio::time::timeout(DEADLINE, async {
        while TcpStream::connect(server.addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(refused.is_ok(), "new connections were still accepted");
    assert!(!server.done.is_finished());
    release.notify_one();
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "finished");
    let done = tokio::time::timeout(DEADLINE, &mut server.done).await;
    assert!(matches!(done, Ok(Ok(Ok(())))));
}

#[tokio::test]
async fn each_request_carries_its_peer_address() {
    let server = Server::start(stacked(LONG), ServeConfig::default(), false).await;
    let ip = server
        .client()
        .get(server.url("/whoami"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(ip, "127.0.0.1");
}

#[tokio::test]
async fn an_app_served_without_the_peer_address_refuses_every_request() {
    let calls = Arc::new(AtomicUsize::new(0));
    let limits = portcullis::ratelimit::RateLimitConfig::default()
        .layer(Arc::new(portcullis::ratelimit::MemoryRateLimitStore::new()))
        .unwrap();
    let app = SecureStack::default()
        .without_https_redirect()
        .rate_limit(limits)
        .apply(Router::new().route(
            "/whoami",
            get({
                let calls = calls.clone();
                move |client: ClientInfo| async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    client.ip.to_string()
                }
            }),
        ))
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // The mistake: no `into_make_service_with_connect_info`.
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = reqwest::Client::new();
    for _ in 0..5 {
        let response = client
            .get(format!("http://{addr}/whoami"))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 500);
        let body = response.text().await.unwrap();
        assert!(body.contains("client_address_unknown"), "{body}");
        assert!(!body.contains("0.0.0.0"), "{body}");
    }
    // Never answered as if every client were the one address 0.0.0.0.
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_test_calling_the_app_directly_gives_it_a_peer_address() {
    use axum::extract::connect_info::MockConnectInfo;
    use tower::ServiceExt as _;
    let request = || {
        axum::http::Request::get("/whoami")
            .header("host", "localhost")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let refused = stacked(LONG).oneshot(request()).await.unwrap();
    assert_eq!(refused.status(), 500);
    let peer: SocketAddr = "192.0.2.7:4000".parse().unwrap();
    let app = stacked(LONG).layer(MockConnectInfo(peer));
    let response = app.oneshot(request()).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = axum::body::to_bytes(response.into_body(), 1024)
        .await
        .unwrap();
    assert_eq!(&body[..], b"192.0.2.7");
}

#[tokio::test]
async fn an_http2_connection_that_never_sends_a_request_is_closed() {
    let config = relaxed().first_request_timeout(SHORT);
    let server = Server::start(stacked(LONG), config, false).await;
    let mut io = server.connect().await;
    // The HTTP/2 preface and an empty SETTINGS frame: a live connection, no request.
    io.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    io.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    assert!(
        read_until_closed(&mut io).await.is_some(),
        "an HTTP/2 connection without a request stayed open"
    );
}

/// Set in the child process that serves for `accept_failures_back_off_instead_of_spinning`.
const ACCEPT_CHILD: &str = "PORTCULLIS_TEST_ACCEPT_CHILD";

/// The server half of `accept_failures_back_off_instead_of_spinning`, run in a child
/// process with 64 open files and a connection cap set far above that, so that
/// `accept` itself fails. Does nothing when run as an ordinary test.
#[tokio::test]
async fn accept_child_serves_with_a_cap_above_its_file_limit() {
    if std::env::var_os(ACCEPT_CHILD).is_none() {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .try_init();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // The parent reads the address from the child's standard output.
    let mut stdout = std::io::stdout();
    std::io::Write::write_all(
        &mut stdout,
        format!("ADDR {}\n", listener.local_addr().unwrap()).as_bytes(),
    )
    .unwrap();
    std::io::Write::flush(&mut stdout).unwrap();
    let config = relaxed()
        .max_connections(10_000)
        .header_read_timeout(SHORT)
        .first_request_timeout(SHORT);
    let shutdown = tokio::time::sleep(Duration::from_secs(60));
    portcullis::serve::serve(listener, stacked(LONG), config, shutdown)
        .await
        .unwrap();
}

#[test]
fn accept_failures_back_off_instead_of_spinning() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Command, Stdio};

    let mut child = Command::new("prlimit")
        .arg("--nofile=64:64")
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "accept_child_serves_with_a_cap_above_its_file_limit",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ACCEPT_CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let addr: SocketAddr = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        // The harness prints the test's name on the same line first.
        .find_map(|line| {
            line.split("ADDR ")
                .nth(1)
                .map(|a| a.trim().parse().unwrap())
        })
        .expect("the child did not start");
    // More half-sent request heads than the child has files.
    let mut slow = Vec::new();
    for _ in 0..100 {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
            .unwrap();
        slow.push(stream);
    }
    let mut fresh = std::net::TcpStream::connect(addr).unwrap();
    fresh.set_read_timeout(Some(DEADLINE)).unwrap();
    fresh
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = fresh.read_to_end(&mut answer);
    drop(slow);
    let _ = child.kill();
    let _ = child.wait();
    let log = log.join().unwrap();
    let failures = log
        .iter()
        .filter(|line| line.contains("cannot accept connections"))
        .count();
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "a fresh client was not served: {:?}",
        String::from_utf8_lossy(&answer)
    );
    // `accept` did fail (the attack happened), a few times, not in a tight loop.
    assert!(failures >= 1, "accept never failed: {log:?}");
    assert!(failures <= 100, "{failures} accept failures logged");
}

#[tokio::test]
async fn the_redirect_listener_has_the_same_limits() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = relaxed().header_read_timeout(SHORT);
    tokio::spawn(portcullis::https::serve_redirect(
        listener,
        8443,
        "example.com, localhost".parse().unwrap(),
        config,
        std::future::pending(),
    ));
    let mut answered: Box<dyn Io> = Box::new(TcpStream::connect(addr).await.unwrap());
    answered
        .write_all(b"GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut answered).await;
    assert!(head.starts_with("HTTP/1.1 308"), "{head}");
    assert!(
        head.contains("location: https://example.com:8443/a?b=1"),
        "{head}"
    );
    // A host the app does not serve gets no redirect to it.
    let mut foreign: Box<dyn Io> = Box::new(TcpStream::connect(addr).await.unwrap());
    foreign
        .write_all(b"GET /a HTTP/1.1\r\nHost: evil.example\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut foreign).await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert!(!head.contains("\r\nlocation:"), "{head}");
    let mut slow: Box<dyn Io> = Box::new(TcpStream::connect(addr).await.unwrap());
    slow.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    assert!(
        read_until_closed(&mut slow).await.is_some(),
        "a half-sent request head kept the redirect listener's connection open"
    );
}

#[tokio::test]
async fn an_http2_peer_that_stops_answering_pings_is_closed() {
    let config = relaxed().http2_keep_alive(SHORT, SHORT);
    let server = Server::start(stacked(LONG), config, false).await;
    let mut io = server.connect().await;
    io.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    // SETTINGS (empty), then one GET / on stream 1, its head HPACK-encoded from the
    // static table (:method GET, :scheme http, :path /); END_STREAM | END_HEADERS.
    io.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    io.write_all(&[0, 0, 3, 1, 5, 0, 0, 0, 1, 0x82, 0x86, 0x84])
        .await
        .unwrap();
    // The answer arrives; the pings that follow are never acknowledged.
    let seen = read_until_closed(&mut io)
        .await
        .expect("a peer that never answered a ping stayed connected");
    // Frame type 6 (PING) from the server, somewhere in what it sent.
    let mut at = 0;
    let mut pinged = false;
    while at + 9 <= seen.len() {
        let length = usize::from(seen[at]) << 16
            | usize::from(seen[at + 1]) << 8
            | usize::from(seen[at + 2]);
        pinged |= seen[at + 3] == 6;
        at += 9 + length;
    }
    assert!(pinged, "no ping was sent");
}

//! The demo as served by `portcullis::serve`, attacked over real sockets: a flood of
//! slow clients beyond the process's open-file limit, and an oversized upload over TLS
//! that must get its 413 rather than a reset.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Demo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Far beyond the demo's default limits (10 s header read, 15 s first request):
/// reaching it means they did not act.
const DEADLINE: Duration = Duration::from_secs(60);

/// Reads one response head, or `None` if the connection closed or stayed silent.
async fn read_head<S: AsyncRead + Unpin>(io: &mut S) -> Option<String> {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(DEADLINE, async {
        let mut byte = [0u8; 1];
        while !seen.ends_with(b"\r\n\r\n") {
            match io.read(&mut byte).await {
                Ok(1) => seen.push(byte[0]),
                _ => return,
            }
        }
    })
    .await;
    read.ok()?;
    (!seen.is_empty()).then(|| String::from_utf8_lossy(&seen).into_owned())
}

/// Whether the server closed the connection before the deadline.
async fn closed<S: AsyncRead + Unpin>(io: &mut S) -> bool {
    tokio::time::timeout(DEADLINE, async {
        let mut buf = [0u8; 1024];
        while let Ok(n) = io.read(&mut buf).await {
            if n == 0 {
                return;
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn a_flood_of_slow_sockets_beyond_the_open_file_limit_does_not_lock_out_a_fresh_client() {
    // 256 open files; 300 clients that each send half a request head and then nothing.
    // Served by plain `axum::serve`, the process runs out of files, `accept` fails,
    // and nobody is served until the attacker lets go.
    let demo = Demo::start_with_open_file_limit(&[], 256);
    let addr: std::net::SocketAddr = demo.base.trim_start_matches("http://").parse().unwrap();
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(stream);
    }
    let mut fresh = TcpStream::connect(addr).await.unwrap();
    fresh
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut fresh).await;
    assert!(
        head.as_deref()
            .is_some_and(|h| h.starts_with("HTTP/1.1 200")),
        "a fresh client was not served: {head:?}"
    );
    // The first slow clients were accepted first; their half-sent heads are closed.
    for stream in slow.iter_mut().take(20) {
        assert!(closed(stream).await, "a half-sent request head stayed open");
    }
    assert!(
        !demo.log_text().contains("Too many open files"),
        "the process ran out of files"
    );
}

fn tls_client(pem: &[u8]) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject as _;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn upload<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S, file: &[u8]) -> Option<String> {
    let boundary = "portcullis-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.png\"\r\n\
         Content-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; \
         boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // The whole request first, then the answer, as a simple client sends it.
    let sent = async {
        io.write_all(head.as_bytes()).await?;
        io.write_all(&body).await?;
        io.flush().await
    };
    tokio::time::timeout(DEADLINE, sent).await.ok()?.ok()?;
    read_head(io).await
}

#[tokio::test]
async fn a_6_mib_upload_over_tls_gets_a_readable_413() {
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
    let pem = std::fs::read(&cert).unwrap();
    let connector = tls_client(&pem);
    let file = vec![0u8; 6 * 1024 * 1024];
    for _ in 0..3 {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        let head = upload(&mut tls, &file).await;
        assert!(
            head.as_deref()
                .is_some_and(|h| h.starts_with("HTTP/1.1 413")),
            "the 413 was lost: {head:?}"
        );
    }
    // And a client that reads while it sends.
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .resolve("localhost", addr)
        .build()
        .unwrap();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(file).file_name("big.png"),
    );
    let response = https
        .post(format!("https://localhost:{}/upload", addr.port()))
        .multipart(form)
        .send()
        .await
        .expect("the 413 was lost");
    assert_eq!(response.status(), 413);
    assert!(response.text().await.unwrap().contains("too large"));
}

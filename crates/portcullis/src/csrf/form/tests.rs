use super::multipart::MAX_BOUNDARY_LEN;
use super::scanner::EXAMINED_ON_THIS_THREAD;
use super::*;

const FIELD: &str = "csrf_token";

fn scan(body: &[u8], frame: usize) -> (Option<String>, usize) {
    let mut scanner = FirstPartScanner::new("BOUNDARY", FIELD, 16 * 1024);
    for chunk in body.chunks(frame) {
        if scanner.push(chunk) || scanner.is_full() {
            break;
        }
    }
    scanner.finish();
    (scanner.value().map(str::to_owned), scanner.bytes_examined())
}

fn part(disposition: &str, value: &str) -> Vec<u8> {
    format!(
        "--BOUNDARY\r\nContent-Disposition: {disposition}\r\n\r\n{value}\r\n--BOUNDARY\r\n\
         Content-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\nPNG\r\n\
         --BOUNDARY--\r\n"
    )
    .into_bytes()
}

#[test]
fn the_token_is_found_in_the_first_part_whatever_the_frames() {
    let body = part("form-data; name=\"csrf_token\"", "tok.en");
    for frame in [1, 2, 3, 7, 13, body.len()] {
        assert_eq!(scan(&body, frame).0.as_deref(), Some("tok.en"), "{frame}");
    }
    // Case of the header name, a token instead of a quoted string, spaces.
    for disposition in [
        "form-data;name=csrf_token",
        "FORM-DATA ; name = \"csrf_token\" ;",
        "form-data; name=\"csrf\\_token\"",
    ] {
        let body = part(disposition, "v");
        assert_eq!(scan(&body, 5).0.as_deref(), Some("v"), "{disposition}");
    }
}

#[test]
fn a_file_or_another_field_is_not_the_token() {
    for disposition in [
        "form-data; filename=\"csrf_token\"",
        "form-data; name=\"x\"; filename=\"csrf_token\"",
        "form-data; name=\"csrf_token\"; filename=\"a.txt\"",
        "form-data; name=\"csrf_token\"; filename*=UTF-8''a.txt",
        "form-data; name=\"x\"; junk=\"; name=csrf_token\"",
        "form-data; name=\"csrf_token\"; name=\"x\"",
        "form-data; name=\"csrf_token",
        "form-data; name=\"csrf_token\"x",
        "attachment; name=\"csrf_token\"",
        "form-data; name=\"csrf_tokens\"",
        "form-data; xname=\"csrf_token\"",
    ] {
        let body = part(disposition, "v");
        assert_eq!(scan(&body, 3).0, None, "{disposition}");
    }
    // Two dispositions, or a folded one.
    let two = b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\
                Content-Disposition: form-data; name=\"x\"\r\n\r\nv\r\n--BOUNDARY--";
    assert_eq!(scan(two, 4).0, None);
}

#[test]
fn one_byte_frames_are_scanned_in_linear_time() {
    // The worst case: a value that never ends, read up to the limit one byte at a
    // time; and a body with no delimiter at all.
    let mut never_ends =
        b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n".to_vec();
    never_ends.resize(16_384, b'a');
    let no_delimiter = vec![b'-'; 16_384];
    for body in [never_ends, no_delimiter] {
        let (value, one_frame) = scan(&body, body.len());
        assert_eq!(value, None);
        let (_, one_byte) = scan(&body, 1);
        assert!(
            one_byte <= 3 * body.len(),
            "{one_byte} bytes examined for {} one-byte frames",
            body.len()
        );
        assert!(one_frame <= body.len() + 64, "{one_frame}");
    }
    // The longest boundary RFC 2046 allows does not change the bound.
    let boundary = "b".repeat(MAX_BOUNDARY_LEN);
    let mut scanner = FirstPartScanner::new(&boundary, FIELD, 16 * 1024);
    let mut bytes = 0;
    while !scanner.is_full() {
        scanner.push(b"-");
        bytes += 1;
    }
    scanner.finish();
    assert_eq!(bytes, 16 * 1024);
    assert!(
        scanner.bytes_examined() <= 3 * bytes,
        "{}",
        scanner.bytes_examined()
    );
}

#[test]
fn the_first_urlencoded_token_is_taken_decoded() {
    let field = |body: &str| urlencoded_field(body.as_bytes(), FIELD);
    assert_eq!(field("a=1&csrf_token=x.y&csrf_token=z"), Some("x.y".into()));
    assert_eq!(field("csrf%5Ftoken=a%2Bb+c"), Some("a+b c".into()));
    assert_eq!(field("csrf_token"), Some(String::new()));
    assert_eq!(field("xcsrf_token=1&csrf_tokens=2"), None);
    // Undecodable bytes elsewhere do not hide the field.
    assert_eq!(field("a=%FF%FE&csrf_token=t"), Some("t".into()));
}

#[test]
fn boundaries_follow_rfc_2046() {
    let ok = |ct: &str| form_data_boundary(ct.as_bytes());
    assert_eq!(
        ok("multipart/form-data; boundary=abc"),
        Ok(Some("abc".into()))
    );
    assert_eq!(
        ok("Multipart/Form-Data;boundary=\"a b:c\""),
        Ok(Some("a b:c".into()))
    );
    assert_eq!(ok("application/json"), Ok(None));
    assert_eq!(
        ok(&format!("multipart/form-data; boundary={}", "x".repeat(70))),
        Ok(Some("x".repeat(70)))
    );
    assert_eq!(
        ok(&format!("multipart/form-data; boundary={}", "x".repeat(71))),
        Err(BoundaryError::TooLong)
    );
    assert_eq!(ok("multipart/form-data"), Err(BoundaryError::Missing));
    assert_eq!(
        ok("multipart/form-data; boundary=\"\""),
        Err(BoundaryError::Missing)
    );
    for bad in [
        "multipart/form-data; boundary=a; boundary=b",
        "multipart/form-data; boundary=\"a;b\"",
        "multipart/form-data; boundary=\"abc",
        "multipart/form-data; boundary=\"ab \"",
        "multipart/form-data; x=\"a; boundary=evil\"",
    ] {
        assert!(ok(bad).is_err(), "{bad}");
    }
    // A quoted `;` in another parameter does not hide or fake the boundary.
    assert_eq!(
        ok("multipart/form-data; x=\"a; boundary=evil\"; boundary=real"),
        Ok(Some("real".into()))
    );
}

/// A minimal HTTP/1.1 exchange on a fresh connection: the raw response.
async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    // The server closes the connection after answering (`connection: close`), or
    // after a broken body.
    let _ = stream.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).into_owned()
}

/// A body as one-byte chunks of the chunked transfer coding.
fn one_byte_chunks(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() * 6 + 5);
    for byte in body {
        out.extend_from_slice(b"1\r\n");
        out.push(*byte);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[tokio::test]
async fn one_byte_chunks_over_http_are_scanned_in_linear_time() {
    use crate::csrf::{CsrfConfig, CsrfToken};
    use crate::keys::{Keyring, SecretKey};
    use crate::session::{MemorySessionStore, SessionConfig};
    use axum::routing::{get, post};

    let keyring = Keyring::new(SecretKey::generate(), vec![]);
    let app = axum::Router::new()
        .route(
            "/form",
            get(|token: CsrfToken| async move { token.as_str().to_owned() }),
        )
        // Echoes the body: the handler must see exactly the bytes sent.
        .route(
            "/upload",
            post(|body: axum::body::Bytes| async move { body }),
        )
        .layer(CsrfConfig::default().layer(&keyring).unwrap())
        .layer(
            SessionConfig::default()
                .insecure_cookie_over_plain_http()
                .layer(&keyring, std::sync::Arc::new(MemorySessionStore::default())),
        )
        .layer(crate::client_ip::ClientInfoConfig::default().layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Same thread as the test (a current-thread runtime): the scan's count is ours.
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap()
    });

    let page = exchange(
        addr,
        b"GET /form HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    let cookie = page
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned();
    let token = page.rsplit("\r\n\r\n").next().unwrap().to_owned();
    let post = |boundary: &str, chunked: &[u8]| {
        let mut request = format!(
            "POST /upload HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncookie: {cookie}\r\n\
             content-type: multipart/form-data; boundary={boundary}\r\n\
             transfer-encoding: chunked\r\n\r\n"
        )
        .into_bytes();
        request.extend_from_slice(chunked);
        request
    };

    // A real form, 16 KiB, one byte per chunk: accepted, and the handler reads
    // every byte.
    let mut form = format!(
        "--B\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n\
         --B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\r\n"
    )
    .into_bytes();
    form.resize(16_384 - 9, b'x');
    form.extend_from_slice(b"\r\n--B--\r\n");
    let response = exchange(addr, &post("B", &one_byte_chunks(&form))).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{}", &response[..200]);
    assert!(response.ends_with(std::str::from_utf8(&form).unwrap()));

    // The attack: a token value that never ends, 16,384 one-byte chunks.
    let mut never_ends =
        b"--B\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n".to_vec();
    never_ends.resize(16_384, b'a');
    let before = EXAMINED_ON_THIS_THREAD.with(std::cell::Cell::get);
    let response = exchange(addr, &post("B", &one_byte_chunks(&never_ends))).await;
    let examined = EXAMINED_ON_THIS_THREAD.with(std::cell::Cell::get) - before;
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");
    assert!(response.contains("csrf_missing"), "{response}");
    assert!(
        (never_ends.len()..=3 * never_ends.len()).contains(&examined),
        "{examined} bytes examined for a {} byte body",
        never_ends.len()
    );

    // A boundary longer than RFC 2046 allows: a clear 400, nothing read.
    let long = "b".repeat(MAX_BOUNDARY_LEN + 1);
    let response = exchange(addr, &post(&long, &one_byte_chunks(b"x"))).await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(response.contains("70 characters"), "{response}");

    // A chunked coding that breaks before the token is decided: 400, not a
    // truncated body handed on nor a misleading "token missing".
    let mut broken = one_byte_chunks(b"--B\r\nContent-Disposition: form-data; name=");
    broken.truncate(broken.len() - 5);
    broken.extend_from_slice(b"zz\r\nnot a chunk\r\n\r\n");
    let response = exchange(addr, &post("B", &broken)).await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(response.contains("could not be read"), "{response}");
}

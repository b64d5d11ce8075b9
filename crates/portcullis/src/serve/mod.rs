//! Serving an app: the one way to put a [`Router`](axum::Router) on a socket, with the
//! limits that keep slow, idle and abandoned connections from holding the server.
//!
//! `axum::serve` gives hyper no timer, so hyper's header-read timeout never runs: a
//! client that sends half a request head and then nothing keeps its socket for good.
//! A few hundred such clients use up the process's open files; `accept` then fails
//! and no one else is served until they stop. [`serve`] (plain HTTP) and [`serve_tls`]
//! (built-in TLS, feature `tls`) serve every connection with hyper-util's HTTP/1 and
//! HTTP/2 builder under these limits, each set in [`ServeConfig`]:
//!
//! | limit | default | what it answers |
//! |---|---|---|
//! | header read | 10 s | a request head trickled byte by byte or never finished (slowloris) |
//! | first request | 15 s from `accept`; 2 s while every connection slot is taken | a connection that never sends a whole request head, TLS handshake included |
//! | TLS handshake | 10 s | a handshake that stalls |
//! | idle keep-alive | 60 s; none while every connection slot is taken | a kept-alive connection that sends no further request |
//! | HTTP/2 keep-alive ping | every 30 s, 20 s to answer | HTTP/2 peers that vanished without closing |
//! | concurrent connections | ¾ of the open-file limit, at most 10,000 | running out of file descriptors: beyond the cap, `accept` waits and new clients queue in the kernel |
//! | unread request body | up to 8 MiB or 5 s is read and discarded | a response sent before the body was read (413, 401, a CSRF refusal) lost to a TCP reset |
//! | graceful shutdown | 10 s | in-flight requests finish; then what is left is closed |
//!
//! An `accept` that fails for the process (too many open files, no buffers) is retried
//! after a pause that grows from 10 ms to 1 s, instead of spinning on the error.
//!
//! While every connection slot is taken and clients wait in the kernel's queue, the
//! connections that hold a slot without using it make room: one that has sent no
//! whole request head for 2 s is closed, and so is every idle kept-alive one (its
//! client simply reconnects). A flood of silent sockets then costs each of them a
//! slot for 2 s, not 15, and a fresh client gets in within seconds.
//!
//! Not bounded here: a client that reads a large response very slowly keeps its
//! connection busy for as long as the response takes.
//!
//! Why written here: hyper-util serves one connection, and axum-server adds TLS and a
//! shutdown handle, but neither closes a connection that never sends a request or
//! idles, caps connections, backs off on `accept` errors or drains an unread body.
//! The accept loop and each connection's watch over its deadlines are Portcullis's;
//! HTTP itself, the header-read timer and TLS are hyper's and rustls's.
//!
//! Every request carries the socket's peer address as
//! `axum::extract::ConnectInfo<SocketAddr>`, which [`crate::client_ip`] needs: served
//! any other way, requests through the client-info layer are refused (see there).
//!
//! Over HTTP/1.1, hyper's header-read timer also runs while a kept-alive connection
//! waits for its next request, so such a connection closes after the shorter of the
//! header-read and idle timeouts. The stack's request timeout
//! ([`crate::stack::SecureStack::request_timeout`]) takes over once a request head has
//! arrived: a body that trickles gets `408`.
//!
//! When the app answers before reading the whole request body, closing the socket with
//! unread bytes in it makes the kernel send a reset, and the client, still uploading,
//! never sees the answer (a browser shows "connection reset" instead of the 413 page).
//! So the rest of an HTTP/1 body is read and thrown away, within a bound, before the
//! connection closes or serves its next request — nginx's "lingering close". A client
//! that sent `Expect: 100-continue` and was answered without being asked for its body
//! is not waited for.
//!
//! ```
//! use std::time::Duration;
//! use axum::{routing::get, Router};
//! use portcullis::serve::ServeConfig;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let app = Router::new().route("/", get(|| async { "hello" }));
//! let config = ServeConfig::default().header_read_timeout(Duration::from_secs(5));
//! // Until the shutdown future completes; here at once.
//! portcullis::serve::serve(listener, app, config, async {}).await.unwrap();
//! # }
//! ```
//!
//! | file | what it holds |
//! |---|---|
//! | `config.rs` | [`ServeConfig`], its validation and the default connection cap; [`ServeError`] |
//! | `accept.rs` | [`serve`]: the accept loop, the connection cap, the back-off on `accept` errors, shutdown |
//! | `connection.rs` | one connection: its deadlines (first request, idle, at capacity) and its requests in flight |
//! | `body.rs` | the request body that drains what the app left unread, and the response body that holds its request in flight |
//! | `tls.rs` | [`serve_tls`] and the TLS handshake under its deadlines (feature `tls`) |

mod accept;
mod body;
mod config;
mod connection;
mod tls;

pub use accept::serve;
pub use config::{ServeConfig, ServeConfigError, ServeError, DEFAULT_MAX_CONNECTIONS_CEILING};
#[cfg(feature = "tls")]
pub use tls::serve_tls;

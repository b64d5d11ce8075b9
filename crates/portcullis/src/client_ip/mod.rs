//! Who is asking, and over what: client IP, scheme and host from trusted proxies only.
//!
//! Behind a load balancer the socket peer is the proxy, and the client's address,
//! scheme and host arrive in `X-Forwarded-For`/`-Proto`/`-Host` (or RFC 7239
//! `Forwarded`). Anyone can send those headers, so Portcullis reads them only when
//! the socket peer is a configured trusted proxy, and then takes the **rightmost hop
//! that is not itself a trusted proxy**: the leftmost entries are whatever the client
//! chose to write. (tower_governor and many tutorials take the leftmost, which lets any
//! client pick its own rate-limit key.)
//!
//! Every component — HTTPS redirect, HSTS, rate limits, the CSRF origin check, logs —
//! reads the one [`ClientInfo`] this layer computes. No crate does this correctly, so
//! Portcullis writes it itself.
//!
//! The socket's peer address comes from axum's `ConnectInfo<SocketAddr>`, which
//! [`crate::serve`] puts on every request. An app served without it (plain
//! `axum::serve(listener, app)`) would see every client as one unknown address and
//! share one rate-limit bucket among them all, so each such request is refused with
//! [`MissingPeerAddress`] (`500`, logged once with the fix). In tests that call the
//! app directly, add `axum::extract::connect_info::MockConnectInfo(addr)` as a layer.
//!
//! ```
//! use portcullis::client_ip::{ClientInfoConfig, TrustedProxies};
//!
//! let proxies: TrustedProxies = "10.0.0.0/8, 192.168.1.7".parse().unwrap();
//! assert!(proxies.contains("10.1.2.3".parse().unwrap()));
//! assert!(!proxies.contains("203.0.113.9".parse().unwrap()));
//! let layer = ClientInfoConfig::default().trusted_proxies(proxies).layer();
//! ```
//!
//! | file | what it holds |
//! |---|---|
//! | `info.rs` | [`ClientInfo`] and its extractor, [`Scheme`], [`client_block`] |
//! | `proxies.rs` | [`TrustedProxies`]: the networks whose forwarding headers are believed |
//! | `forwarded.rs` | reading `X-Forwarded-*` and RFC 7239 `Forwarded`, [`ForwardedHeaders`] |
//! | `config.rs` | [`ClientInfoConfig`] and the walk to the rightmost untrusted hop |
//! | `layer.rs` | [`ClientInfoLayer`], its service, and [`MissingPeerAddress`] |

mod config;
mod forwarded;
mod info;
mod layer;
mod proxies;

pub use config::ClientInfoConfig;
pub use forwarded::ForwardedHeaders;
pub(crate) use info::AddressText;
pub use info::{client_block, ClientInfo, Scheme};
pub use layer::{ClientInfoLayer, ClientInfoService, MissingPeerAddress};
pub use proxies::{InvalidProxy, TrustedProxies};

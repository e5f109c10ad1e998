//! The request context: request id, instant and client address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use shenfen_domain::metadata::{Actor, EventMetadata};

use crate::error::ApiError;
use crate::startup::AppState;

/// Facts about the request that go into event metadata.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub request_id: String,
    pub now: DateTime<Utc>,
    pub client: IpAddr,
}

impl Ctx {
    /// Metadata for events caused by `actor` in this request.
    pub fn meta(&self, actor: Actor) -> EventMetadata {
        EventMetadata { actor, request_id: self.request_id.clone(), at: self.now }
    }
}

impl FromRequestParts<Arc<AppState>> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let request_id =
            parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_string).unwrap_or_default();
        let client = client_address(parts, &state.trusted_proxies);
        Ok(Ctx { request_id, now: state.clock.now(), client })
    }
}

/// The client's address: the peer's, unless the peer is a trusted proxy
/// (`SHENFEN_TRUSTED_PROXIES`); then the right-most address of `X-Forwarded-For` that is not a
/// trusted proxy itself (what an untrusted client wrote further left cannot be believed).
pub fn client_address(parts: &Parts, trusted: &[ipnet::IpNet]) -> IpAddr {
    let peer =
        parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    forwarded.into_iter().rev().find(|ip| !is_trusted(ip)).unwrap_or(peer)
}

/// Parses `SHENFEN_TRUSTED_PROXIES`: comma-separated CIDRs (a bare address is one host).
pub fn parse_trusted_proxies(spec: &str) -> anyhow::Result<Vec<ipnet::IpNet>> {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| anyhow::anyhow!("SHENFEN_TRUSTED_PROXIES: {s} is not a CIDR or an address"))
        })
        .collect()
}

/// Whether a client-sent `x-request-id` may be kept: up to 64 characters of
/// `[A-Za-z0-9._-]` (anything else is replaced by a new id, so logs and events cannot be fed
/// arbitrary text).
pub fn acceptable_request_id(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= 64 && id.iter().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(b))
}

//! Request extractors: JSON bodies whose rejections are problem+json, the request context
//! (request id, instant, client address) and the signed-in account holder.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use shenfen_domain::account::Account;
use shenfen_domain::metadata::{Actor, EventMetadata};
use shenfen_projections::store::{Current, Loaded};

use crate::error::ApiError;
use crate::startup::AppState;

/// A JSON body. Not JSON → 415, malformed → 400, too large → 413, a field of the wrong
/// type → 422 naming the field.
pub struct AppJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                let v = v.trim().to_ascii_lowercase();
                v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::unsupported_media_type("application/json"));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large("The request body", "64 KiB")
            } else {
                ApiError::bad_request()
            }
        })?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let parsed = serde_path_to_error::deserialize(&mut de);
        let trailing_garbage = parsed.is_ok() && de.end().is_err();
        if trailing_garbage {
            return Err(ApiError::malformed_json());
        }
        match parsed {
            Ok(value) => Ok(AppJson(value)),
            Err(err) => {
                let path = err.path().to_string();
                let inner = err.into_inner();
                if inner.is_data() && path != "." {
                    Err(ApiError::field(&path, "invalid_type"))
                } else {
                    Err(ApiError::malformed_json())
                }
            }
        }
    }
}

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

/// The signed-in account holder (from `Authorization: Bearer <token>`), with the account
/// stream as loaded to check the session, so that a command can start from it.
///
/// As an extractor it checks the session against the store's latest state (reads must see
/// other processes' writes); commands take [`CommandHolder`] instead.
#[derive(Debug, Clone)]
pub struct Holder {
    pub account_id: String,
    pub session_id: String,
    pub loaded: Loaded<Account>,
    /// Whether `loaded` was checked against the store (see [`CommandBus::load_optimistic`]).
    ///
    /// [`CommandBus::load_optimistic`]: shenfen_projections::store::CommandBus::load_optimistic
    pub verified: bool,
    token_hash: String,
}

impl Holder {
    /// The actor for events this holder causes.
    pub fn actor(&self) -> Actor {
        Actor::Account { id: self.account_id.clone() }
    }

    /// The account.
    pub fn account(&self) -> &Account {
        &self.loaded.state
    }

    /// The state a command starts from.
    pub fn current(&self) -> Current<Account> {
        Current { loaded: self.loaded.clone(), verified: self.verified }
    }

    /// The precondition of the holder's commands, checked on every state a command runs on:
    /// the session is still live on an active account.
    pub fn session_live(&self, now: DateTime<Utc>) -> impl Fn(&Account) -> bool + Send + Sync + 'static {
        let hash = self.token_hash.clone();
        move |account: &Account| live_session(account, &hash, now).is_some()
    }
}

/// The id of the session whose token hashes to `token_hash`, if it is live at `now` on an
/// active account.
fn live_session(account: &Account, token_hash: &str, now: DateTime<Utc>) -> Option<String> {
    account.session_by_token(token_hash, now).filter(|_| account.is_active()).map(|s| s.session_id.clone())
}

/// The account holder of a command: like [`Holder`], but the session is checked on the state
/// this process last saw when it has one, saving a query. The command itself is then run with
/// [`CommandBus::execute_checked`] and [`Holder::session_live`], which re-checks the session
/// on whatever state the command finally runs on, and against the store before refusing.
///
/// [`CommandBus::execute_checked`]: shenfen_projections::store::CommandBus::execute_checked
#[derive(Debug, Clone)]
pub struct CommandHolder(pub Holder);

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The account holder a token belongs to, if it is a live session of an active account. With
/// `optimistic`, a state this process has seen is trusted when it shows the session live.
async fn holder_of(state: &AppState, token: &str, optimistic: bool) -> Result<Option<Holder>, ApiError> {
    let Some(account_id) = crate::crypto::account_of_session_token(token) else { return Ok(None) };
    let internal = |e: shenfen_projections::store::BusError<_>| ApiError::internal(e.to_string());
    let token_hash = shenfen_domain::ids::token_hash(token);
    let now = state.clock.now();
    let live = |account: &Account| live_session(account, &token_hash, now);
    let mut current = if optimistic {
        state.accounts.load_optimistic(&account_id).await
    } else {
        state.accounts.load_current(&account_id).await
    }
    .map_err(internal)?;
    let mut session_id = live(&current.loaded.state);
    if session_id.is_none() && !current.verified {
        current = state.accounts.load_current(&account_id).await.map_err(internal)?;
        session_id = live(&current.loaded.state);
    }
    let Some(session_id) = session_id else { return Ok(None) };
    Ok(Some(Holder { account_id, session_id, loaded: current.loaded, verified: current.verified, token_hash }))
}

impl FromRequestParts<Arc<AppState>> for Holder {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(ApiError::unauthenticated)?;
        holder_of(state, token, false).await?.ok_or_else(ApiError::unauthenticated)
    }
}

impl FromRequestParts<Arc<AppState>> for CommandHolder {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(ApiError::unauthenticated)?;
        holder_of(state, token, true).await?.map(CommandHolder).ok_or_else(ApiError::unauthenticated)
    }
}

/// A signed-in staff member, checked against their own stream: a disabled member, a changed
/// role, a changed password or a logout ends the session at once, in every process. A bearer
/// token of an account holder on a staff endpoint is answered 403 `forbidden`; no or an
/// unknown token, 401.
#[derive(Debug, Clone)]
pub struct StaffMember {
    pub staff_id: String,
    pub username: String,
    pub role: shenfen_domain::staff::Role,
    pub session_id: String,
    /// The staff stream as loaded to check the session.
    pub loaded: Loaded<shenfen_domain::staff::Staff>,
}

impl StaffMember {
    /// The actor for events this staff member causes.
    pub fn actor(&self) -> Actor {
        Actor::Staff { id: self.staff_id.clone(), role: self.role.as_str().to_string() }
    }

    /// Refuses with 403 unless the member has one of `roles`.
    pub fn require(&self, roles: &[shenfen_domain::staff::Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }
}

impl FromRequestParts<Arc<AppState>> for StaffMember {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(ApiError::unauthenticated)?;
        let Some(staff_id) = crate::crypto::staff_of_token(token) else {
            if holder_of(state, token, false).await?.is_some() {
                return Err(ApiError::forbidden());
            }
            return Err(ApiError::unauthenticated());
        };
        let loaded = state.staff.load_current(&staff_id).await.map_err(|e| ApiError::internal(e.to_string()))?.loaded;
        let hash = shenfen_domain::ids::token_hash(token);
        let member = &loaded.state;
        let session = member.session_by_token(&hash, state.clock.now()).ok_or_else(ApiError::unauthenticated)?;
        let (Some(username), Some(role)) = (member.username.clone(), member.role) else {
            return Err(ApiError::unauthenticated());
        };
        let session_id = session.session_id.clone();
        Ok(StaffMember { staff_id, username, role, session_id, loaded })
    }
}

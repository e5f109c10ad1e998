//! What kind of failure a domain error is, independent of any transport. `api/src/error.rs`
//! maps kinds to HTTP status codes in one place.

/// The kind of a domain error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input breaks a rule (HTTP 422).
    Invalid,
    /// The request conflicts with the current state (HTTP 409).
    Conflict,
    /// The thing asked for does not exist (HTTP 404).
    NotFound,
    /// The caller may not do this (HTTP 403).
    Forbidden,
    /// Credentials were wrong (HTTP 401).
    Unauthenticated,
    /// The account is locked (HTTP 423).
    Locked,
    /// A quota or rate limit is used up (HTTP 429).
    RateLimited,
    /// A secret (code, token) is wrong, used or expired (HTTP 400).
    BadSecret,
    /// The state moved under the request; the caller should load again and retry.
    Retry,
    /// An outside system the rule depends on could not be asked (HTTP 503).
    Unavailable,
}

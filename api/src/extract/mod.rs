//! Request extractors: bodies whose rejections are problem+json ([`body`]), the request
//! context — request id, instant, client address ([`context`]) — and who is signed in
//! ([`auth`]).

mod auth;
mod body;
mod context;

pub use auth::{CommandHolder, Holder, StaffMember, StudentHolder};
pub use body::{AppJson, MultipartForm, OptionalJson};
pub use context::{acceptable_request_id, client_address, parse_trusted_proxies, Ctx};

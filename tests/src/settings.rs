//! Which store a test runs on, and the server's settings.

use crate::*;

/// Which event store the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Postgres,
}

/// Server settings a test may change (environment variables of the server).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `SHENFEN_LOCKOUT_SECONDS`
    pub lockout_seconds: Option<u64>,
    /// `SHENFEN_LOCKOUT_THRESHOLD`
    pub lockout_threshold: Option<u32>,
    /// The people the identity authority knows. With the reference adapter (the default) they
    /// are written to `identity-registry.csv` in the test directory before the server starts
    /// (`SHENFEN_IDENTITY_AUTHORITY=reference:<that file>`); nobody listed means every check
    /// fails with `identity_not_found`. With [`Settings::http_authority`] they seed the fake.
    pub identities: Vec<Identity>,
    /// Run a [`FakeAuthority`] on loopback and start the server with
    /// `SHENFEN_IDENTITY_AUTHORITY=http:<its URL>` instead of the reference registry.
    pub http_authority: bool,
    /// More environment variables for the server and its commands, set last (they win).
    pub env: Vec<(String, String)>,
    /// PostgreSQL only: the server reaches the database through a [`faults::PgProxy`]
    /// ([`TestApp::proxy`]) that can lose answers.
    pub proxied: bool,
}

impl Settings {
    /// The server defaults.
    pub fn defaults() -> Settings {
        Settings::default()
    }

    /// A lock that lasts only `seconds`.
    pub fn lockout_seconds(seconds: u64) -> Settings {
        Settings { lockout_seconds: Some(seconds), ..Settings::default() }
    }

    /// A reference identity registry listing `identities`.
    pub fn with_identities(identities: Vec<Identity>) -> Settings {
        Settings { identities, ..Settings::default() }
    }

    /// A fake HTTP identity authority that knows `identities` (more can be added while it runs).
    pub fn with_http_authority(identities: Vec<Identity>) -> Settings {
        Settings { identities, http_authority: true, ..Settings::default() }
    }

    /// The server reaches PostgreSQL through a [`faults::PgProxy`].
    pub fn proxied(mut self) -> Settings {
        self.proxied = true;
        self
    }

    /// These settings and one more environment variable for the server.
    pub fn env(mut self, name: &str, value: &str) -> Settings {
        self.env.push((name.to_string(), value.to_string()));
        self
    }
}

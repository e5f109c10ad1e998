//! The Argon2id baseline: password verifications per second on every core, with the
//! parameters the server uses (`Argon2::default()`: Argon2id, m = 19456 KiB, t = 2, p = 1)
//! and the server's own verification routine.

use std::time::{Duration, Instant};

use anyhow::Context;
use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;

use crate::stats::{Recorder, Summary};

/// The password the baseline verifies (the same shape as the accounts' passwords).
const PASSWORD: &[u8] = b"Zq7#mountain";

/// The parameters in use, as `m=…,t=…,p=…`.
pub fn params() -> String {
    let p = argon2::Params::default();
    format!("argon2id m={} KiB, t={}, p={}", p.m_cost(), p.t_cost(), p.p_cost())
}

/// Verifies on `threads` OS threads for `duration`. Blocking: call it off the async runtime.
pub fn verifications(threads: usize, duration: Duration) -> anyhow::Result<Summary> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let hash = Argon2::default()
        .hash_password(PASSWORD, &salt)
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))
        .context("hashing the baseline password")?
        .to_string();
    let started = Instant::now();
    let deadline = started + duration;
    let total = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads).map(|_| scope.spawn(|| verify_loop(&hash, deadline))).collect();
        let mut total = Recorder::new();
        for worker in workers {
            match worker.join() {
                Ok(recorder) => total.merge(recorder),
                Err(_) => total.failure("panic", || "an Argon2id thread panicked".into()),
            }
        }
        total
    });
    Ok(total.summary(threads, started.elapsed()))
}

/// One thread's loop, with the server's own verification routine: the stored hash parsed
/// each time and the 19 MiB working memory kept between verifications, as the server's
/// hashing threads do.
fn verify_loop(hash: &str, deadline: Instant) -> Recorder {
    let mut recorder = Recorder::new();
    let mut blocks = Vec::new();
    while Instant::now() < deadline {
        let started = Instant::now();
        if shenfen_api::crypto::verify_with(PASSWORD, hash, &mut blocks) {
            recorder.success(started.elapsed());
        } else {
            recorder.failure("argon2", || "the baseline password did not verify".into());
        }
    }
    recorder
}

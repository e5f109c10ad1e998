//! The server binary the tests run, and the macro that runs a scenario on both stores.

use std::{path::PathBuf, sync::OnceLock};

pub(crate) static SERVER_BINARY: OnceLock<PathBuf> = OnceLock::new();

/// Tells the harness where the server binary is. Integration tests call this with
/// `env!("CARGO_BIN_EXE_shenfen-server")`, which cargo only gives to them, not to this library.
pub fn use_server_binary(path: impl Into<PathBuf>) {
    let _ = SERVER_BINARY.set(path.into());
}

/// The server binary: the one set by [`use_server_binary`], else `SHENFEN_SERVER_BIN`, else
/// `shenfen-server` beside the directory of the running test executable (`target/debug/`).
pub fn server_binary() -> PathBuf {
    if let Some(path) = SERVER_BINARY.get() {
        return path.clone();
    }
    if let Ok(path) = std::env::var("SHENFEN_SERVER_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().expect("test executable has a directory");
    let dir = if dir.ends_with("deps") { dir.parent().expect("target dir") } else { dir };
    dir.join("shenfen-server")
}

/// Runs a scenario once on SQLite and once on PostgreSQL: `both_stores!(scenario)` defines two
/// tests, `scenario::on_sqlite` and `scenario::on_postgres`, each calling
/// `scenario(&mut TestApp)` on a fresh server. A second argument gives the [`Settings`]; it is
/// evaluated inside each test, so it may make fresh test data (such as [`Identity`] rows) for
/// each. Use it from an integration test of this package (it needs the server binary's path
/// from cargo).
#[macro_export]
macro_rules! both_stores {
    ($scenario:ident) => {
        $crate::both_stores!($scenario, $crate::Settings::defaults());
    };
    ($scenario:ident, $settings:expr) => {
        mod $scenario {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                $crate::use_server_binary(env!("CARGO_BIN_EXE_shenfen-server"));
                let mut app = $crate::TestApp::spawn($crate::Store::Sqlite, $settings).await;
                super::$scenario(&mut app).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                $crate::use_server_binary(env!("CARGO_BIN_EXE_shenfen-server"));
                let mut app = $crate::TestApp::spawn($crate::Store::Postgres, $settings).await;
                super::$scenario(&mut app).await;
            }
        }
    };
}

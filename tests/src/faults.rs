//! Fault injection on the real wire: a TCP proxy between the server and PostgreSQL that can
//! lose the answer to a statement after the statement has reached the database (a commit
//! whose acknowledgement never arrives), the way a dropped connection or a crashed network
//! path does; or keep that connection open and silent, the way a network path that drops
//! everything without a word does.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a tripped connection does after the message that tripped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Hangs up on both sides half a second later.
    HangUp,
    /// Stays open and silent: nothing more reaches the client, until the database ends the
    /// session.
    Silence,
}

/// A TCP proxy to a PostgreSQL server.
pub struct PgProxy {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    /// When armed: the bytes whose passage towards the database cuts that connection's
    /// answers, and what then happens to the connection.
    armed: Mutex<Option<(Vec<u8>, Cut)>>,
    tripped: AtomicUsize,
}

impl PgProxy {
    /// Starts a proxy to `target`.
    pub async fn start(target: SocketAddr) -> Arc<PgProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let proxy = Arc::new(PgProxy { port, armed: Mutex::new(None), tripped: AtomicUsize::new(0) });
        let shared = proxy.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let proxy = shared.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        proxy.relay(client, server).await;
                    }
                });
            }
        });
        proxy
    }

    /// The next message towards the database that contains `marker` is delivered, and its
    /// connection then loses every answer and is closed half a second later: the statement
    /// runs (and commits) while its client never hears of it. Once.
    pub fn lose_the_answer_to(&self, marker: &str) {
        self.arm(marker, Cut::HangUp);
    }

    /// The next message towards the database that contains `marker` is delivered, and its
    /// connection then answers nothing more, without closing: the client hears neither the
    /// statement's outcome nor that the connection is gone. It closes when the database ends
    /// the session. Once.
    pub fn go_silent_after(&self, marker: &str) {
        self.arm(marker, Cut::Silence);
    }

    fn arm(&self, marker: &str, cut: Cut) {
        *self.armed.lock().unwrap_or_else(|p| p.into_inner()) = Some((marker.as_bytes().to_vec(), cut));
    }

    /// How many connections it has cut.
    pub fn tripped(&self) -> usize {
        self.tripped.load(Ordering::SeqCst)
    }

    /// Takes the marker if `window` contains it, and says what to do.
    fn trips(&self, window: &[u8]) -> Option<Cut> {
        let mut armed = self.armed.lock().unwrap_or_else(|p| p.into_inner());
        let hit =
            armed.as_ref().is_some_and(|(m, _)| !m.is_empty() && window.windows(m.len()).any(|w| w == m.as_slice()));
        if !hit {
            return None;
        }
        self.tripped.fetch_add(1, Ordering::SeqCst);
        armed.take().map(|(_, cut)| cut)
    }

    pub(crate) async fn relay(self: Arc<Self>, client: TcpStream, server: TcpStream) {
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (mut client_read, mut client_write) = client.into_split();
        let (mut server_read, mut server_write) = server.into_split();
        let cut = Arc::new(AtomicBool::new(false));
        let upstream = {
            let cut = cut.clone();
            let proxy = self.clone();
            async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut tail: Vec<u8> = Vec::new();
                loop {
                    let n = match client_read.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let mut window = std::mem::take(&mut tail);
                    window.extend_from_slice(&buf[..n]);
                    let trip = proxy.trips(&window);
                    if trip.is_some() {
                        cut.store(true, Ordering::SeqCst);
                    }
                    if server_write.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                    match trip {
                        // Let the database run and commit the statement, then hang up on both.
                        Some(Cut::HangUp) => {
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            return;
                        }
                        // Nothing more from the client reaches the database either; the
                        // connection lasts until the database ends it (downstream then ends).
                        Some(Cut::Silence) => std::future::pending::<()>().await,
                        None => {}
                    }
                    let keep = window.len().min(256);
                    tail = window[window.len() - keep..].to_vec();
                }
            }
        };
        let downstream = {
            let cut = cut.clone();
            async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match server_read.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if cut.load(Ordering::SeqCst) {
                        continue;
                    }
                    if client_write.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        };
        // Either direction ending closes the connection (both halves are dropped).
        tokio::select! {
            _ = upstream => {}
            _ = downstream => {}
        }
    }
}

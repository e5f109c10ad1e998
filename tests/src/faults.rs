//! Fault injection on the real wire: a TCP proxy between the server and PostgreSQL that can
//! lose the answer to a statement after the statement has reached the database (a commit
//! whose acknowledgement never arrives), the way a dropped connection or a crashed network
//! path does.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A TCP proxy to a PostgreSQL server.
pub struct PgProxy {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    /// When armed: the bytes whose passage towards the database cuts that connection's answers.
    armed: Mutex<Option<Vec<u8>>>,
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
        *self.armed.lock().unwrap_or_else(|p| p.into_inner()) = Some(marker.as_bytes().to_vec());
    }

    /// How many connections it has cut.
    pub fn tripped(&self) -> usize {
        self.tripped.load(Ordering::SeqCst)
    }

    /// Takes the marker if `window` contains it.
    pub(crate) fn trips(&self, window: &[u8]) -> bool {
        let mut armed = self.armed.lock().unwrap_or_else(|p| p.into_inner());
        let hit = armed.as_ref().is_some_and(|m| !m.is_empty() && window.windows(m.len()).any(|w| w == m.as_slice()));
        if hit {
            *armed = None;
            self.tripped.fetch_add(1, Ordering::SeqCst);
        }
        hit
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
                    if trip {
                        cut.store(true, Ordering::SeqCst);
                    }
                    if server_write.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                    if trip {
                        // Let the database run and commit the statement, then hang up on both.
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        return;
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

//! A lean HTTP/1.1 client for the timed phases: one keep-alive connection per client, driven
//! by hyper directly, with the request bodies serialised once before the phase. The load
//! generator shares the machine with the server and PostgreSQL, so every cycle it spends is
//! one the server does not get; this client spends far fewer than a general-purpose one.

use std::net::SocketAddr;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;

/// One connection to the server.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

impl Conn {
    /// Connects to `base` (`http://HOST:PORT`).
    pub async fn open(base: &str) -> anyhow::Result<Conn> {
        let host = base.strip_prefix("http://").context("the server's URL is not http://HOST:PORT")?.to_string();
        let addr: SocketAddr = host.parse().with_context(|| format!("not an address: {host}"))?;
        let stream = tokio::net::TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.context("HTTP/1.1 handshake")?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Conn { sender, host })
    }

    /// Sends a JSON body (`token` as bearer when given); returns the status and the body.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Bytes,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        self.send_with(method, path, token, body, None).await
    }

    /// Sends a request without a body that asks for `accept`.
    pub async fn send_accepting(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        accept: &str,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        self.send_with(method, path, token, Bytes::new(), Some(accept)).await
    }

    async fn send_with(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Bytes,
        accept: Option<&str>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, &self.host)
            .header(CONTENT_TYPE, "application/json");
        if let Some(accept) = accept {
            request = request.header(hyper::header::ACCEPT, accept);
        }
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request.body(Full::new(body)).context("building a request")?;
        self.sender.ready().await.context("the connection closed")?;
        let response = self.sender.send_request(request).await.context("sending the request")?;
        let status = response.status();
        let body = response.into_body().collect().await.context("reading the answer")?.to_bytes();
        Ok((status, body))
    }
}

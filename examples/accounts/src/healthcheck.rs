//! `accounts healthcheck`: ask the running service for `/health`, for a Docker HEALTHCHECK.
//!
//! The image has no curl, and the binary carries no HTTP client, so this speaks just enough HTTP/1.1 over
//! a plain TCP stream: one `GET /health` with `Connection: close`, read the status line, done. The whole
//! exchange has a 3-second deadline.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the whole check may take.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The HTTP status, if one was read.
    pub status: Option<u16>,
    /// The response body, or what went wrong.
    pub detail: String,
}

impl Checked {
    /// Whether the service answered 200.
    pub fn healthy(&self) -> bool {
        self.status == Some(200)
    }
}

/// Calls `GET /health` on `addr`.
pub async fn check(addr: SocketAddr) -> Checked {
    match tokio::time::timeout(TIMEOUT, exchange(addr)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => Checked {
            status: None,
            detail: format!("cannot reach {addr}: {e}"),
        },
        Err(_) => Checked {
            status: None,
            detail: format!("no answer from {addr} within {}s", TIMEOUT.as_secs()),
        },
    }
}

async fn exchange(addr: SocketAddr) -> std::io::Result<Checked> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!(
        "GET /health HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: accounts-healthcheck\r\n\
         Accept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("HTTP/1."))
        .and_then(|rest| rest.split(' ').nth(1))
        .and_then(|code| code.parse().ok());
    let detail = match text.split_once("\r\n\r\n") {
        Some((_, body)) => body.trim().to_owned(),
        None => text.trim().to_owned(),
    };
    Ok(Checked { status, detail })
}

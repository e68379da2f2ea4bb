//! A TCP proxy a test puts in front of a server (S3) and can freeze: while
//! frozen it forwards no byte in either direction and holds new connections
//! (accepted, not yet connected upstream), which is how a hung server looks
//! to its clients; thawed, everything held goes on. Only the clients pointed
//! at the proxy see the outage, so a test can freeze "S3" without
//! disturbing the other tests on the shared stack.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy; it stops when dropped.
pub struct Proxy {
    addr: SocketAddr,
    frozen: watch::Sender<bool>,
    counters: Arc<Counters>,
    accept: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Counters {
    /// Bytes forwarded from the server to the clients.
    down: AtomicU64,
    /// Connections accepted.
    connections: AtomicU64,
    /// ListObjectsV2 requests forwarded.
    listings: AtomicU64,
    /// Delay of each ListObjectsV2 request, in ms.
    list_delay_ms: AtomicU64,
}

impl Proxy {
    /// Listens on an ephemeral port of 127.0.0.1 and forwards every
    /// connection to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (frozen, _) = watch::channel(false);
        let counters = Arc::new(Counters::default());
        let accept = tokio::spawn(accept_loop(
            listener,
            upstream.to_string(),
            frozen.subscribe(),
            counters.clone(),
        ));
        Proxy {
            addr,
            frozen,
            counters,
            accept,
        }
    }

    /// A proxy in front of the stack's S3 endpoint.
    pub async fn s3() -> Proxy {
        let endpoint = &crate::stack::stack().s3_endpoint;
        let rest = endpoint
            .split_once("://")
            .map_or(endpoint.as_str(), |x| x.1);
        Proxy::start(rest.split('/').next().unwrap_or(rest)).await
    }

    /// `http://127.0.0.1:PORT`, for `--endpoint-url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops forwarding and holds new connections.
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    /// Forwards again, starting with what was held.
    pub fn thaw(&self) {
        self.frozen.send_replace(false);
    }

    /// Bytes forwarded from the server to the clients so far.
    pub fn bytes_down(&self) -> u64 {
        self.counters.down.load(Ordering::Relaxed)
    }

    /// Delays every ListObjectsV2 request (`list-type=2`) by `d` before it
    /// goes to the server: a slow listing, for everyone behind the proxy.
    pub fn delay_listings(&self, d: Duration) {
        self.counters
            .list_delay_ms
            .store(d.as_millis() as u64, Ordering::Relaxed);
    }

    /// ListObjectsV2 requests forwarded so far.
    pub fn listings(&self) -> u64 {
        self.counters.listings.load(Ordering::Relaxed)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.counters.connections.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Waits while frozen; `false` if the proxy is gone.
async fn while_frozen(frozen: &mut watch::Receiver<bool>) -> bool {
    frozen.wait_for(|f| !*f).await.is_ok()
}

async fn accept_loop(
    listener: TcpListener,
    upstream: String,
    frozen: watch::Receiver<bool>,
    counters: Arc<Counters>,
) {
    // Connections die with the accept loop (when the proxy is dropped).
    let mut tasks = tokio::task::JoinSet::new();
    while let Ok((client, _)) = listener.accept().await {
        counters.connections.fetch_add(1, Ordering::Relaxed);
        let (upstream, mut frozen, counters) = (upstream.clone(), frozen.clone(), counters.clone());
        tasks.spawn(async move {
            if !while_frozen(&mut frozen).await {
                return;
            }
            let Ok(server) = TcpStream::connect(&upstream).await else {
                return; // the client sees its connection closed
            };
            let (client_r, client_w) = client.into_split();
            let (server_r, server_w) = server.into_split();
            let up = pump(
                client_r,
                server_w,
                frozen.clone(),
                Direction::Up,
                counters.clone(),
            );
            let down = pump(server_r, client_w, frozen, Direction::Down, counters);
            tokio::join!(up, down);
        });
        while tasks.try_join_next().is_some() {}
    }
}

/// Which way a pump copies.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Client to server (requests).
    Up,
    /// Server to client (responses).
    Down,
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Copies `from` to `to`, holding what it read while frozen; at the end of
/// `from` shuts `to` down.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
    direction: Direction,
    counters: Arc<Counters>,
) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // A request's head comes in one read (the worker sends GET, HEAD and
        // LIST requests without a body): a listing is delayed as a whole.
        if direction == Direction::Up && contains(&buf[..n], b"list-type=2") {
            counters.listings.fetch_add(1, Ordering::Relaxed);
            let ms = counters.list_delay_ms.load(Ordering::Relaxed);
            if ms > 0 {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
        }
        if !while_frozen(&mut frozen).await || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        if direction == Direction::Down {
            counters.down.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
    if while_frozen(&mut frozen).await {
        let _ = to.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server behind the proxy: bytes pass, stop while frozen
    /// (also on a connection opened while frozen), and pass again after.
    #[tokio::test]
    async fn freeze_holds_bytes_and_connections_until_thaw() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        let proxy = Proxy::start(&echo_addr).await;
        let mut a = TcpStream::connect(proxy.addr).await.unwrap();
        let mut buf = [0u8; 5];
        a.write_all(b"hello").await.unwrap();
        a.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");

        proxy.freeze();
        a.write_all(b"world").await.unwrap();
        let mut b = TcpStream::connect(proxy.addr).await.unwrap();
        b.write_all(b"again").await.unwrap();
        let wait = Duration::from_millis(500);
        assert!(tokio::time::timeout(wait, a.read_exact(&mut buf))
            .await
            .is_err());
        assert!(tokio::time::timeout(wait, b.read_exact(&mut buf))
            .await
            .is_err());

        proxy.thaw();
        a.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"world");
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"again");
        assert_eq!((proxy.bytes_down(), proxy.connections()), (15, 2));
    }
}

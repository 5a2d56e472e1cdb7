//! A TCP relay on loopback that can silently stop carrying the bytes of the
//! connections open through it, without closing them: what a NAT or a
//! firewall that forgot a flow does to an idle IMAP connection. Connections
//! opened later pass normally. It also keeps what the server sent, so a
//! test can wait for a protocol step (`+ idling`) instead of sleeping.
//!
//! Every task lives in a `JoinSet` owned by the relay's accept task, which
//! is aborted when the relay is dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// A running relay to a loopback port.
pub struct Blackhole {
    port: u16,
    epoch: Arc<AtomicU64>,
    /// Everything the server sent through the relay, as text.
    from_server: watch::Receiver<String>,
    task: JoinHandle<()>,
}

impl Blackhole {
    /// Relays a new loopback port to `upstream`.
    pub async fn start(upstream: u16) -> Blackhole {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind the relay");
        let port = listener.local_addr().expect("its address").port();
        let epoch = Arc::new(AtomicU64::new(0));
        let shared = epoch.clone();
        let (sent, from_server) = watch::channel(String::new());
        let sent = Arc::new(sent);
        let task = tokio::spawn(async move {
            let mut pipes = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else { continue };
                let born = shared.load(Ordering::SeqCst);
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                pipes.spawn(pipe(client_read, server_write, shared.clone(), born, None));
                pipes.spawn(pipe(server_read, client_write, shared.clone(), born, Some(sent.clone())));
                // Reap finished pipes so the set does not grow.
                while pipes.try_join_next().is_some() {}
            }
        });
        Blackhole { port, epoch, from_server, task }
    }

    /// Waits until the server has sent `text` through the relay (on any
    /// connection, since it started).
    pub async fn server_sent(&self, text: &str) {
        self.server_sent_times(text, 1).await;
    }

    /// Waits until the server has sent `text` at least `times` times.
    pub async fn server_sent_times(&self, text: &str, times: usize) {
        let mut from_server = self.from_server.clone();
        from_server.wait_for(|sent| sent.matches(text).count() >= times).await.expect("the relay is running");
    }

    /// How many times the server has sent `text` so far.
    pub fn server_sent_count(&self, text: &str) -> usize {
        self.from_server.borrow().matches(text).count()
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// From now on, the connections open now carry nothing either way (the
    /// bytes are read and thrown away) and stay open.
    pub fn swallow_open_connections(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    epoch: Arc<AtomicU64>,
    born: u64,
    record: Option<Arc<watch::Sender<String>>>,
) {
    let mut buffer = vec![0; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if epoch.load(Ordering::SeqCst) > born {
            continue;
        }
        if let Some(record) = &record {
            record.send_modify(|sent| sent.push_str(&String::from_utf8_lossy(&buffer[..n])));
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

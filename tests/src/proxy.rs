//! A TCP proxy that a test can cut and restore, to take a database away from a running server,
//! or freeze, to make a service that keeps its connections open and says nothing more.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct FaultProxy {
    pub port: u16,
    target: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    frozen: watch::Sender<bool>,
}

impl FaultProxy {
    /// Forwards 127.0.0.1:<port> to `target` until cut.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let proxy = Self { port, target, tasks: Arc::default(), frozen: watch::Sender::new(false) };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let (target, tasks, frozen) = (self.target, self.tasks.clone(), self.frozen.clone());
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let frozen = frozen.subscribe();
                let pipe = tokio::spawn(async move {
                    if let Ok(outbound) = TcpStream::connect(target).await {
                        let (from_client, to_client) = inbound.into_split();
                        let (from_server, to_server) = outbound.into_split();
                        tokio::join!(
                            pump(from_client, to_server, frozen.clone()),
                            pump(from_server, to_client, frozen)
                        );
                    }
                });
                tasks.lock().expect("tasks").push(pipe);
            }
        });
        self.tasks.lock().expect("tasks").push(accept);
    }

    /// Connections stay open (new ones are accepted) but no byte passes either way: a service
    /// that hangs.
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    /// Closes every connection and stops accepting: the database is "down".
    pub fn cut(&self) {
        for task in self.tasks.lock().expect("tasks").drain(..) {
            task.abort();
        }
    }

    /// Accepts again on the same port: the database is "back".
    pub async fn restore(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.expect("rebind proxy port");
        self.serve(listener);
    }
}

/// Copies `from` to `to` while not frozen.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if frozen.wait_for(|frozen| !frozen).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.cut();
    }
}

//! A tiny HTTP server for copy-from and location tests, like Glance's `setup_http`: any path
//! containing `images` serves 5 KiB of `*` (HEAD and GET); anything else is 404.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub struct HttpSource {
    pub port: u16,
    task: JoinHandle<()>,
}

impl HttpSource {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let mut len = 0;
                    while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf[len..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => len += n,
                        }
                    }
                    let head = String::from_utf8_lossy(&buf[..len]).to_string();
                    let mut words = head.split_whitespace();
                    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                    let response = if path.contains("images") {
                        let mut r = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 5120\r\nConnection: close\r\n\r\n".to_vec();
                        if method == "GET" {
                            r.extend(std::iter::repeat_n(b'*', 5120));
                        }
                        r
                    } else {
                        let body = format!("File Not Found: {path}");
                        let mut r = format!(
                            "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        if method == "GET" {
                            r.extend(body.into_bytes());
                        }
                        r
                    };
                    let _ = stream.write_all(&response).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self { port, task }
    }

    /// `http://127.0.0.1:<port>/images/<name>`
    pub fn uri(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/images/{name}", self.port)
    }
}

impl Drop for HttpSource {
    fn drop(&mut self) {
        self.task.abort();
    }
}

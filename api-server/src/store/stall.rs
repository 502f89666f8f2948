//! How long a remote store (Swift, S3) may keep us waiting: `remote_store_timeout` seconds
//! for an answer, and for each next piece of a download, so that a store which accepts
//! connections and then says nothing fails the request (503 naming the store) instead of
//! hanging it. Only time spent waiting on the store counts: a slow client, whose upload we
//! wait for or whose download we wait to send, never trips it. (reqwest's own `read_timeout`
//! counts both, so it would cut off a slow client's transfer.)

use bytes::Bytes;
use futures_util::Stream;
use glance_common::config::{ConfigError, DEFAULT_SECTION, RawConfig};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// `remote_store_timeout` unless configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The option, read from `[glance_store]` (or `[DEFAULT]`) by both remote stores.
pub const KEY: &str = "remote_store_timeout";

/// `remote_store_timeout`: seconds, 60 by default; at least 1.
pub fn timeout_from_raw(raw: &RawConfig) -> Result<Duration, ConfigError> {
    let section = if raw.string("glance_store", KEY).is_some() { "glance_store" } else { DEFAULT_SECTION };
    match raw.get::<u64>(section, KEY, DEFAULT_TIMEOUT.as_secs())? {
        0 => Err(raw.invalid(section, KEY, "0", "expected a number of seconds, at least 1")),
        seconds => Ok(Duration::from_secs(seconds)),
    }
}

/// `work` (a request whose body is not streamed from a client, up to its answer) or
/// `Err(stalled)` after `limit`.
pub async fn within<T, E>(
    limit: Duration,
    work: impl Future<Output = Result<T, E>>,
    stalled: impl FnOnce() -> E,
) -> Result<T, E> {
    tokio::time::timeout(limit, work).await.unwrap_or_else(|_| Err(stalled()))
}

/// A download that fails with `TimedOut` when the store sends nothing for `limit` while we
/// wait on it; time the consumer takes between polls is not counted.
pub fn quiet_limited<S>(body: S, limit: Duration) -> QuietLimited<S> {
    QuietLimited { body, limit, timer: Box::pin(tokio::time::sleep(limit)), armed: false }
}

pub struct QuietLimited<S> {
    body: S,
    limit: Duration,
    /// One timer for the whole download, re-armed when a poll finds nothing.
    timer: Pin<Box<Sleep>>,
    /// Whether the timer is counting: only while the last poll found nothing.
    armed: bool,
}

impl<S> Stream for QuietLimited<S>
where
    S: Stream<Item = std::io::Result<Bytes>> + Unpin,
{
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Poll::Ready(item) = Pin::new(&mut this.body).poll_next(cx) {
            this.armed = false;
            return Poll::Ready(item);
        }
        if !this.armed {
            this.armed = true;
            this.timer.as_mut().reset(Instant::now() + this.limit);
        }
        match this.timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.armed = false;
                let message = format!("the store sent nothing for {} s", this.limit.as_secs());
                Poll::Ready(Some(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, message))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Where an upload streamed to the store stands: waiting on the client (its time is not
/// ours to limit) or handed to the store since `since`.
#[derive(Clone)]
pub struct UploadWatch(Arc<Mutex<(bool, Instant)>>);

impl UploadWatch {
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new((false, Instant::now()))))
    }

    fn set(&self, waiting_on_client: bool) {
        if let Ok(mut state) = self.0.lock() {
            *state = (waiting_on_client, Instant::now());
        }
    }

    /// The request body `body`, reporting here whether it is waiting on the client.
    pub fn watch<S>(&self, body: S) -> impl Stream<Item = S::Item> + use<S>
    where
        S: Stream + Unpin,
    {
        let watch = self.clone();
        let mut body = body;
        futures_util::stream::poll_fn(move |cx| {
            let next = Pin::new(&mut body).poll_next(cx);
            watch.set(next.is_pending());
            next
        })
    }

    /// `send` (the request whose body is watched), or `Err(stalled)` once the store has kept
    /// us waiting for `limit`: not taking the body it was handed, or not answering after it.
    pub async fn limit<T, E>(
        &self,
        limit: Duration,
        send: impl Future<Output = Result<T, E>>,
        stalled: impl FnOnce() -> E,
    ) -> Result<T, E> {
        let overdue = async {
            loop {
                tokio::time::sleep((limit / 4).max(Duration::from_millis(50))).await;
                let (waiting_on_client, since) = self.0.lock().map(|s| *s).unwrap_or((false, Instant::now()));
                if !waiting_on_client && since.elapsed() >= limit {
                    return;
                }
            }
        };
        tokio::select! {
            sent = send => sent,
            () = overdue => Err(stalled()),
        }
    }
}

impl Default for UploadWatch {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    //! On real time, with limits of a fraction of a second.
    use super::*;
    use futures_util::StreamExt;

    const LIMIT: Duration = Duration::from_millis(200);

    #[tokio::test]
    async fn a_silent_store_fails_the_download() {
        let silent = futures_util::stream::pending::<std::io::Result<Bytes>>();
        let mut body = quiet_limited(silent, LIMIT);
        let err = body.next().await.expect("an item").expect_err("timed out");
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_slow_consumer_is_not_the_store_stalling() {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(1);
        let pieces = Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
        let mut body = quiet_limited(pieces, LIMIT);
        // The first piece comes a little after the consumer asks (the timer runs meanwhile).
        let store = async {
            tokio::time::sleep(LIMIT / 2).await;
            tx.send(Ok(Bytes::from_static(b"a"))).await.expect("send");
        };
        let (first, ()) = tokio::join!(body.next(), store);
        assert_eq!(first.expect("a").expect("a"), Bytes::from_static(b"a"));
        // The consumer is away for three limits; the store sends the next piece a little after
        // it is back. Only that little wait is the store's.
        tokio::time::sleep(LIMIT * 3).await;
        let store = async {
            tokio::time::sleep(LIMIT / 2).await;
            tx.send(Ok(Bytes::from_static(b"b"))).await.expect("send");
        };
        let (next, ()) = tokio::join!(body.next(), store);
        assert_eq!(next.expect("b").expect("b"), Bytes::from_static(b"b"));
    }

    #[tokio::test]
    async fn an_upload_waiting_on_its_client_is_not_stalled() {
        let watch = UploadWatch::new();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u8>(1);
        let mut body = Box::pin(watch.watch(Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))));
        // The "store" reads the whole body, which the client takes three limits to send.
        let send = async {
            while body.next().await.is_some() {}
            Ok::<_, ()>("answered")
        };
        let client = async {
            tokio::time::sleep(LIMIT * 3).await;
            tx.send(1).await.expect("send");
            drop(tx);
        };
        let (sent, ()) = tokio::join!(watch.limit(LIMIT, send, || ()), client);
        assert_eq!(sent, Ok("answered"));
    }

    #[tokio::test]
    async fn a_store_not_answering_after_the_body_is_stalled() {
        let watch = UploadWatch::new();
        let mut body = Box::pin(watch.watch(futures_util::stream::iter([1u8, 2])));
        let send = async {
            while body.next().await.is_some() {}
            std::future::pending::<Result<(), &str>>().await
        };
        assert_eq!(watch.limit(LIMIT, send, || "stalled").await, Err("stalled"));
    }
}

//! A progress bar for the image being transferred, on stderr when it is a terminal; nothing
//! otherwise, so scripts and logs see no escape codes.

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

type Body = BoxStream<'static, std::io::Result<Bytes>>;

#[derive(Clone, Default)]
pub struct Progress {
    enabled: bool,
    /// The bar of the image in transfer, which log lines make room for.
    current: Arc<Mutex<Option<ProgressBar>>>,
}

impl Progress {
    pub fn on_terminal() -> Self {
        Self { enabled: std::io::stderr().is_terminal(), current: Arc::default() }
    }

    pub fn hidden() -> Self {
        Self::default()
    }

    /// Counts the bytes of image `id` as they pass through `body`.
    pub fn track(&self, id: &str, length: Option<u64>, body: Body) -> Body {
        if !self.enabled {
            return body;
        }
        let template = match length {
            Some(_) => "{msg} {bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}",
            None => "{msg} {spinner} {bytes} {binary_bytes_per_sec}",
        };
        let style = ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
        let bar = ProgressBar::new(length.unwrap_or(0)).with_style(style).with_message(id.to_string());
        if let Some(old) = self.replace(Some(bar.clone())) {
            old.finish_and_clear();
        }
        body.inspect_ok(move |chunk| bar.inc(chunk.len() as u64)).boxed()
    }

    /// Clears the bar once the image is through.
    pub fn finish(&self) {
        if let Some(bar) = self.replace(None) {
            bar.finish_and_clear();
        }
    }

    /// Runs `f` (writing a log line) with the bar out of the way.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        let bar = self.current.lock().map(|b| b.clone()).unwrap_or_default();
        match bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    fn replace(&self, bar: Option<ProgressBar>) -> Option<ProgressBar> {
        match self.current.lock() {
            Ok(mut current) => std::mem::replace(&mut *current, bar),
            Err(_) => None,
        }
    }
}

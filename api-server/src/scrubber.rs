//! glance-scrubber's work: delete the data of images in `pending_delete` once their
//! `scrub_time` has passed, then let the registry mark them `deleted`.
//!
//! The queue lives in the registry's database (`/scrub-jobs`), so any node can scrub and
//! several may at once: each pass claims due jobs for a lease, deletes their data, and finishes
//! them; a job whose store fails is released and retried by a later pass. A scrubber that dies
//! mid-pass only delays its claimed jobs until their lease lapses, and deleting data that a
//! previous attempt already removed counts as done.

use crate::AppState;
use crate::store::{StoreError, redact};
use futures_util::StreamExt;
use glance_common::config::{ConfigError, DEFAULT_SECTION, RawConfig};
use glance_common::context::{RequestContext, new_request_id};
use glance_common::model::{MAX_CLEANUP_AGE_SECONDS, ScrubClaim, ScrubJob, ScrubRenewal};
use std::time::Duration;

/// How long a claim holds its jobs unless renewed; a scrubber renews its batch every third of
/// it while deletes are in progress, so only a scrubber that stopped loses its jobs.
const LEASE: Duration = Duration::from_secs(600);
/// Jobs claimed per request: a few rounds of parallel deletes, far within one lease.
const BATCH: i64 = 32;
/// Deletes in flight at once (object stores answer in milliseconds, file deletes are cheap).
const PARALLEL_DELETES: usize = 8;
/// Longest store error kept with a released job.
const MAX_ERROR_LEN: usize = 1000;

/// The scrubber's own options (its config file otherwise uses glance-api's option names).
#[derive(Debug, Clone, PartialEq)]
pub struct ScrubberOptions {
    /// Scrub every `wakeup_time` until SIGTERM instead of once.
    pub daemon: bool,
    pub wakeup_time: Duration,
    /// `cleanup_scrubber` with `cleanup_scrubber_time`: also scrub images left `pending_delete`
    /// with nothing queued (an older Glance's delete) once deleted that long ago.
    pub cleanup_after: Option<Duration>,
}

impl ScrubberOptions {
    pub fn from_raw(raw: &RawConfig) -> Result<Self, ConfigError> {
        let d = DEFAULT_SECTION;
        Ok(Self {
            daemon: raw.bool(d, "daemon", false)?,
            wakeup_time: Duration::from_secs(raw.get(d, "wakeup_time", 300)?),
            cleanup_after: match raw.bool(d, "cleanup_scrubber", false)? {
                false => None,
                true => match raw.get::<u64>(d, "cleanup_scrubber_time", 86400)? {
                    age if age <= MAX_CLEANUP_AGE_SECONDS as u64 => Some(Duration::from_secs(age)),
                    age => {
                        let why = "expected seconds, at most a century";
                        return Err(raw.invalid(d, "cleanup_scrubber_time", &age.to_string(), why));
                    }
                },
            },
        })
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    /// Locations whose data is gone.
    pub scrubbed: usize,
    /// Images that became `deleted`.
    pub images_deleted: usize,
    /// Locations left queued after a store failure.
    pub retried: usize,
}

pub struct Scrubber {
    state: AppState,
    worker: String,
    identity: crate::tools::ServiceIdentity,
    cleanup_after: Option<Duration>,
}

impl Scrubber {
    pub fn new(state: AppState, options: &ScrubberOptions) -> Result<Self, String> {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "localhost".into());
        let worker = format!("{}:{}:{}", host.trim(), std::process::id(), &new_request_id()[4..12]);
        let identity = crate::tools::ServiceIdentity::new(&state.config)?;
        Ok(Self { state, worker, identity, cleanup_after: options.cleanup_after })
    }

    /// The name this scrubber claims jobs under.
    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// One walk over the due part of the queue. Fails only when the registry cannot be asked.
    pub async fn run_once(&self) -> glance_common::Result<PassReport> {
        // The scrubber acts for the service: an admin context, as Glance's.
        let ctx = self.identity.context().await?;
        let mut report = PassReport::default();
        let mut after = 0;
        loop {
            let ask = ScrubClaim {
                worker: self.worker.clone(),
                lease_seconds: LEASE.as_secs() as i64,
                limit: BATCH,
                after,
                cleanup_after_seconds: self.cleanup_after.map(|age| age.as_secs() as i64),
            };
            let jobs = self.state.registry.claim_scrub_jobs(&ctx, &ask).await?;
            let Some(last) = jobs.last() else { break };
            after = last.id;
            let work = futures_util::stream::iter(jobs.iter().map(|job| self.scrub(&ctx, job)))
                .buffer_unordered(PARALLEL_DELETES)
                .collect::<Vec<_>>();
            let outcomes = self.renewing(&ctx, &jobs, work).await;
            for outcome in outcomes {
                match outcome? {
                    Outcome::Scrubbed { image_deleted } => {
                        report.scrubbed += 1;
                        report.images_deleted += usize::from(image_deleted);
                    }
                    Outcome::Retry => report.retried += 1,
                }
            }
        }
        Ok(report)
    }

    /// Runs `work` on `jobs`, renewing their lease every third of it meanwhile.
    async fn renewing<T>(&self, ctx: &RequestContext, jobs: &[ScrubJob], work: impl Future<Output = T>) -> T {
        let renewal = ScrubRenewal {
            worker: self.worker.clone(),
            lease_seconds: LEASE.as_secs() as i64,
            ids: jobs.iter().map(|j| j.id).collect(),
        };
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + LEASE / 3, LEASE / 3);
        tokio::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => return done,
                _ = tick.tick() => {
                    if let Err(e) = self.state.registry.renew_scrub_jobs(ctx, &renewal).await {
                        log::warn!("could not renew the lease of {} scrub jobs: {e}", renewal.ids.len());
                    }
                }
            }
        }
    }

    async fn scrub(&self, ctx: &RequestContext, job: &ScrubJob) -> glance_common::Result<Outcome> {
        let id = &job.image_id;
        match self.state.stores.delete(&job.url).await {
            // Already gone (an earlier attempt, or removed behind our back) is scrubbed too.
            Ok(()) | Err(StoreError::NotFound(_)) => {
                let status = self.state.registry.finish_scrub_job(ctx, job.id).await?;
                let image_deleted = status.as_deref() == Some("deleted");
                log::info!("image {id}: data at {} deleted", redact(&job.url));
                if image_deleted {
                    log::info!("image {id} scrubbed: status deleted");
                }
                Ok(Outcome::Scrubbed { image_deleted })
            }
            Err(e) => {
                let error: String = e.to_string().chars().take(MAX_ERROR_LEN).collect();
                log::warn!(
                    "image {id}: data at {} not deleted (attempt {}), kept queued: {error}",
                    redact(&job.url),
                    job.attempts + 1
                );
                self.state.registry.release_scrub_job(ctx, job.id, &self.worker, &error).await?;
                Ok(Outcome::Retry)
            }
        }
    }
}

enum Outcome {
    Scrubbed { image_deleted: bool },
    Retry,
}

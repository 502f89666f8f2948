//! What the command-line tools share: `--config-file`, the config (their files use
//! glance-api's option names), logging, the cache, and Glance's `ERROR: <e>` exit 1.

use crate::cache::ImageCache;
use crate::config::ApiConfig;
use clap::Parser;
use glance_common::cli::ConfigArgs;
use std::future::Future;
use std::process::ExitCode;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    config: ConfigArgs,
}

/// Parses the command line and config, opens the cache, and runs `work` to completion.
pub fn run<F, Fut>(program: &str, work: F) -> ExitCode
where
    F: FnOnce(ImageCache, ApiConfig) -> Fut,
    Fut: Future<Output = std::io::Result<()>>,
{
    let args = Args::parse();
    main(
        program,
        || {
            let raw = glance_common::config::RawConfig::load(&args.config.config_file).map_err(|e| e.to_string())?;
            let dir = raw
                .path(glance_common::config::DEFAULT_SECTION, "image_cache_dir")
                .ok_or("image_cache_dir is not set")?;
            let config = ApiConfig::from_raw(&raw).map_err(|e| e.to_string())?;
            glance_common::logging::init(&config.server.log).map_err(|e| format!("cannot open the log: {e}"))?;
            let cache = ImageCache::open(&dir, &config.image_cache_sqlite_db, config.image_cache_driver)?;
            Ok((cache, config))
        },
        |(cache, config)| async move { work(cache, config).await.map_err(|e| e.to_string()) },
    )
}

/// The single-threaded runtime a tool runs on; when it cannot start, `ERROR: <e>` has been
/// printed and the exit code is returned.
pub fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| {
        eprintln!("ERROR: {e}");
        ExitCode::FAILURE
    })
}

/// A tool's life: `prepare` (config, logging; its error is printed as `ERROR: <e>`), then
/// `work` on a single-threaded runtime; any error → `ERROR: <e>` (also logged) and exit 1.
pub fn main<T, P, F, Fut>(program: &str, prepare: P, work: F) -> ExitCode
where
    P: FnOnce() -> Result<T, String>,
    F: FnOnce(T) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let prepared = match prepare() {
        Ok(prepared) => prepared,
        Err(e) => {
            eprintln!("ERROR: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(work(prepared)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{program}: {e}");
            eprintln!("ERROR: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Who a tool is to the registry: the service's admin, in whichever form the registry's
/// flavor reads it — `admin_role` as its role (`trusted-auth`), `glance:none:<admin_role>` as
/// its token (`fakeauth`), or the service user's token (`[keystone_authtoken]`, renewed before
/// it expires) when the services use Keystone. A `registry_shared_secret` is sent by the
/// registry client anyway.
pub struct ServiceIdentity {
    keystone: Option<glance_common::keystone::TokenValidator>,
    admin_role: String,
}

impl ServiceIdentity {
    pub fn new(config: &ApiConfig) -> Result<Self, String> {
        let keystone = config.auth.keystone.clone().map(glance_common::keystone::TokenValidator::new).transpose()?;
        Ok(Self { keystone, admin_role: config.auth.admin_role.clone() })
    }

    /// A fresh admin context.
    pub async fn context(&self) -> glance_common::Result<glance_common::context::RequestContext> {
        let mut ctx = glance_common::context::RequestContext::admin(glance_common::context::new_request_id());
        ctx.roles = vec![self.admin_role.clone()];
        ctx.auth_token = Some(match &self.keystone {
            Some(keystone) => keystone.service_token(false).await?.0,
            None => format!("glance:none:{}", self.admin_role),
        });
        Ok(ctx)
    }
}

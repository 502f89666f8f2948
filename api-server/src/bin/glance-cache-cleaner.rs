//! glance-cache-cleaner: removes invalid cache files and incomplete ones that stalled for
//! `image_cache_stall_time`. `glance-cache-cleaner --config-file /etc/glance/glance-cache.conf`.

use glance_api::tools;

fn main() -> std::process::ExitCode {
    tools::run("glance-cache-cleaner", |cache, config| async move {
        let stall = std::time::Duration::from_secs(config.image_cache_stall_time);
        let removed =
            tokio::task::spawn_blocking(move || cache.clean(stall)).await.map_err(std::io::Error::other)??;
        log::info!("cleaned {removed} files from the cache");
        Ok(())
    })
}

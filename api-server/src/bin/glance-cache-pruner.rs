//! glance-cache-pruner: evicts the least recently used images until the cache is within
//! `image_cache_max_size`. `glance-cache-pruner --config-file /etc/glance/glance-cache.conf`.

use glance_api::tools;

fn main() -> std::process::ExitCode {
    tools::run("glance-cache-pruner", |cache, config| async move {
        let evicted = cache.prune(config.image_cache_max_size, &config.image_cache_sqlite_db).await?;
        log::info!("pruned {evicted} images from the cache");
        Ok(())
    })
}

//! glance-cache-prefetcher: fetches every queued image into the cache (active images only,
//! checksum verified), then forgets the queue entry. Prints nothing on success.
//! `glance-cache-prefetcher --config-file /etc/glance/glance-cache.conf`.

use futures_util::StreamExt;
use glance_api::tools;

fn main() -> std::process::ExitCode {
    tools::run("glance-cache-prefetcher", |cache, config| async move {
        let state = glance_api::AppState::new(config).map_err(std::io::Error::other)?;
        // The prefetcher acts as the service itself: an admin context, as Glance's.
        let identity = tools::ServiceIdentity::new(&state.config).map_err(std::io::Error::other)?;
        let ctx = identity.context().await.map_err(std::io::Error::other)?;
        let queued = cache.queued().await?;
        // Progress on a terminal only (stderr; hidden when it is not one): stdout stays empty.
        let progress = indicatif::ProgressBar::new(queued.len() as u64).with_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} images {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        for id in queued {
            progress.set_message(id.clone());
            progress.inc(1);
            let image = match state.registry.get(&ctx, &id).await {
                Ok(image) if image.status == "active" && !image.deleted => image,
                Ok(image) => {
                    log::warn!("image {id} is {}: not prefetched", image.status);
                    continue;
                }
                Err(e) => {
                    log::warn!("image {id} not prefetched: {e}");
                    continue;
                }
            };
            let mut fetched = false;
            for location in state.stores.ordered(&image, &state.config.location_strategy) {
                match state.stores.get(location).await {
                    Ok(data) => {
                        let mut body = cache.tee(&id, data.body, image.checksum.clone());
                        let mut ok = true;
                        while let Some(chunk) = body.next().await {
                            ok &= chunk.is_ok();
                        }
                        fetched = ok;
                        break;
                    }
                    Err(e) => log::warn!("image {id}: a location failed: {e}"),
                }
            }
            if fetched {
                log::info!("prefetched image {id}");
            } else {
                log::warn!("image {id} not prefetched; it stays queued");
            }
        }
        progress.finish_and_clear();
        Ok(())
    })
}

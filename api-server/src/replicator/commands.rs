//! The replication commands (Glance's `replication_*`), over any [`ImageService`].

use super::Error;
use super::client::{ImageData, ImageService};
use super::meta::{self, Meta};
use super::progress::Progress;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// What the options of a run say.
#[derive(Debug, Clone)]
pub struct Options {
    /// Bytes per read of a dump file and per write of image data to disk.
    pub chunksize: usize,
    /// Top-level keys never replicated nor compared.
    pub dontreplicate: Vec<String>,
    /// Metadata only: no image bits.
    pub metaonly: bool,
}

const IMAGE_ALREADY_PRESENT: &str = "is already present on the slave, but our check for it did not find it. \
     This indicates that we do not have permissions to see all the images on the slave server.";

/// The detail listing, page after page (Glance's `get_images`).
struct Listing<'a, S> {
    client: &'a S,
    page: std::vec::IntoIter<Meta>,
    marker: Option<String>,
    done: bool,
}

impl<'a, S: ImageService> Listing<'a, S> {
    fn new(client: &'a S) -> Self {
        Self { client, page: Vec::new().into_iter(), marker: None, done: false }
    }

    /// The next image with its id; `None` after the first empty page.
    async fn next(&mut self) -> Result<Option<(String, Meta)>, Error> {
        loop {
            if let Some(image) = self.page.next() {
                let id = meta::id(&image).map(str::to_string).unwrap_or_default();
                self.marker = Some(id.clone());
                return Ok(Some((id, image)));
            }
            if self.done {
                return Ok(None);
            }
            let page = self.client.image_page(self.marker.as_deref()).await?;
            // A server that ignores the marker would send the same page forever.
            if self.marker.is_some() && page.last().and_then(meta::id) == self.marker.as_deref() {
                return Err(Error::Invalid("the image list does not advance past its marker".into()));
            }
            self.done = page.is_empty();
            self.page = page.into_iter();
        }
    }
}

/// `size`: the bytes and number of the active images.
pub(crate) async fn size(client: &impl ImageService) -> Result<(u64, u64), Error> {
    let (mut total, mut count) = (0, 0);
    let mut images = Listing::new(client);
    while let Some((_, image)) = images.next().await? {
        log::debug!("Considering image: {}", serde_json::Value::Object(image.clone()));
        if meta::is_active(&image) {
            total += meta::size(&image);
            count += 1;
        }
    }
    Ok((total, count))
}

/// `dump`: `<dir>/<id>` (the listing's JSON) for every image not dumped yet, and `<id>.img`
/// (the bits) for the active ones. Both are written under a temporary name and renamed, the
/// bits first, so an interrupted dump is redone on the next run. Returns the ids dumped.
pub(crate) async fn dump(
    client: &impl ImageService,
    dir: &Path,
    options: &Options,
    progress: &Progress,
) -> Result<Vec<String>, Error> {
    let mut dumped = Vec::new();
    let mut images = Listing::new(client);
    while let Some((id, image)) = images.next().await? {
        log::info!("Considering: {id}");
        // The id names files: anything but a UUID could point outside the dump.
        if uuid::Uuid::parse_str(&id).is_err() {
            log::warn!("Skipping image {id}: its id is not a UUID");
            continue;
        }
        let meta_path = dir.join(&id);
        if tokio::fs::symlink_metadata(&meta_path).await.is_ok() {
            log::debug!("{id} is already dumped");
            continue;
        }
        log::info!("... storing");
        if meta::is_active(&image) && !options.metaonly {
            log::info!("... image is active");
            // Nothing is written for an image without data: a later dump tries it again.
            let Some(data) = data_or_skip(client, &id).await? else { continue };
            let body = progress.track(&id, data.length, data.body);
            let written =
                write_data(&dir.join(format!("{id}.img")), ImageData { body, ..data }, options.chunksize).await;
            progress.finish();
            written?;
        }
        let json = serde_json::to_vec(&image).map_err(|e| Error::Invalid(format!("image {id}: {e}")))?;
        write_atomically(&meta_path, |path| async move { tokio::fs::write(&path, json).await }).await?;
        dumped.push(id);
    }
    Ok(dumped)
}

/// The image's bits, or `None` (with a warning) when the server answers 404 for them: the
/// image was deleted since the listing, or its data is gone. One such image does not end
/// the run.
async fn data_or_skip(client: &impl ImageService, id: &str) -> Result<Option<ImageData>, Error> {
    match client.image_data(id).await {
        Ok(data) => Ok(Some(data)),
        Err(Error::ServerError { status: 404, server, .. }) => {
            log::warn!("Skipping image {id}: {server} has no data for it (404)");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

async fn write_data(path: &Path, data: ImageData, chunksize: usize) -> Result<(), Error> {
    write_atomically(path, |part| async move {
        let file = tokio::fs::File::create(&part).await?;
        let mut out = tokio::io::BufWriter::with_capacity(chunksize, file);
        let mut body = data.body;
        while let Some(chunk) = body.next().await {
            out.write_all(&chunk?).await?;
        }
        out.flush().await?;
        out.into_inner().sync_all().await
    })
    .await
}

/// Runs `write` on `<path>.part`, then renames it to `path`; the partial file goes on failure.
async fn write_atomically<F, Fut>(path: &Path, write: F) -> Result<(), Error>
where
    F: FnOnce(PathBuf) -> Fut,
    Fut: Future<Output = std::io::Result<()>>,
{
    let mut part = path.as_os_str().to_owned();
    part.push(".part");
    let part = PathBuf::from(part);
    let result = match write(part.clone()).await {
        Ok(()) => tokio::fs::rename(&part, path).await,
        Err(e) => Err(e),
    };
    if result.is_err() {
        let _ = tokio::fs::remove_file(&part).await;
    }
    result.map_err(|e| Error::io(path, e))
}

/// `load`: each `<dir>/<uuid>` metadata file into the slave. An image the slave has (and has
/// not deleted) gets its metadata updated if it differs; one it lacks is uploaded from `<uuid>.img`, or skipped when
/// the dump has no data for it. Other files are ignored; unreadable metadata is skipped with a
/// warning. Returns the ids updated or uploaded.
pub(crate) async fn load(
    client: &impl ImageService,
    dir: &Path,
    options: &Options,
    progress: &Progress,
) -> Result<Vec<String>, Error> {
    let mut updated = Vec::new();
    for name in image_files(dir).await? {
        log::info!("Considering: {name}");
        let path = dir.join(&name);
        let mut image = match read_meta(&path, &name).await {
            Ok(image) => image,
            Err(reason) => {
                log::warn!("Skipping {}: {reason}", path.display());
                continue;
            }
        };
        meta::strip(&mut image, &options.dontreplicate, "saved");
        let image = meta::without_nulls(image);
        let mut head = client.image_meta(&name).await?;
        if meta::present(&head) {
            // The bits of an image are never changed once uploaded: metadata only. An image
            // deleted on the slave stays so (glance refuses to update it, and Glance's load
            // stopped there with an authentication error).
            log::debug!("Image {name} already present");
            if let Some(status @ ("deleted" | "pending_delete")) = meta::status(&head) {
                log::warn!("Image {name} is {status} on the slave: not updated");
                continue;
            }
            meta::strip(&mut head, &options.dontreplicate, "slave");
            if meta::dict_diff(&image, &head) {
                log::info!("... metadata has changed");
                let (headers, body) = client.add_image_meta(&update_for(&image, &head)).await?;
                meta::check_upload_response(&headers, &body)?;
                updated.push(name);
            }
            continue;
        }
        let data_path = dir.join(format!("{name}.img"));
        let file = match tokio::fs::File::open(&data_path).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                log::info!("... dump is missing image data, skipping");
                continue;
            }
            Err(e) => return Err(Error::io(data_path, e)),
        };
        let length = file.metadata().await.map_err(|e| Error::io(&data_path, e))?.len();
        let body = tokio_util::io::ReaderStream::with_capacity(file, options.chunksize).boxed();
        let data = ImageData { length: Some(length), body: progress.track(&name, Some(length), body) };
        if add_image(client, &image, data, &name, progress).await? {
            updated.push(name);
        }
    }
    Ok(updated)
}

/// Uploads an image to the slave: `true` when it was added, `false` when the slave has it
/// already (logged, as Glance does, and not an error).
async fn add_image(
    slave: &impl ImageService,
    image: &Meta,
    data: ImageData,
    id: &str,
    progress: &Progress,
) -> Result<bool, Error> {
    let added = slave.add_image(image, data).await;
    progress.finish();
    match added {
        Ok((headers, body)) => {
            meta::check_upload_response(&headers, &body)?;
            Ok(true)
        }
        Err(Error::ImageAlreadyPresent { .. }) => {
            log::error!("The image {id} {IMAGE_ALREADY_PRESENT}");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// The names in `dir` that are image ids (Glance's `is_uuid_like`), in order.
async fn image_files(dir: &Path) -> Result<Vec<String>, Error> {
    let mut entries = tokio::fs::read_dir(dir).await.map_err(|e| Error::io(dir, e))?;
    let mut names = Vec::new();
    while let Some(entry) = entries.next_entry().await.map_err(|e| Error::io(dir, e))? {
        match entry.file_name().into_string() {
            Ok(name) if uuid::Uuid::parse_str(&name).is_ok() => names.push(name),
            _ => log::debug!("Ignoring {}", entry.path().display()),
        }
    }
    names.sort();
    Ok(names)
}

/// A dump's metadata file: a JSON object whose id, if any, is the file's name.
async fn read_meta(path: &Path, name: &str) -> Result<Meta, String> {
    let text = tokio::fs::read(path).await.map_err(|e| format!("cannot read it: {e}"))?;
    let mut image = match serde_json::from_slice(&text) {
        Ok(serde_json::Value::Object(image)) => image,
        Ok(_) => return Err("its metadata is not a JSON object".into()),
        Err(e) => return Err(format!("corrupt metadata ({e})")),
    };
    match meta::id(&image) {
        Some(id) if id != name => Err(format!("its metadata is for image {id}")),
        Some(_) => Ok(image),
        None => {
            image.insert("id".into(), name.into());
            Ok(image)
        }
    }
}

/// The metadata update for the slave. glance-rs changes a status only through uploads and
/// deletes and refuses a PUT that would change it, so a status that differs is left out
/// (Glance 2014.1.5 sent it, and its API applied it without touching the data).
fn update_for(image: &Meta, head: &Meta) -> Meta {
    let mut update = image.clone();
    if let (Some(master), Some(slave)) = (meta::status(image), meta::status(head))
        && master != slave
    {
        log::warn!(
            "Image {} is {master} here but {slave} on the slave: its status is not replicated",
            meta::id(image).unwrap_or("?")
        );
        update.remove("status");
    }
    update
}

/// `livecopy`: every image of the master into the slave. An image the slave has active gets
/// its metadata updated if it differs; an active image it lacks is streamed from master to
/// slave (unless `metaonly`). Returns the ids updated or copied.
pub(crate) async fn livecopy(
    master: &impl ImageService,
    slave: &impl ImageService,
    options: &Options,
    progress: &Progress,
) -> Result<Vec<String>, Error> {
    let mut updated = Vec::new();
    let mut images = Listing::new(master);
    while let Some((id, mut image)) = images.next().await? {
        log::info!("Considering {id}");
        let active = meta::is_active(&image);
        meta::strip(&mut image, &options.dontreplicate, "master");
        let image = meta::without_nulls(image);
        let mut head = slave.image_meta(&id).await?;
        if meta::present(&head) {
            if meta::is_active(&head) {
                meta::strip(&mut head, &options.dontreplicate, "slave");
                if meta::dict_diff(&image, &head) {
                    log::info!("... metadata has changed");
                    let (headers, body) = slave.add_image_meta(&update_for(&image, &head)).await?;
                    meta::check_upload_response(&headers, &body)?;
                    updated.push(id);
                }
            }
        } else if active {
            log::info!("{id} is being synced");
            if options.metaonly {
                continue;
            }
            let Some(data) = data_or_skip(master, &id).await? else { continue };
            let body = progress.track(&id, data.length, data.body);
            if add_image(slave, &image, ImageData { body, ..data }, &id, progress).await? {
                updated.push(id);
            }
        }
    }
    Ok(updated)
}

/// How an image of the master differs on the slave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Difference {
    /// Active on the master, absent on the slave.
    Missing,
    /// On both, with some replicated field different.
    Diff,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Missing => "missing",
            Self::Diff => "diff",
        })
    }
}

/// `compare`: what the slave lacks or has otherwise. Fields compare as text, as headers carry
/// them (Glance compared a listing's ints and bools with header strings, so every image it
/// found differed).
pub(crate) async fn compare(
    master: &impl ImageService,
    slave: &impl ImageService,
    options: &Options,
) -> Result<BTreeMap<String, Difference>, Error> {
    let mut differences = BTreeMap::new();
    let mut images = Listing::new(master);
    while let Some((id, mut image)) = images.next().await? {
        let mut head = slave.image_meta(&id).await?;
        if meta::present(&head) {
            meta::strip(&mut image, &options.dontreplicate, "master");
            meta::strip(&mut head, &options.dontreplicate, "slave");
            let image = meta::without_nulls(image);
            let keys = meta::differing_keys(&image, &head);
            for key in &keys {
                log::info!(
                    "{id}: field {key} differs (source is {}, destination is {})",
                    meta::py_str(&image[*key]),
                    head.get(*key).map_or("undefined".into(), meta::py_str)
                );
            }
            if keys.is_empty() {
                log::debug!("{id} is identical");
            } else {
                differences.insert(id, Difference::Diff);
            }
        } else if meta::is_active(&image) {
            log::info!("{id}: entirely missing from the destination");
            differences.insert(id, Difference::Missing);
        }
    }
    Ok(differences)
}

#[cfg(test)]
mod tests {
    //! Glance's `ReplicationCommandsTestCase` and `ReplicationUtilitiesTestCase`, with its
    //! `FakeImageService`.

    use super::*;
    use bytes::Bytes;
    use futures_util::TryStreamExt;
    use serde_json::{Value, json};
    use std::cell::RefCell;

    fn fakeimages() -> Vec<Meta> {
        objects(json!([
            {"status": "active", "size": 100, "dontrepl": "banana", "id": "5dcddce0-cba5-4f18-9cf4-9853c7b207a6"},
            {"status": "deleted", "size": 200, "dontrepl": "banana", "id": "f4da1d2a-40e8-4710-b3aa-0222a4cc887b"},
            {"status": "active", "size": 300, "dontrepl": "banana", "id": "37ff82db-afca-48c7-ae0b-ddc7cf83e3db"},
        ]))
    }

    fn fakeimages_livemaster() -> Vec<Meta> {
        objects(json!([
            {"status": "active", "size": 100, "dontrepl": "banana", "id": "5dcddce0-cba5-4f18-9cf4-9853c7b207a6"},
            {"status": "deleted", "size": 200, "dontrepl": "banana", "id": "f4da1d2a-40e8-4710-b3aa-0222a4cc887b"},
            {"status": "deleted", "size": 300, "dontrepl": "banana", "id": "37ff82db-afca-48c7-ae0b-ddc7cf83e3db"},
            {"status": "active", "size": 100, "dontrepl": "banana", "id": "15648dd7-8dd0-401c-bd51-550e1ba9a088"},
        ]))
    }

    fn objects(list: Value) -> Vec<Meta> {
        match list {
            Value::Array(items) => items
                .into_iter()
                .map(|i| match i {
                    Value::Object(m) => m,
                    other => panic!("not an object: {other}"),
                })
                .collect(),
            other => panic!("not a list: {other}"),
        }
    }

    /// Glance's `FakeImageService`: the master's listing depends on the token, the slave always
    /// has `FAKEIMAGES`. Records the uploads and updates it is asked for.
    struct FakeImageService {
        livemaster: bool,
        calls: RefCell<Vec<String>>,
    }

    impl FakeImageService {
        fn new(token: &str) -> Self {
            Self { livemaster: token == "livemastertoken", calls: RefCell::default() }
        }
    }

    impl ImageService for FakeImageService {
        async fn image_page(&self, marker: Option<&str>) -> Result<Vec<Meta>, Error> {
            Ok(match (marker, self.livemaster) {
                (Some(_), _) => Vec::new(),
                (None, true) => fakeimages_livemaster(),
                (None, false) => fakeimages(),
            })
        }

        async fn image_meta(&self, id: &str) -> Result<Meta, Error> {
            Ok(fakeimages().into_iter().find(|i| meta::id(i) == Some(id)).unwrap_or_default())
        }

        async fn image_data(&self, _id: &str) -> Result<ImageData, Error> {
            Ok(ImageData {
                length: Some(4),
                body: futures_util::stream::once(async { Ok(Bytes::from_static(b"data")) }).boxed(),
            })
        }

        async fn add_image(&self, meta: &Meta, data: ImageData) -> Result<(Meta, Bytes), Error> {
            let bytes: Vec<Bytes> = data.body.try_collect().await.map_err(|e| Error::io("body", e))?;
            self.calls.borrow_mut().push(format!("add {} {}", meta::id(meta).unwrap_or("?"), bytes.concat().len()));
            Ok((status_200(), Bytes::new()))
        }

        async fn add_image_meta(&self, meta: &Meta) -> Result<(Meta, Bytes), Error> {
            self.calls.borrow_mut().push(format!("update {}", meta::id(meta).unwrap_or("?")));
            Ok((status_200(), Bytes::new()))
        }
    }

    fn status_200() -> Meta {
        let mut headers = Meta::new();
        headers.insert("status".into(), 200.into());
        headers
    }

    fn options() -> Options {
        Options { chunksize: 4096, dontreplicate: vec!["dontrepl".into(), "dontreplabsent".into()], metaonly: false }
    }

    #[tokio::test]
    async fn test_replication_size() {
        let (total, count) = size(&FakeImageService::new("slavetoken")).await.expect("size");
        assert_eq!(
            format!("Total size is {total} bytes across {count} images"),
            "Total size is 400 bytes across 2 images"
        );
    }

    #[tokio::test]
    async fn test_replication_dump() {
        let tempdir = tempfile::tempdir().expect("tempdir");
        let client = FakeImageService::new("mastertoken");
        let options = Options { metaonly: false, ..options() };
        dump(&client, tempdir.path(), &options, &Progress::hidden()).await.expect("dump");
        let check_meta = |id: &str| {
            let d: Value =
                serde_json::from_slice(&std::fs::read(tempdir.path().join(id)).expect("meta")).expect("json");
            assert!(d.get("status").is_some() && d.get("id").is_some() && d.get("size").is_some());
        };
        for active in ["5dcddce0-cba5-4f18-9cf4-9853c7b207a6", "37ff82db-afca-48c7-ae0b-ddc7cf83e3db"] {
            check_meta(active);
            assert_eq!(std::fs::read(tempdir.path().join(format!("{active}.img"))).expect("data"), b"data");
        }
        let inactive = "f4da1d2a-40e8-4710-b3aa-0222a4cc887b";
        check_meta(inactive);
        assert!(!tempdir.path().join(format!("{inactive}.img")).exists());
        // Nothing partial is left behind, and a second dump skips what is there.
        assert!(
            std::fs::read_dir(tempdir.path())
                .expect("dir")
                .all(|e| { !e.expect("entry").file_name().to_string_lossy().ends_with(".part") })
        );
        let again = dump(&client, tempdir.path(), &options, &Progress::hidden()).await.expect("dump");
        assert!(again.is_empty());
    }

    #[tokio::test]
    async fn dump_metaonly_writes_no_data() {
        let tempdir = tempfile::tempdir().expect("tempdir");
        let options = Options { metaonly: true, ..options() };
        let dumped = dump(&FakeImageService::new("mastertoken"), tempdir.path(), &options, &Progress::hidden())
            .await
            .expect("dump");
        assert_eq!(dumped.len(), 3);
        assert_eq!(std::fs::read_dir(tempdir.path()).expect("dir").count(), 3);
    }

    #[tokio::test]
    async fn test_replication_load() {
        let tempdir = tempfile::tempdir().expect("tempdir");
        let write_image = |img: &Meta, data: Option<&str>| {
            let imgfile = tempdir.path().join(meta::id(img).expect("id"));
            std::fs::write(&imgfile, Value::Object(img.clone()).to_string()).expect("meta");
            if let Some(data) = data {
                std::fs::write(format!("{}.img", imgfile.display()), data).expect("data");
            }
        };
        let mut cimg = Meta::new();
        for img in fakeimages() {
            cimg = img.clone();
            // We need at least one image where the stashed metadata on disk is newer than what
            // the fake has.
            if meta::id(&cimg) == Some("5dcddce0-cba5-4f18-9cf4-9853c7b207a6") {
                cimg.insert("extra".into(), "thisissomeextra".into());
            }
            // This is an image where the metadata change should be ignored.
            if meta::id(&cimg) == Some("f4da1d2a-40e8-4710-b3aa-0222a4cc887b") {
                cimg.insert("dontrepl".into(), "thisisyetmoreextra".into());
            }
            // The same on an active image (the deleted one above is never updated here): a
            // difference only in a field not replicated is no difference.
            if meta::id(&cimg) == Some("37ff82db-afca-48c7-ae0b-ddc7cf83e3db") {
                cimg.insert("dontrepl".into(), "changed where it is not replicated".into());
            }
            write_image(&cimg, Some("kjdhfkjshdfkjhsdkfd"));
        }
        // And an image which isn't on the destination at all.
        let new_id = uuid::Uuid::new_v4().to_string();
        cimg.insert("id".into(), new_id.clone().into());
        write_image(&cimg, Some("dskjfhskjhfkfdhksjdhf"));
        // And an image which isn't on the destination, but lacks image data.
        let new_id_missing_data = uuid::Uuid::new_v4().to_string();
        cimg.insert("id".into(), new_id_missing_data.clone().into());
        write_image(&cimg, None);
        // A file which should be ignored.
        std::fs::write(tempdir.path().join("kjdfhf"), "[1, 2, 3, 4, 5]").expect("badfile");
        // And, beyond Glance's test, metadata that is not JSON: skipped with a warning.
        std::fs::write(tempdir.path().join(uuid::Uuid::new_v4().to_string()), "{not json").expect("corrupt");

        let client = FakeImageService::new("slavetoken");
        let updated = load(&client, tempdir.path(), &options(), &Progress::hidden()).await.expect("load");
        assert!(updated.contains(&"5dcddce0-cba5-4f18-9cf4-9853c7b207a6".to_string()));
        assert!(!updated.contains(&"f4da1d2a-40e8-4710-b3aa-0222a4cc887b".to_string()));
        assert!(!updated.contains(&"37ff82db-afca-48c7-ae0b-ddc7cf83e3db".to_string()));
        assert!(updated.contains(&new_id));
        assert!(!updated.contains(&new_id_missing_data));
        let calls = client.calls.borrow();
        assert!(calls.contains(&"update 5dcddce0-cba5-4f18-9cf4-9853c7b207a6".to_string()));
        assert!(calls.contains(&format!("add {new_id} 21")));
        assert_eq!(calls.len(), 2, "{calls:?}");
    }

    #[tokio::test]
    async fn test_replication_livecopy() {
        let master = FakeImageService::new("livemastertoken");
        let slave = FakeImageService::new("liveslavetoken");
        let updated = livecopy(&master, &slave, &options(), &Progress::hidden()).await.expect("livecopy");
        assert_eq!(updated.len(), 2);
        assert_eq!(
            *slave.calls.borrow(),
            ["update 37ff82db-afca-48c7-ae0b-ddc7cf83e3db", "add 15648dd7-8dd0-401c-bd51-550e1ba9a088 4"]
        );
        let metaonly = Options { metaonly: true, ..options() };
        let slave = FakeImageService::new("liveslavetoken");
        let updated = livecopy(&master, &slave, &metaonly, &Progress::hidden()).await.expect("livecopy");
        assert_eq!(updated, ["37ff82db-afca-48c7-ae0b-ddc7cf83e3db"]);
    }

    #[tokio::test]
    async fn test_replication_compare() {
        let master = FakeImageService::new("livemastertoken");
        let slave = FakeImageService::new("liveslavetoken");
        let differences = compare(&master, &slave, &options()).await.expect("compare");
        assert_eq!(differences.get("15648dd7-8dd0-401c-bd51-550e1ba9a088"), Some(&Difference::Missing));
        assert_eq!(differences.get("37ff82db-afca-48c7-ae0b-ddc7cf83e3db"), Some(&Difference::Diff));
        assert_eq!(differences.len(), 2, "{differences:?}");
    }

    /// A 404 for one image's data (deleted since the listing) skips it; the rest goes on.
    #[tokio::test]
    async fn images_without_data_are_skipped() {
        struct Gone(FakeImageService);
        impl ImageService for Gone {
            async fn image_page(&self, marker: Option<&str>) -> Result<Vec<Meta>, Error> {
                self.0.image_page(marker).await
            }
            async fn image_meta(&self, id: &str) -> Result<Meta, Error> {
                self.0.image_meta(id).await
            }
            async fn image_data(&self, id: &str) -> Result<ImageData, Error> {
                match id {
                    "5dcddce0-cba5-4f18-9cf4-9853c7b207a6" | "15648dd7-8dd0-401c-bd51-550e1ba9a088" => {
                        Err(Error::from_status("master:9292", 404, "gone".into()))
                    }
                    _ => self.0.image_data(id).await,
                }
            }
            async fn add_image(&self, meta: &Meta, data: ImageData) -> Result<(Meta, Bytes), Error> {
                self.0.add_image(meta, data).await
            }
            async fn add_image_meta(&self, meta: &Meta) -> Result<(Meta, Bytes), Error> {
                self.0.add_image_meta(meta).await
            }
        }
        let tempdir = tempfile::tempdir().expect("tempdir");
        let master = Gone(FakeImageService::new("mastertoken"));
        let dumped = dump(&master, tempdir.path(), &options(), &Progress::hidden()).await.expect("dump");
        assert!(!dumped.contains(&"5dcddce0-cba5-4f18-9cf4-9853c7b207a6".to_string()), "{dumped:?}");
        assert!(dumped.contains(&"37ff82db-afca-48c7-ae0b-ddc7cf83e3db".to_string()), "{dumped:?}");
        assert!(!tempdir.path().join("5dcddce0-cba5-4f18-9cf4-9853c7b207a6").exists(), "a later dump retries it");

        let master = Gone(FakeImageService::new("livemastertoken"));
        let slave = FakeImageService::new("liveslavetoken");
        let updated = livecopy(&master, &slave, &options(), &Progress::hidden()).await.expect("livecopy");
        assert_eq!(updated, ["37ff82db-afca-48c7-ae0b-ddc7cf83e3db"]);
    }

    #[tokio::test]
    async fn test_image_present() {
        let client = FakeImageService::new("noauth");
        assert!(meta::present(&client.image_meta("5dcddce0-cba5-4f18-9cf4-9853c7b207a6").await.expect("meta")));
        let absent = uuid::Uuid::new_v4().to_string();
        assert!(!meta::present(&client.image_meta(&absent).await.expect("meta")));
    }

    /// A server that ignores the marker must not keep the listing going forever.
    #[tokio::test]
    async fn a_listing_that_does_not_advance_stops() {
        struct Stuck;
        impl ImageService for Stuck {
            async fn image_page(&self, _: Option<&str>) -> Result<Vec<Meta>, Error> {
                Ok(fakeimages())
            }
            async fn image_meta(&self, _: &str) -> Result<Meta, Error> {
                Ok(Meta::new())
            }
            async fn image_data(&self, _: &str) -> Result<ImageData, Error> {
                Err(Error::Invalid("no data".into()))
            }
            async fn add_image(&self, _: &Meta, _: ImageData) -> Result<(Meta, Bytes), Error> {
                Err(Error::Invalid("read-only".into()))
            }
            async fn add_image_meta(&self, _: &Meta) -> Result<(Meta, Bytes), Error> {
                Err(Error::Invalid("read-only".into()))
            }
        }
        assert!(matches!(size(&Stuck).await, Err(Error::Invalid(_))));
    }
}

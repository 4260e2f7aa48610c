//! The documents API's lifecycle and sharing: versions and their downloads (with `Range`), deleting forever
//! (the bytes go through the queue, and only once no version shares them), zips, download tokens, share links,
//! tab tokens, and image descriptions made by the importer.

mod api_support;

use std::io::{Cursor, Read};
use std::time::{Duration, Instant};

use api_support::json_of;
use ferry_testkit::{TestEnv, Workers};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Docs<'a> {
    env: &'a TestEnv,
    company: String,
}

impl<'a> Docs<'a> {
    async fn new(env: &'a TestEnv) -> Docs<'a> {
        Docs { env, company: env.tenant_id.0.to_string() }
    }

    fn url(&self, path: &str) -> String {
        self.env.url(&format!("/internal/services/documents/v1/companies/{}{path}", self.company))
    }

    fn owner(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.env.http.request(method, self.url(path)).bearer_auth(&self.env.api_key)
    }

    fn anonymous(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.env.http.request(method, self.url(path))
    }

    async fn directory(&self, name: &str, parent: &str) -> String {
        let created = json_of(
            self.owner(Method::POST, "/item")
                .json(&json!({ "item": { "name": name, "parent_id": parent, "is_directory": true } }))
                .send()
                .await
                .expect("create directory"),
            StatusCode::OK,
        )
        .await;
        created["id"].as_str().expect("id").to_owned()
    }

    async fn file(&self, name: &str, parent: &str, mime: &str, bytes: Vec<u8>) -> Value {
        let form = reqwest::multipart::Form::new()
            .text("item", json!({ "name": name, "parent_id": parent }).to_string())
            .part(
                "file",
                reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()).mime_str(mime).expect("mime"),
            );
        json_of(self.owner(Method::POST, "/item").multipart(form).send().await.expect("create file"), StatusCode::OK)
            .await
    }

    async fn bytes(&self, request: reqwest::RequestBuilder, status: StatusCode) -> Vec<u8> {
        let response = request.send().await.expect("download");
        assert_eq!(response.status(), status);
        response.bytes().await.expect("body").to_vec()
    }
}

/// Waits until `key` is (or is not) in the blob store.
async fn wait_for_blob(env: &TestEnv, key: &str, present: bool) {
    let store = env.blob_store().expect("store");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = store.head(key).await.expect("head").is_some();
        if found == present {
            return;
        }
        assert!(Instant::now() < deadline, "{key} still {}", if present { "missing" } else { "present" });
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn blob_key(env: &TestEnv, version: &Value) -> String {
    format!("tenants/{}/files/{}", env.tenant_id.0, version["file_id"].as_str().expect("file_id"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_download_and_deleting_forever_removes_only_unshared_bytes() {
    let env = TestEnv::start_with(Workers { importer: true, exporter: false }, &[]).await.expect("env");
    let docs = Docs::new(&env).await;
    let file = docs.file("report.txt", "root", "text/plain", b"first version".to_vec()).await;
    let id = file["id"].as_str().expect("id").to_owned();
    let first = file["last_version_cache"].clone();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"second version, longer".to_vec())
            .file_name("report.txt")
            .mime_str("text/plain")
            .expect("mime"),
    );
    let second = json_of(
        docs.owner(Method::POST, &format!("/item/{id}/version")).multipart(form).send().await.expect("v2"),
        StatusCode::OK,
    )
    .await;

    // The latest by default, any version by id, a range of it, and a UTF-8 file name.
    let latest = docs.bytes(docs.owner(Method::GET, &format!("/item/{id}/download")), StatusCode::OK).await;
    assert_eq!(latest, b"second version, longer");
    let first_id = first["id"].as_str().expect("version id");
    let old = docs
        .bytes(
            docs.owner(Method::GET, &format!("/item/{id}/download")).query(&[("version_id", first_id)]),
            StatusCode::OK,
        )
        .await;
    assert_eq!(old, b"first version");
    let range = docs
        .owner(Method::GET, &format!("/item/{id}/download"))
        .query(&[("version_id", first_id)])
        .header("Range", "bytes=6-12");
    let response = range.send().await.expect("range");
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert!(response.headers()["content-disposition"].to_str().expect("header").contains("UTF-8''report.txt"));
    assert_eq!(response.bytes().await.expect("body").as_ref(), b"version");

    // A JSON version of another file names the first version's bytes: they are shared.
    let other = docs.file("copy.txt", "root", "text/plain", b"other".to_vec()).await;
    let other_id = other["id"].as_str().expect("id").to_owned();
    let shared = json_of(
        docs.owner(Method::POST, &format!("/item/{other_id}/version"))
            .json(&json!({ "file_id": first["file_id"], "file_metadata": { "name": "copy.txt" } }))
            .send()
            .await
            .expect("json version"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(shared["file_id"], first["file_id"]);
    let unknown = docs
        .owner(Method::POST, &format!("/item/{other_id}/version"))
        .json(&json!({ "file_id": uuid::Uuid::new_v4().to_string() }))
        .send()
        .await
        .expect("unknown content");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    // Trash, then delete forever: the row goes at once, the unshared bytes shortly after, the shared ones stay.
    let trashed =
        json_of(docs.owner(Method::DELETE, &format!("/item/{id}")).send().await.expect("trash"), StatusCode::OK).await;
    assert_eq!(trashed["trashed"]["in_trash"], true);
    let trash = json_of(docs.owner(Method::GET, "/item/trash").send().await.expect("trash list"), StatusCode::OK).await;
    assert_eq!(trash["children"][0]["id"], id.as_str());
    let deleted =
        json_of(docs.owner(Method::DELETE, &format!("/item/{id}")).send().await.expect("forever"), StatusCode::OK)
            .await;
    assert_eq!(deleted["deleted"], json!({ "directories": 0, "files": 1 }));
    let gone = docs.owner(Method::GET, &format!("/item/{id}")).send().await.expect("get");
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    wait_for_blob(&env, &blob_key(&env, &second), false).await;
    // The removal of the first version's bytes ran too (the outbox is drained in order) and kept them.
    let still = docs.bytes(docs.owner(Method::GET, &format!("/item/{other_id}/download")), StatusCode::OK).await;
    assert_eq!(still, b"first version");
    wait_for_blob(&env, &blob_key(&env, &first), true).await;

    // Emptying the trash deletes the last user of those bytes: now they go.
    json_of(docs.owner(Method::DELETE, &format!("/item/{other_id}")).send().await.expect("trash"), StatusCode::OK)
        .await;
    let emptied = json_of(docs.owner(Method::DELETE, "/item/trash").send().await.expect("empty"), StatusCode::OK).await;
    assert_eq!(emptied["deleted"]["files"], 1);
    wait_for_blob(&env, &blob_key(&env, &first), false).await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zips_tokens_share_links_and_tabs_grant_exactly_what_they_name() {
    let env = TestEnv::start_with(Workers::NONE, &[("items.download_token_ttl_secs", "2")]).await.expect("env");
    let docs = Docs::new(&env).await;
    // A three-level tree with an empty directory, a trashed file and two names that collide.
    let top = docs.directory("Project", "root").await;
    let middle = docs.directory("Drafts", &top).await;
    let bottom = docs.directory("Old", &middle).await;
    docs.directory("Empty", &top).await;
    let text = "compressible line\n".repeat(2000);
    docs.file("notes.txt", &top, "text/plain", text.clone().into_bytes()).await;
    docs.file("notes.txt", &top, "text/plain", b"second notes".to_vec()).await;
    let photo: Vec<u8> = (0..40_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8).collect();
    docs.file("photo.jpg", &bottom, "image/jpeg", photo.clone()).await;
    let binned = docs.file("binned.txt", &middle, "text/plain", b"gone".to_vec()).await;
    json_of(
        docs.owner(Method::DELETE, &format!("/item/{}", binned["id"].as_str().expect("id")))
            .send()
            .await
            .expect("trash"),
        StatusCode::OK,
    )
    .await;

    let zip_bytes = docs.bytes(docs.owner(Method::GET, &format!("/item/{top}/download")), StatusCode::OK).await;
    let mut zip = zip::ZipArchive::new(Cursor::new(zip_bytes)).expect("a valid zip");
    let mut names: Vec<String> = zip.file_names().map(|n| n.expect("name").into_owned()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "Project/",
            "Project/Drafts/",
            "Project/Drafts/Old/",
            "Project/Drafts/Old/photo.jpg",
            "Project/Empty/",
            "Project/notes (1).txt",
            "Project/notes.txt"
        ]
    );
    let mut entry = zip.by_name("Project/Drafts/Old/photo.jpg").expect("photo");
    assert_eq!(entry.compression(), zip::CompressionMethod::Stored, "already compressed");
    let mut read = Vec::new();
    entry.read_to_end(&mut read).expect("read");
    assert_eq!(read, photo);
    drop(entry);
    let mut entry = zip.by_name("Project/notes.txt").expect("notes");
    assert_eq!(entry.compression(), zip::CompressionMethod::Deflated);
    let mut read = String::new();
    entry.read_to_string(&mut read).expect("read");
    assert!(read == text || read == "second notes");
    drop(entry);

    // A download token: those items only, that version only, this company only, and not after it expires.
    let photo_item =
        json_of(docs.owner(Method::GET, &format!("/item/{bottom}")).send().await.expect("dir"), StatusCode::OK).await;
    let photo_id = photo_item["children"][0]["id"].as_str().expect("photo id").to_owned();
    let token = json_of(
        docs.owner(Method::GET, "/item/download/token")
            .query(&[("items", photo_id.as_str())])
            .send()
            .await
            .expect("token"),
        StatusCode::OK,
    )
    .await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let got = docs
        .bytes(
            docs.anonymous(Method::GET, &format!("/item/{photo_id}/download")).query(&[("token", &token)]),
            StatusCode::OK,
        )
        .await;
    assert_eq!(got, photo);
    let other = docs.anonymous(Method::GET, &format!("/item/{top}/download")).query(&[("token", &token)]);
    assert_eq!(other.send().await.expect("other").status(), StatusCode::FORBIDDEN);
    let version = docs
        .anonymous(Method::GET, &format!("/item/{photo_id}/download"))
        .query(&[("token", token.as_str()), ("version_id", &uuid::Uuid::new_v4().to_string())]);
    assert_eq!(version.send().await.expect("version").status(), StatusCode::FORBIDDEN);
    let listing = docs.anonymous(Method::GET, &format!("/item/{photo_id}")).query(&[("token", &token)]);
    assert_eq!(listing.send().await.expect("get").status(), StatusCode::FORBIDDEN, "tokens only download");
    let mut forged = token.clone();
    forged.pop();
    let forged = docs.anonymous(Method::GET, &format!("/item/{photo_id}/download")).query(&[("token", &forged)]);
    assert_eq!(forged.send().await.expect("forged").status(), StatusCode::UNAUTHORIZED);
    let other_key = env.second_tenant_key("tenant-b").await.expect("tenant b");
    let me_b = json_of(env.api_as(&other_key, Method::GET, "/me").send().await.expect("me"), StatusCode::OK).await;
    let elsewhere = env
        .http
        .get(env.url(&format!(
            "/internal/services/documents/v1/companies/{}/item/{photo_id}/download",
            me_b["tenant"]["id"].as_str().expect("id")
        )))
        .query(&[("token", &token)]);
    assert_eq!(elsewhere.send().await.expect("tenant b").status(), StatusCode::FORBIDDEN);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let expired = docs.anonymous(Method::GET, &format!("/item/{photo_id}/download")).query(&[("token", &token)]);
    assert_eq!(expired.send().await.expect("expired").status(), StatusCode::UNAUTHORIZED);

    // A read share link on Drafts: reads below it, cannot write, cannot reach Project; a password when set.
    let shared = json_of(
        docs.owner(Method::POST, &format!("/item/{middle}"))
            .json(&json!({ "access_info": { "public": { "level": "read" } } }))
            .send()
            .await
            .expect("share"),
        StatusCode::OK,
    )
    .await;
    let link = shared["access_info"]["public"]["token"].as_str().expect("link token").to_owned();
    assert!(link.len() >= 24);
    let read = docs.anonymous(Method::GET, &format!("/item/{bottom}")).query(&[("public_token", &link)]);
    assert_eq!(json_of(read.send().await.expect("read"), StatusCode::OK).await["item"]["name"], "Old");
    let up = docs.anonymous(Method::GET, &format!("/item/{top}")).query(&[("public_token", &link)]);
    assert_eq!(up.send().await.expect("above").status(), StatusCode::UNAUTHORIZED);
    let write = docs
        .anonymous(Method::POST, "/item")
        .query(&[("public_token", &link)])
        .json(&json!({ "item": { "name": "new", "parent_id": bottom, "is_directory": true } }));
    assert_eq!(write.send().await.expect("write").status(), StatusCode::FORBIDDEN);
    let remove = docs.anonymous(Method::DELETE, &format!("/item/{bottom}")).query(&[("public_token", &link)]);
    assert_eq!(remove.send().await.expect("delete").status(), StatusCode::FORBIDDEN);
    // Write with a password.
    let shared = json_of(
        docs.owner(Method::POST, &format!("/item/{middle}"))
            .json(&json!({ "access_info": { "public": { "level": "write", "password": "s3cret" } } }))
            .send()
            .await
            .expect("share"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(shared["access_info"]["public"]["password_protected"], true);
    let link2 = shared["access_info"]["public"]["token"].as_str().expect("token").to_owned();
    let old_link = docs.anonymous(Method::GET, &format!("/item/{bottom}")).query(&[("public_token", &link)]);
    assert_eq!(old_link.send().await.expect("old").status(), StatusCode::UNAUTHORIZED, "a new link replaces the old");
    let no_password = docs.anonymous(Method::GET, &format!("/item/{bottom}")).query(&[("public_token", &link2)]);
    assert_eq!(no_password.send().await.expect("no password").status(), StatusCode::UNAUTHORIZED);
    let created = docs
        .anonymous(Method::POST, "/item")
        .query(&[("public_token", link2.as_str()), ("public_password", "s3cret")])
        .json(&json!({ "item": { "name": "via link", "parent_id": bottom, "is_directory": true } }));
    json_of(created.send().await.expect("create via link"), StatusCode::OK).await;
    json_of(
        docs.owner(Method::POST, &format!("/item/{middle}"))
            .json(&json!({ "access_info": { "public": { "level": "none" } } }))
            .send()
            .await
            .expect("revoke"),
        StatusCode::OK,
    )
    .await;
    let revoked = docs
        .anonymous(Method::GET, &format!("/item/{bottom}"))
        .query(&[("public_token", link2.as_str()), ("public_password", "s3cret")]);
    assert_eq!(revoked.send().await.expect("revoked").status(), StatusCode::UNAUTHORIZED);

    // A read tab on Old: its token reads the subtree only.
    let tab = json_of(
        docs.owner(Method::POST, "/tabs/tab-1")
            .json(&json!({ "company_id": docs.company, "tab_id": "tab-1", "channel_id": "general", "item_id": bottom, "level": "read" }))
            .send()
            .await
            .expect("tab"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(tab["level"], "read");
    let stored = json_of(docs.owner(Method::GET, "/tabs/tab-1").send().await.expect("get tab"), StatusCode::OK).await;
    assert_eq!(stored["item_id"], bottom.as_str());
    let tab_token = tab["token"].as_str().expect("tab token");
    let inside = docs.anonymous(Method::GET, &format!("/item/{photo_id}")).query(&[("twake_tab_token", tab_token)]);
    json_of(inside.send().await.expect("inside"), StatusCode::OK).await;
    let outside = docs.anonymous(Method::GET, &format!("/item/{middle}")).query(&[("twake_tab_token", tab_token)]);
    assert_eq!(outside.send().await.expect("outside").status(), StatusCode::FORBIDDEN);
    let tab_write =
        docs.anonymous(Method::DELETE, &format!("/item/{photo_id}")).query(&[("twake_tab_token", tab_token)]);
    assert_eq!(tab_write.send().await.expect("tab write").status(), StatusCode::FORBIDDEN);
    env.shutdown().await;
}

/// A JPEG with EXIF (camera and capture time) made in the test: an encoded JPEG with an APP1 segment added.
fn jpeg_with_exif(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
    let mut encoded = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut encoded, 85).encode_image(&image).expect("encode");
    // TIFF (little endian): IFD0 with Make, Model and an Exif IFD pointer; the Exif IFD with DateTimeOriginal.
    let make = b"FerryCam\0";
    let model = b"Model 7\0";
    let taken = b"2024:05:17 14:03:22\0";
    let mut tiff: Vec<u8> = b"II*\0".to_vec();
    tiff.extend_from_slice(&8u32.to_le_bytes());
    let ifd0_entries = 3u16;
    let ifd0_size = 2 + 12 * u32::from(ifd0_entries) + 4;
    let data_start = 8 + ifd0_size;
    let make_at = data_start;
    let model_at = make_at + make.len() as u32;
    let exif_ifd_at = model_at + model.len() as u32;
    let taken_at = exif_ifd_at + 2 + 12 + 4;
    tiff.extend_from_slice(&ifd0_entries.to_le_bytes());
    let entry = |tag: u16, kind: u16, count: u32, value: u32| {
        let mut e = Vec::new();
        e.extend_from_slice(&tag.to_le_bytes());
        e.extend_from_slice(&kind.to_le_bytes());
        e.extend_from_slice(&count.to_le_bytes());
        e.extend_from_slice(&value.to_le_bytes());
        e
    };
    tiff.extend(entry(0x010f, 2, make.len() as u32, make_at));
    tiff.extend(entry(0x0110, 2, model.len() as u32, model_at));
    tiff.extend(entry(0x8769, 4, 1, exif_ifd_at));
    tiff.extend_from_slice(&0u32.to_le_bytes());
    tiff.extend_from_slice(make);
    tiff.extend_from_slice(model);
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend(entry(0x9003, 2, taken.len() as u32, taken_at));
    tiff.extend_from_slice(&0u32.to_le_bytes());
    tiff.extend_from_slice(taken);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = encoded[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&encoded[2..]);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_jpeg_gets_its_metadata_and_thumbnails_and_a_hostile_image_a_reason() {
    let env = TestEnv::start().await.expect("env");
    let docs = Docs::new(&env).await;
    env.emulator.state().ensure_user("photos@example.com", "Photos");
    let connection = env.connect_drive("photos@example.com").await.expect("connect");
    let connection_id = connection["connection"]["id"].as_str().expect("connection id").to_owned();
    let jpeg = jpeg_with_exif(1600, 1200);
    let drive_id =
        env.emulator.state().create_file("photos@example.com", None, "holiday.jpg", "image/jpeg", jpeg.into());
    let import = json_of(
        env.api(Method::POST, "/cloud-storage/import")
            .json(&json!({ "connection_id": connection_id, "files": [{ "id": drive_id, "name": "holiday.jpg" }] }))
            .send()
            .await
            .expect("import"),
        StatusCode::OK,
    )
    .await;
    let job = env.wait_for_job(import["job_id"].as_str().expect("job id"), Duration::from_secs(60)).await.expect("job");
    assert_eq!(job["status"], "completed", "{job}");
    let image_id = import["image_ids"][0].as_str().expect("image id").to_owned();

    let deadline = Instant::now() + Duration::from_secs(30);
    let file = loop {
        let file =
            json_of(env.api(Method::GET, &format!("/files/{image_id}")).send().await.expect("file"), StatusCode::OK)
                .await;
        if !file["metadata"].is_null() || !file["metadata_error"].is_null() {
            break file;
        }
        assert!(Instant::now() < deadline, "no description: {file}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(file["metadata_error"], Value::Null, "{file}");
    assert_eq!(file["metadata"]["width"], 1600);
    assert_eq!(file["metadata"]["height"], 1200);
    assert_eq!(file["metadata"]["camera_make"], "FerryCam");
    assert_eq!(file["metadata"]["camera_model"], "Model 7");
    assert_eq!(file["metadata"]["taken_at"], "2024-05-17T14:03:22");

    let item =
        json_of(docs.owner(Method::GET, &format!("/item/{image_id}")).send().await.expect("item"), StatusCode::OK)
            .await;
    let thumbnails =
        item["item"]["last_version_cache"]["file_metadata"]["thumbnails"].as_array().expect("thumbnails").clone();
    assert_eq!(thumbnails.len(), 2, "{item}");
    for (thumb, (width, height)) in thumbnails.iter().zip([(256, 192), (1024, 768)]) {
        assert_eq!((thumb["width"].as_u64(), thumb["height"].as_u64()), (Some(width), Some(height)));
        let bytes = docs
            .bytes(env.http.get(env.url(thumb["url"].as_str().expect("url"))).bearer_auth(&env.api_key), StatusCode::OK)
            .await;
        let decoded = image::load_from_memory(&bytes).expect("a thumbnail decodes");
        assert_eq!((decoded.width(), decoded.height()), (width as u32, height as u32));
    }

    // A PNG header that declares 100000 x 100000 pixels: refused with a reason, and the worker keeps working.
    let mut bomb = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    bomb.extend_from_slice(&13u32.to_be_bytes());
    bomb.extend_from_slice(&ihdr);
    bomb.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    let hostile = docs.file("bomb.png", "root", "image/png", bomb).await;
    let hostile_id = hostile["id"].as_str().expect("id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let file =
            json_of(env.api(Method::GET, &format!("/files/{hostile_id}")).send().await.expect("file"), StatusCode::OK)
                .await;
        if let Some(reason) = file["metadata_error"].as_str() {
            assert!(reason.starts_with("dimensions_too_large"), "{reason}");
            break;
        }
        assert!(Instant::now() < deadline, "no refusal: {file}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    env.shutdown().await;
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[tokio::test]
async fn an_item_shared_at_creation_opens_by_its_link_and_malformed_credentials_never_fall_back() {
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("env");
    let docs = Docs::new(&env).await;
    let shared = json_of(
        docs.owner(Method::POST, "/item")
            .json(&json!({ "item": {
                "name": "Handover", "is_directory": true, "parent_id": "root",
                "access_info": { "public": { "level": "read", "password": "open sesame" } }
            } }))
            .send()
            .await
            .expect("create shared"),
        StatusCode::OK,
    )
    .await;
    let id = shared["id"].as_str().expect("id").to_owned();
    assert_eq!(shared["access_info"]["public"]["level"], "read");
    assert_eq!(shared["access_info"]["public"]["password_protected"], true);
    let token = shared["access_info"]["public"]["token"].as_str().expect("a generated token").to_owned();
    assert_eq!(token.len(), 32);

    // The link opens the directory with its password, and only with it.
    let opened = json_of(
        docs.anonymous(Method::GET, &format!("/item/{id}"))
            .query(&[("public_token", token.as_str()), ("public_password", "open sesame")])
            .send()
            .await
            .expect("open by link"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(opened["item"]["name"], "Handover");
    let status = |request: reqwest::RequestBuilder| async move { request.send().await.expect("request").status() };
    assert_eq!(
        status(docs.anonymous(Method::GET, &format!("/item/{id}")).query(&[("public_token", token.as_str())])).await,
        StatusCode::UNAUTHORIZED,
        "the link needs its password"
    );

    // Malformed credentials are refused even next to a valid API key: never a silent fallback to the key.
    for query in ["token=", "public_password=x", "token=a.b&public_token=abc", "public_token=abc&twake_tab_token=a.b"] {
        let url = format!("{}?{query}", docs.url(&format!("/item/{id}")));
        let response = env.http.get(url).bearer_auth(&env.api_key).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{query}");
    }
    let url = format!("{}?token=a.b&token=c.d", docs.url(&format!("/item/{id}")));
    let response = env.http.get(url).bearer_auth(&env.api_key).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "a credential given twice");

    // `/item/trash` is its own path: GET lists the trash, DELETE empties it, anything else is a 405 with `Allow`.
    let listed = json_of(docs.owner(Method::GET, "/item/trash").send().await.expect("trash"), StatusCode::OK).await;
    assert_eq!(listed["item"]["id"], "trash");
    let response = docs.owner(Method::POST, "/item/trash").json(&json!({"name": "x"})).send().await.expect("post");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(response.headers().get("allow").is_some_and(|allow| allow.to_str().unwrap_or("").contains("DELETE")));

    // A share on creation needs the owner: a write link may create below, but not share what it creates.
    let writable = json_of(
        docs.owner(Method::POST, &format!("/item/{id}"))
            .json(&json!({ "access_info": { "public": { "level": "write" } } }))
            .send()
            .await
            .expect("write link"),
        StatusCode::OK,
    )
    .await;
    let write_token = writable["access_info"]["public"]["token"].as_str().expect("token").to_owned();
    let body = json!({ "item": {
        "name": "Inner", "is_directory": true, "parent_id": id,
        "access_info": { "public": { "level": "read" } }
    } });
    let refused = docs
        .anonymous(Method::POST, "/item")
        .query(&[("public_token", write_token.as_str())])
        .json(&body)
        .send()
        .await
        .expect("share by link");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    env.shutdown().await;
}

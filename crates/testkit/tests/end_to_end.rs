//! The walking skeleton, end to end: OAuth against the Drive emulator, browse, import through the queue and
//! the importer, download through the files API, export through the exporter, and tenant isolation.

use std::time::Duration;

use bytes::Bytes;
use ferry_testkit::{Storage, TestEnv, Workers};
use md5::{Digest, Md5};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use ferry_testkit::drive_emulator::seed::filler as test_bytes;

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

async fn json_of(response: reqwest::Response, expected: StatusCode) -> Value {
    let status = response.status();
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(status, expected, "unexpected status; body: {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connect_browse_import_download_export_and_isolate_tenants_on_the_filesystem() {
    connect_browse_import_download_export_and_isolate_tenants(Storage::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connect_browse_import_download_export_and_isolate_tenants_on_s3() {
    connect_browse_import_download_export_and_isolate_tenants(Storage::S3).await;
}

async fn connect_browse_import_download_export_and_isolate_tenants(storage: Storage) {
    let env = TestEnv::start_on(storage, Workers::ALL, &[]).await.expect("test environment");
    let drive = env.emulator.state();
    let email = "alice@example.com";
    drive.ensure_user(email, "Alice Example");
    let photos = drive.create_folder(email, None, "Photos");
    let contents = [
        ("sunrise.jpg", "image/jpeg", test_bytes(300 * 1024, 1)),
        ("diagram.png", "image/png", test_bytes(1024 * 1024 + 17, 2)),
        ("archive.bin", "application/octet-stream", test_bytes(21 * 1024 * 1024 + 5, 3)),
    ];
    let drive_ids: Vec<String> = contents
        .iter()
        .map(|(name, mime, bytes)| drive.create_file(email, Some(&photos), name, mime, bytes.clone()))
        .collect();

    // Connect through OAuth; connecting the same account again updates the same connection.
    let first = env.connect_drive(email).await.expect("first connect");
    assert_eq!(first["is_new"], true);
    let connection = &first["connection"];
    assert_eq!(connection["provider"], "google_drive");
    assert_eq!(connection["provider_email"], email);
    assert_eq!(connection["provider_display_name"], "Alice Example");
    assert_eq!(connection["is_active"], true);
    let connection_id = connection["id"].as_str().expect("connection id").to_owned();
    let again = env.connect_drive(email).await.expect("second connect");
    assert_eq!(again["is_new"], false);
    assert_eq!(again["connection"]["id"], connection_id.as_str());

    let listed =
        json_of(env.api(Method::GET, "/cloud-storage/connections").send().await.expect("list"), StatusCode::OK).await;
    assert_eq!(listed["total_count"], 1);
    assert_eq!(listed["items"][0]["id"], connection_id.as_str());
    assert_eq!(listed["connections"][0]["id"], connection_id.as_str());
    assert_eq!(listed["has_more"], false);

    // Browse the root, then the folder.
    let root = json_of(
        env.api(Method::GET, &format!("/cloud-storage/connections/{connection_id}/browse"))
            .send()
            .await
            .expect("browse"),
        StatusCode::OK,
    )
    .await;
    let folder =
        root["files"].as_array().expect("files").iter().find(|f| f["name"] == "Photos").expect("Photos listed").clone();
    assert_eq!(folder["is_folder"], true);
    assert_eq!(folder["is_importable"], false);
    assert_eq!(root["current_folder_id"], Value::Null);
    assert_eq!(root["provider"], "google_drive");
    let inside = json_of(
        env.api(
            Method::GET,
            &format!("/cloud-storage/connections/{connection_id}/browse?folder_id={photos}&page_size=2"),
        )
        .send()
        .await
        .expect("browse folder"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(inside["files"].as_array().map(Vec::len), Some(2), "page_size is honoured");
    assert!(inside["next_page_token"].is_string());
    assert_eq!(inside["current_folder_id"], photos.as_str());
    assert_eq!(
        inside["breadcrumbs"].as_array().and_then(|b| b.last()).map(|b| b["name"].clone()),
        Some(json!("Photos"))
    );
    assert!(inside["files"].as_array().expect("files").iter().all(|f| f["is_importable"] == true));

    // Import all three, including one over 20 MiB.
    let files: Vec<Value> = contents
        .iter()
        .zip(&drive_ids)
        .map(|((name, mime, _), id)| json!({ "id": id, "name": name, "mime_type": mime }))
        .collect();
    let import = json_of(
        env.api(Method::POST, "/cloud-storage/import")
            .json(&json!({ "connection_id": connection_id, "files": files, "tags": ["imported", "drive"], "auto_describe": true }))
            .send()
            .await
            .expect("import"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(import["status"], "pending");
    assert_eq!(import["total_files"], 3);
    assert_eq!(import["is_async"], true);
    assert_eq!(import["message"], "Importing 3 files");
    let job_id = import["job_id"].as_str().expect("job id").to_owned();
    assert!(job_id.starts_with("job_"));
    let image_ids: Vec<String> =
        import["image_ids"].as_array().expect("image ids").iter().map(|v| v.as_str().expect("id").to_owned()).collect();
    assert_eq!(image_ids.len(), 3);
    assert!(image_ids.iter().all(|id| id.starts_with("img_")));

    let job = env.wait_for_job(&job_id, Duration::from_secs(120)).await.expect("import finishes");
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["type"], "import");
    assert_eq!(
        (job["total_files"].clone(), job["completed_files"].clone(), job["failed_files"].clone()),
        (json!(3), json!(3), json!(0))
    );
    assert_eq!(job["connection_id"], connection_id.as_str());
    assert!(job["completed_at"].is_string());

    // Every file downloads with identical bytes, and its record says ready with size and checksums.
    for (image_id, (name, mime, bytes)) in image_ids.iter().zip(&contents) {
        let record =
            json_of(env.api(Method::GET, &format!("/files/{image_id}")).send().await.expect("file"), StatusCode::OK)
                .await;
        assert_eq!(record["status"], "ready");
        assert_eq!(record["name"], *name);
        assert_eq!(record["mime_type"], *mime);
        assert_eq!(record["size_bytes"], bytes.len());
        assert_eq!(record["tags"], json!(["imported", "drive"]));
        let download = env.api(Method::GET, &format!("/files/{image_id}/content")).send().await.expect("download");
        assert_eq!(download.status(), StatusCode::OK);
        assert_eq!(download.headers()[reqwest::header::CONTENT_TYPE], *mime);
        let body = download.bytes().await.expect("bytes");
        assert_eq!(body.len(), bytes.len(), "{name} length");
        assert!(body == *bytes, "{name} bytes differ");
    }

    // The three blobs are in the configured store (on S3: the bucket), under the tenant's prefix.
    let blobs = env
        .blob_store()
        .expect("blob store")
        .list_keys(&format!("tenants/{}", env.tenant_id.0))
        .await
        .expect("list blobs");
    assert_eq!(blobs.len(), 3, "{blobs:?}");

    // Export two of them into a new Drive folder.
    let export = json_of(
        env.api(Method::POST, "/cloud-storage/export")
            .json(&json!({ "connection_id": connection_id, "image_ids": [image_ids[0], image_ids[2]], "folder_name": "Ferry Export" }))
            .send()
            .await
            .expect("export"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(export["job_status"], "pending");
    assert_eq!(export["is_async"], true);
    assert_eq!(export["cloud_file_ids"], Value::Null);
    let export_job = env
        .wait_for_job(export["job_id"].as_str().expect("export job id"), Duration::from_secs(120))
        .await
        .expect("export finishes");
    assert_eq!(export_job["status"], "completed", "{export_job}");
    assert_eq!(export_job["type"], "export");
    assert_eq!(export_job["completed_files"], 2);

    let root = json_of(
        env.api(Method::GET, &format!("/cloud-storage/connections/{connection_id}/browse"))
            .send()
            .await
            .expect("browse"),
        StatusCode::OK,
    )
    .await;
    let export_folders: Vec<&Value> =
        root["files"].as_array().expect("files").iter().filter(|f| f["name"] == "Ferry Export").collect();
    assert_eq!(export_folders.len(), 1, "exactly one export folder: {root}");
    let exported_folder = export_folders[0]["id"].as_str().expect("folder id");
    let mut exported = drive.children(exported_folder);
    exported.sort_by(|a, b| a.name.cmp(&b.name));
    let found: Vec<(String, Option<String>)> = exported.iter().map(|f| (f.name.clone(), f.md5.clone())).collect();
    assert_eq!(
        found,
        vec![
            ("archive.bin".to_owned(), Some(md5_hex(&contents[2].2))),
            ("sunrise.jpg".to_owned(), Some(md5_hex(&contents[0].2))),
        ]
    );

    // Another tenant sees none of it.
    let other = env.second_tenant_key("tenant-b").await.expect("second key");
    for path in [
        format!("/cloud-storage/jobs/{job_id}"),
        format!("/files/{}", image_ids[0]),
        format!("/files/{}/content", image_ids[0]),
        format!("/cloud-storage/connections/{connection_id}/browse"),
    ] {
        let response = env.api_as(&other, Method::GET, &path).send().await.expect("request");
        let body = json_of(response, StatusCode::NOT_FOUND).await;
        assert_eq!(body["error"]["code"], "NOT_FOUND", "{path}");
    }
    let theirs = json_of(
        env.api_as(&other, Method::GET, "/cloud-storage/connections").send().await.expect("list"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(theirs["total_count"], 0);
    let delete = env
        .api_as(&other, Method::DELETE, &format!("/cloud-storage/connections/{connection_id}"))
        .send()
        .await
        .expect("delete");
    assert_eq!(delete.status(), StatusCode::NOT_FOUND);
    let export_foreign = env
        .api_as(&other, Method::POST, "/cloud-storage/import")
        .json(&json!({ "connection_id": connection_id, "files": [{ "id": drive_ids[0], "name": "x" }] }))
        .send()
        .await
        .expect("import");
    assert_eq!(export_foreign.status(), StatusCode::NOT_FOUND);

    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_importer_refreshes_an_expired_token_and_disconnect_revokes_it() {
    let env = TestEnv::start().await.expect("test environment");
    let drive = env.emulator.state();
    let email = "bob@example.com";
    drive.ensure_user(email, "Bob");
    let file_id = drive.create_file(email, None, "notes.txt", "text/plain", Bytes::from_static(b"hello ferry"));
    let connected = env.connect_drive(email).await.expect("connect");
    let connection_id = connected["connection"]["id"].as_str().expect("id").to_owned();
    let stored_before = env
        .database
        .db
        .connection_tokens(ferry_core::ConnectionId::parse(&connection_id).expect("uuid"))
        .await
        .expect("tokens")
        .expect("row");

    drive.expire_access_tokens();
    let import = json_of(
        env.api(Method::POST, "/cloud-storage/import")
            .json(&json!({ "connection_id": connection_id, "files": [{ "id": file_id, "name": "notes.txt" }] }))
            .send()
            .await
            .expect("import"),
        StatusCode::OK,
    )
    .await;
    let job =
        env.wait_for_job(import["job_id"].as_str().expect("job"), Duration::from_secs(60)).await.expect("job ends");
    assert_eq!(job["status"], "completed", "{job}");
    let stored_after = env
        .database
        .db
        .connection_tokens(ferry_core::ConnectionId::parse(&connection_id).expect("uuid"))
        .await
        .expect("tokens")
        .expect("row");
    assert_ne!(stored_before.access_token_sealed, stored_after.access_token_sealed, "the refreshed token is stored");
    assert!(stored_after.access_token_sealed.as_deref().is_some_and(|t| t.starts_with("v1.")), "stored sealed");
    assert!(!stored_after.access_token_sealed.as_deref().unwrap_or_default().contains("ya29"));

    let image_id = import["image_ids"][0].as_str().expect("image").to_owned();
    let body = env
        .api(Method::GET, &format!("/files/{image_id}/content"))
        .send()
        .await
        .expect("download")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(&body[..], b"hello ferry");

    let disconnected = json_of(
        env.api(Method::DELETE, &format!("/cloud-storage/connections/{connection_id}")).send().await.expect("delete"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(disconnected, json!({ "success": true, "message": "Connection disconnected successfully" }));
    assert_eq!(drive.request_count("/revoke"), 1, "the grant is revoked at the provider");
    let tokens = env
        .database
        .db
        .connection_tokens(ferry_core::ConnectionId::parse(&connection_id).expect("uuid"))
        .await
        .expect("tokens")
        .expect("row kept for its jobs");
    assert!(tokens.access_token_sealed.is_none() && tokens.refresh_token_sealed.is_none(), "tokens forgotten");
    let listed =
        json_of(env.api(Method::GET, "/cloud-storage/connections").send().await.expect("list"), StatusCode::OK).await;
    assert_eq!(listed["total_count"], 0);
    let browse = env
        .api(Method::GET, &format!("/cloud-storage/connections/{connection_id}/browse"))
        .send()
        .await
        .expect("browse");
    assert_eq!(browse.status(), StatusCode::NOT_FOUND);
    env.shutdown().await;
}

//! Contract of the files and folders API: list filters and paging, get, Range downloads, update, delete,
//! folders (delete only when empty), and an import's destination folder.

mod api_support;

use api_support::{assert_snapshot, json_of};
use ferry_testkit::{TestEnv, Workers};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn upload(env: &TestEnv, name: &str, bytes: Vec<u8>, tags: &str) -> Value {
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()).mime_str("text/plain").expect("mime"),
        )
        .text("tags", tags.to_owned());
    json_of(env.api(Method::POST, "/files").multipart(form).send().await.expect("upload"), StatusCode::CREATED).await
}

/// Regular files under `dir`, recursively.
fn count_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.filter_map(Result::ok).map(|e| if e.path().is_dir() { count_files(&e.path()) } else { 1 }).sum()
        })
        .unwrap_or(0)
}

async fn call(env: &TestEnv, method: Method, path: &str, body: Option<Value>, expected: StatusCode) -> Value {
    let mut request = env.api(method, path);
    if let Some(body) = body {
        request = request.json(&body);
    }
    json_of(request.send().await.expect("send"), expected).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_and_folders_are_managed_through_the_api() {
    let env = TestEnv::start_with(Workers { importer: true, exporter: false }, &[]).await.expect("env");
    let content: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let first = upload(&env, "a.txt", content.clone(), "red, blue").await;
    assert_snapshot(
        &first,
        &[],
        json!({
            "id": "[img]",
            "name": "a.txt",
            "mime_type": "text/plain",
            "size_bytes": 1000,
            "sha256": first["sha256"],
            "md5": first["md5"],
            "status": "ready",
            "tags": ["red", "blue"],
            "folder_id": null,
            "source": null,
            "provider_metadata": null,
            "error": null,
            "created_at": "[time]",
            "updated_at": "[time]",
            "metadata": null,
            "metadata_error": null,
        }),
    );
    let second = upload(&env, "b.txt", b"second".to_vec(), "red").await;
    let third = upload(&env, "c.txt", b"third".to_vec(), "").await;
    let (a, b, c) = (
        first["id"].as_str().unwrap_or_default(),
        second["id"].as_str().unwrap_or_default(),
        third["id"].as_str().unwrap_or_default(),
    );

    // Folders: create, nest, list, rename.
    let folder = call(&env, Method::POST, "/folders", Some(json!({ "name": "Reports" })), StatusCode::CREATED).await;
    assert_snapshot(
        &folder,
        &[],
        json!({ "id": "[uuid]", "name": "Reports", "parent_id": null, "created_at": "[time]", "updated_at": "[time]" }),
    );
    let folder_id = folder["id"].as_str().expect("id").to_owned();
    let child = call(
        &env,
        Method::POST,
        "/folders",
        Some(json!({ "name": "2026", "parent_id": folder_id })),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(child["parent_id"], folder_id.as_str());
    let top = call(&env, Method::GET, "/folders", None, StatusCode::OK).await;
    assert_eq!(top["total_count"], 1);
    let inside = call(&env, Method::GET, &format!("/folders?parent_id={folder_id}"), None, StatusCode::OK).await;
    assert_eq!(inside["items"][0]["name"], "2026");
    let renamed = call(
        &env,
        Method::PATCH,
        &format!("/folders/{folder_id}"),
        Some(json!({ "name": "Old reports" })),
        StatusCode::OK,
    )
    .await;
    assert_eq!(renamed["name"], "Old reports");
    for (body, field) in [
        (json!({}), "name"),
        (json!({ "name": "a/b" }), "name"),
        (json!({ "name": "x", "parent_id": "nope" }), "parent_id"),
    ] {
        let error = call(&env, Method::POST, "/folders", Some(body), StatusCode::BAD_REQUEST).await;
        assert_eq!(error["error"]["details"]["field"], field);
    }

    // Upload straight into a folder; an unknown folder is a 404 and stores nothing.
    let blobs = count_files(std::path::Path::new(&env.settings.storage.root));
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(b"in folder".to_vec()).file_name("f.txt"))
        .text("folder_id", folder_id.clone());
    let placed =
        json_of(env.api(Method::POST, "/files").multipart(form).send().await.expect("upload"), StatusCode::CREATED)
            .await;
    assert_eq!(placed["folder_id"], folder_id.as_str());
    call(&env, Method::DELETE, &format!("/files/{}", placed["id"].as_str().expect("id")), None, StatusCode::OK).await;
    // The deleted file's bytes go through the queue: wait for them, so the count below sees only the refused upload.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while count_files(std::path::Path::new(&env.settings.storage.root)) != blobs {
        assert!(std::time::Instant::now() < deadline, "the deleted file's blob was never removed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(b"nowhere".to_vec()).file_name("n.txt"))
        .text("folder_id", uuid::Uuid::new_v4().to_string());
    json_of(env.api(Method::POST, "/files").multipart(form).send().await.expect("upload"), StatusCode::NOT_FOUND).await;
    assert_eq!(count_files(std::path::Path::new(&env.settings.storage.root)), blobs, "no orphan blob");

    // Update: name, tags, folder; then filters.
    let moved = call(
        &env,
        Method::PATCH,
        &format!("/files/{a}"),
        Some(json!({ "name": "renamed.txt", "tags": ["green", "green", "red"], "folder_id": folder_id })),
        StatusCode::OK,
    )
    .await;
    assert_eq!(moved["name"], "renamed.txt");
    assert_eq!(moved["tags"], json!(["green", "red"]));
    assert_eq!(moved["folder_id"], folder_id.as_str());
    // Older clients' `collection_id` moves too.
    call(&env, Method::PATCH, &format!("/files/{b}"), Some(json!({ "collection_id": folder_id })), StatusCode::OK)
        .await;
    let in_folder = call(&env, Method::GET, &format!("/files?folder_id={folder_id}"), None, StatusCode::OK).await;
    assert_eq!(in_folder["total_count"], 2);
    let at_root = call(&env, Method::GET, "/files?folder_id=root", None, StatusCode::OK).await;
    assert_eq!(at_root["items"][0]["id"], c);
    let red = call(&env, Method::GET, "/files?tag=red", None, StatusCode::OK).await;
    assert_eq!(red["total_count"], 2);
    let green_red = call(&env, Method::GET, "/files?tags=green,red", None, StatusCode::OK).await;
    assert_eq!(green_red["total_count"], 1);
    assert_eq!(green_red["items"][0]["id"], a);
    let page = call(&env, Method::GET, "/files?limit=2", None, StatusCode::OK).await;
    assert_eq!((page["items"].as_array().map(Vec::len), page["has_more"].clone()), (Some(2), json!(true)));
    let page = call(&env, Method::GET, "/files?limit=2&offset=2", None, StatusCode::OK).await;
    assert_eq!((page["items"].as_array().map(Vec::len), page["has_more"].clone()), (Some(1), json!(false)));
    let out =
        call(&env, Method::PATCH, &format!("/files/{b}"), Some(json!({ "folder_id": null })), StatusCode::OK).await;
    assert_eq!(out["folder_id"], Value::Null);
    for (body, status, code) in [
        (json!({}), StatusCode::BAD_REQUEST, "VALIDATION_ERROR"),
        (json!({ "name": "" }), StatusCode::BAD_REQUEST, "VALIDATION_ERROR"),
        (json!({ "folder_id": "bad" }), StatusCode::BAD_REQUEST, "VALIDATION_ERROR"),
        (json!({ "folder_id": uuid::Uuid::new_v4().to_string() }), StatusCode::NOT_FOUND, "NOT_FOUND"),
        (json!({ "colour": "red" }), StatusCode::BAD_REQUEST, "VALIDATION_ERROR"),
    ] {
        let error = call(&env, Method::PATCH, &format!("/files/{c}"), Some(body.clone()), status).await;
        assert_eq!(error["error"]["code"], code, "{body}");
    }
    for query in ["folder_id=bad", "status=gone", "limit=0"] {
        call(&env, Method::GET, &format!("/files?{query}"), None, StatusCode::BAD_REQUEST).await;
    }

    // Range downloads.
    let download = |range: Option<&str>| {
        let mut request = env.api(Method::GET, &format!("/files/{a}/content"));
        if let Some(range) = range {
            request = request.header("Range", range);
        }
        request.send()
    };
    let full = download(None).await.expect("full");
    assert_eq!(full.status(), StatusCode::OK);
    assert_eq!(full.headers()["accept-ranges"], "bytes");
    assert_eq!(full.bytes().await.expect("bytes").as_ref(), content.as_slice());
    for (range, expected_range, slice) in [
        ("bytes=0-99", "bytes 0-99/1000", &content[0..100]),
        ("bytes=900-", "bytes 900-999/1000", &content[900..]),
        ("bytes=-10", "bytes 990-999/1000", &content[990..]),
        ("bytes=500-5000", "bytes 500-999/1000", &content[500..]),
    ] {
        let response = download(Some(range)).await.expect("range");
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(response.headers()["content-range"], expected_range);
        assert_eq!(response.bytes().await.expect("bytes").as_ref(), slice, "{range}");
    }
    let outside = download(Some("bytes=1000-")).await.expect("416");
    assert_eq!(outside.headers()["content-range"], "bytes */1000");
    let error = json_of(outside, StatusCode::RANGE_NOT_SATISFIABLE).await;
    assert_eq!(error["error"]["code"], "RANGE_NOT_SATISFIABLE");
    assert_eq!(download(Some("items=0-1")).await.expect("ignored").status(), StatusCode::OK);

    // A folder with something inside cannot be deleted.
    let busy = call(&env, Method::DELETE, &format!("/folders/{folder_id}"), None, StatusCode::CONFLICT).await;
    assert_snapshot(
        &busy,
        &[],
        json!({ "error": {
            "code": "CONFLICT",
            "message": "The folder is not empty; move or delete what is inside first",
            "details": { "file_count": 1, "folder_count": 1 },
        } }),
    );

    // Delete a file: its row and its bytes go.
    let blobs_before = count_files(std::path::Path::new(&env.settings.storage.root));
    let deleted = call(&env, Method::DELETE, &format!("/files/{a}"), None, StatusCode::OK).await;
    assert_eq!(deleted, json!({ "success": true, "message": "File deleted" }));
    call(&env, Method::GET, &format!("/files/{a}"), None, StatusCode::NOT_FOUND).await;
    call(&env, Method::DELETE, &format!("/files/{a}"), None, StatusCode::NOT_FOUND).await;
    // The bytes go after the commit, through the queue, when the importer handles the removal task.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while count_files(std::path::Path::new(&env.settings.storage.root)) != blobs_before - 1 {
        assert!(std::time::Instant::now() < deadline, "the blob is removed");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    call(&env, Method::DELETE, &format!("/folders/{}", child["id"].as_str().expect("id")), None, StatusCode::OK).await;
    let gone = call(&env, Method::DELETE, &format!("/folders/{folder_id}"), None, StatusCode::OK).await;
    assert_eq!(gone, json!({ "success": true, "message": "Folder deleted" }));
    call(&env, Method::GET, &format!("/folders/{folder_id}"), None, StatusCode::NOT_FOUND).await;

    // Another tenant sees nothing.
    let other = env.second_tenant_key("files-other").await.expect("key");
    let response = env.api_as(&other, Method::GET, &format!("/files/{b}")).send().await.expect("foreign");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = env.api_as(&other, Method::DELETE, &format!("/files/{b}")).send().await.expect("foreign");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_destination_must_be_an_existing_folder_and_files_in_use_are_kept() {
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("env");
    let email = "dest@example.com";
    env.emulator.state().ensure_user(email, "Dest");
    let connection =
        env.connect_drive(email).await.expect("connect")["connection"]["id"].as_str().expect("id").to_owned();
    let drive_file = env.emulator.state().create_file(email, None, "d.txt", "text/plain", "d".into());
    let files = json!([{ "id": drive_file, "name": "d.txt" }]);

    let missing = uuid::Uuid::new_v4().to_string();
    let error = call(
        &env,
        Method::POST,
        "/cloud-storage/import",
        Some(json!({ "connection_id": connection, "files": files, "folder_id": missing })),
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(error["error"]["details"]["field"], "folder_id");
    // Another tenant's folder is just as missing.
    let other = env.second_tenant_key("dest-other").await.expect("key");
    let theirs: Value = env
        .api_as(&other, Method::POST, "/folders")
        .json(&json!({ "name": "Theirs" }))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    call(
        &env,
        Method::POST,
        "/cloud-storage/import",
        Some(json!({ "connection_id": connection, "files": files, "folder_id": theirs["id"] })),
        StatusCode::NOT_FOUND,
    )
    .await;

    // Older clients: `collection_id` and `auto_describe`, with the seed's async answer.
    let folder = call(&env, Method::POST, "/folders", Some(json!({ "name": "Imports" })), StatusCode::CREATED).await;
    let created = call(
        &env,
        Method::POST,
        "/cloud-storage/import",
        Some(json!({ "connection_id": connection, "files": files, "collection_id": folder["id"], "auto_describe": true, "tags": ["drive"] })),
        StatusCode::OK,
    )
    .await;
    assert_snapshot(
        &created,
        &[],
        json!({
            "image_ids": ["[img]"],
            "job_id": "[job]",
            "status": "pending",
            "total_files": 1,
            "is_async": true,
            "message": "Importing 1 file",
        }),
    );
    let image_id = created["image_ids"][0].as_str().expect("img");
    let placeholder = call(&env, Method::GET, &format!("/files/{image_id}"), None, StatusCode::OK).await;
    assert_eq!(placeholder["folder_id"], folder["id"]);
    assert_eq!(placeholder["tags"], json!(["drive"]));
    assert_eq!(placeholder["status"], "pending");

    // The placeholder is still being filled: deleting it, or its folder, is a conflict.
    let busy = call(&env, Method::DELETE, &format!("/files/{image_id}"), None, StatusCode::CONFLICT).await;
    assert_eq!(busy["error"]["details"]["job_ids"], json!([created["job_id"]]));
    call(&env, Method::DELETE, &format!("/folders/{}", folder["id"].as_str().expect("id")), None, StatusCode::CONFLICT)
        .await;
    // Once the job is cancelled the placeholder can go.
    call(
        &env,
        Method::POST,
        &format!("/cloud-storage/jobs/{}/cancel", created["job_id"].as_str().expect("job")),
        None,
        StatusCode::OK,
    )
    .await;
    call(&env, Method::DELETE, &format!("/files/{image_id}"), None, StatusCode::OK).await;
    let items = call(
        &env,
        Method::GET,
        &format!("/cloud-storage/jobs/{}/items", created["job_id"].as_str().expect("job")),
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(items["items"][0]["image_id"], image_id, "the job keeps its history");
    env.shutdown().await;
}

/// The response checker every contract test goes through refuses what the document does not allow: a wrong type,
/// a missing required field, a property the schema does not have, an id that breaks its pattern, and a status the
/// path does not document.
#[test]
fn the_response_checker_refuses_bodies_and_statuses_the_document_does_not_allow() {
    use api_support::contract::check_response;
    let file = json!({
        "id": "img_0190f0d2c1e07a3b8c9d0e1f2a3b4c5d", "name": "a.txt", "mime_type": "text/plain", "size_bytes": 3,
        "sha256": null, "md5": null, "status": "ready", "tags": [], "folder_id": null, "source": null,
        "provider_metadata": null, "error": null,
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"
    });
    let path = "/api/v2/files/img_0190f0d2c1e07a3b8c9d0e1f2a3b4c5d";
    check_response(path, 200, &file);
    let refused = |body: Value, status: u16| std::panic::catch_unwind(|| check_response(path, status, &body)).is_err();
    let mut wrong_type = file.clone();
    wrong_type["size_bytes"] = json!("3");
    assert!(refused(wrong_type, 200), "a string where an integer belongs");
    let mut missing = file.clone();
    missing.as_object_mut().expect("object").remove("name");
    assert!(refused(missing, 200), "a required field missing");
    let mut extra = file.clone();
    extra["secret"] = json!("x");
    assert!(refused(extra, 200), "an undocumented property");
    let mut bad_id = file.clone();
    bad_id["id"] = json!("file-1");
    assert!(refused(bad_id, 200), "an id that breaks its pattern");
    let mut bad_time = file.clone();
    bad_time["created_at"] = json!("yesterday");
    assert!(refused(bad_time, 200), "a date-time that is not RFC 3339");
    assert!(refused(file, 418), "a status the path does not document");
}

/// The upload form is closed: a part it does not have (a misspelt `tag`, say) or a second `name` is a 400 that
/// names the part, and the bytes already streamed for `file` are not left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_with_an_unknown_or_repeated_part_is_refused_and_leaves_no_blob() {
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("env");
    let root = std::path::Path::new(&env.settings.storage.root).to_owned();
    let blobs = count_files(&root);
    let file_part = || reqwest::multipart::Part::bytes(vec![7u8; 4096]).file_name("a.bin");
    let forms = [
        (reqwest::multipart::Form::new().part("file", file_part()).text("tag", "invoices"), "parts"),
        (reqwest::multipart::Form::new().part("file", file_part()).text("name", "a").text("name", "b"), "name"),
        (reqwest::multipart::Form::new().part("file", file_part()).text("name", "a\u{0}b"), "name"),
    ];
    for (form, field) in forms {
        let response = env.api(Method::POST, "/files").multipart(form).send().await.expect("upload");
        let error = json_of(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(error["error"]["details"]["field"], field, "{error}");
    }
    assert_eq!(count_files(&root), blobs, "no orphan blob");
    let listed = call(&env, Method::GET, "/files", None, StatusCode::OK).await;
    assert_eq!(listed["total_count"], 0);
    env.shutdown().await;
}

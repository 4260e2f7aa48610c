//! The jobs API beyond polling one job: listing with filters, per-file items, cancel (and that workers skip
//! what was cancelled), the server-sent event stream, and `cloud_file_ids` on finished exports.

mod api_support;

use std::time::Duration;

use api_support::assert_snapshot;

use ferry_core::ItemId;
use ferry_db::jobs::ClaimOutcome;
use ferry_testkit::{TestEnv, Workers};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use api_support::json_of;

async fn connect(env: &TestEnv, email: &str) -> String {
    env.emulator.state().ensure_user(email, "Jobs Tester");
    env.connect_drive(email).await.expect("connect")["connection"]["id"].as_str().expect("id").to_owned()
}

async fn import(env: &TestEnv, connection: &str, drive_ids: &[String]) -> Value {
    let files: Vec<Value> =
        drive_ids.iter().enumerate().map(|(i, id)| json!({ "id": id, "name": format!("f{i}.bin") })).collect();
    json_of(
        env.api(Method::POST, "/cloud-storage/import")
            .json(&json!({ "connection_id": connection, "files": files }))
            .send()
            .await
            .expect("import"),
        StatusCode::OK,
    )
    .await
}

async fn get(env: &TestEnv, path: &str) -> Value {
    json_of(env.api(Method::GET, path).send().await.expect("get"), StatusCode::OK).await
}

/// Reads a server-sent event stream to its end and returns `(event, data)` pairs.
async fn read_events(env: &TestEnv, job_id: &str) -> Vec<(String, Value)> {
    let response = env.api(Method::GET, &format!("/cloud-storage/jobs/{job_id}/events")).send().await.expect("events");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("text/event-stream"));
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    let read = async {
        while let Some(chunk) = stream.next().await {
            buffer.push_str(std::str::from_utf8(&chunk.expect("chunk")).expect("utf-8"));
        }
    };
    tokio::time::timeout(Duration::from_secs(120), read).await.expect("the stream ends when the job ends");
    for frame in buffer.split("\n\n").filter(|f| !f.trim().is_empty() && !f.starts_with(':')) {
        let mut event = String::new();
        let mut data = Value::Null;
        for line in frame.lines() {
            if let Some(rest) = line.strip_prefix("event: ") {
                event = rest.to_owned();
            } else if let Some(rest) = line.strip_prefix("data: ") {
                data = serde_json::from_str(rest).expect("data is JSON");
            }
        }
        events.push((event, data));
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_pending_items_and_workers_skip_them() {
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("env");
    let email = "cancel@example.com";
    let connection = connect(&env, email).await;
    let drive = env.emulator.state();
    let ids: Vec<String> = (0..3)
        .map(|i| drive.create_file(email, None, &format!("c{i}.bin"), "application/octet-stream", vec![i; 10].into()))
        .collect();

    // Whole job pending: everything is cancelled and the job is `cancelled`.
    let created = import(&env, &connection, &ids).await;
    let job_id = created["job_id"].as_str().expect("job id").to_owned();
    let cancelled = json_of(
        env.api(Method::POST, &format!("/cloud-storage/jobs/{job_id}/cancel")).send().await.expect("cancel"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(cancelled["cancelled_files"], 3);
    assert_eq!(cancelled["running_files"], 0);
    assert_eq!(cancelled["job"]["status"], "cancelled");
    assert!(cancelled["job"]["completed_at"].is_string());
    let items = get(&env, &format!("/cloud-storage/jobs/{job_id}/items")).await;
    assert_eq!(items["total_count"], 3);
    for item in items["items"].as_array().expect("items") {
        assert_eq!(item["status"], "cancelled");
        assert_eq!(item["error_code"], "cancelled");
    }
    let placeholder = get(&env, &format!("/files/{}", created["image_ids"][0].as_str().expect("img"))).await;
    assert_eq!(placeholder["status"], "failed");
    assert_eq!(placeholder["error"]["code"], "cancelled");
    // A worker receiving the (already published) command finds nothing to do.
    let stored = env
        .database
        .db
        .list_job_items(env.tenant_id, ferry_core::JobId::parse(&job_id).expect("job id"))
        .await
        .expect("items");
    for item in &stored {
        let outcome = env.database.db.claim_item(ItemId(item.id), "test-worker", Duration::from_secs(60)).await;
        assert!(matches!(outcome, Ok(ClaimOutcome::AlreadyFinished)), "{outcome:?}");
    }
    // Cancelling again is a conflict; an unknown job and a malformed id are both a 404.
    let again = env.api(Method::POST, &format!("/cloud-storage/jobs/{job_id}/cancel")).send().await.expect("again");
    let again = json_of(again, StatusCode::CONFLICT).await;
    assert_eq!(again["error"]["code"], "CONFLICT");
    assert_eq!(again["error"]["details"]["status"], "cancelled");
    let unknown = format!("job_{}", uuid::Uuid::new_v4().simple());
    let missing = env.api(Method::POST, &format!("/cloud-storage/jobs/{unknown}/cancel")).send().await.expect("404");
    assert_eq!(json_of(missing, StatusCode::NOT_FOUND).await["error"]["code"], "NOT_FOUND");
    let bad = env.api(Method::POST, "/cloud-storage/jobs/nope/cancel").send().await.expect("404");
    assert_eq!(json_of(bad, StatusCode::NOT_FOUND).await["error"]["code"], "NOT_FOUND");

    // One item already running: it is left to finish, the others are cancelled, the job stays in progress
    // until the running one settles, then follows the counters.
    let created = import(&env, &connection, &ids).await;
    let job_id = created["job_id"].as_str().expect("job id").to_owned();
    let stored = env
        .database
        .db
        .list_job_items(env.tenant_id, ferry_core::JobId::parse(&job_id).expect("job id"))
        .await
        .expect("items");
    let running = ItemId(stored[1].id);
    let claimed = env.database.db.claim_item(running, "test-worker", Duration::from_secs(600)).await.expect("claim");
    assert!(matches!(claimed, ClaimOutcome::Claimed(_)));
    let cancelled = json_of(
        env.api(Method::POST, &format!("/cloud-storage/jobs/{job_id}/cancel")).send().await.expect("cancel"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(cancelled["cancelled_files"], 2);
    assert_eq!(cancelled["running_files"], 1);
    assert_eq!(cancelled["job"]["status"], "in_progress");
    let running_items = get(&env, &format!("/cloud-storage/jobs/{job_id}/items?status=in_progress")).await;
    assert_eq!(running_items["total_count"], 1);
    assert_eq!(running_items["items"][0]["position"], 1);
    env.database.db.fail_item_unclaimed(running, None, "drive_not_found", "gone").await.expect("fail");
    let job = get(&env, &format!("/cloud-storage/jobs/{job_id}")).await;
    assert_eq!(job["job"]["status"], "cancelled");
    assert_eq!(job["job"]["failed_files"], 1);
    let failed = get(&env, &format!("/cloud-storage/jobs/{job_id}/items?status=failed")).await;
    assert_eq!(failed["items"][0]["error_code"], "drive_not_found");
    assert_eq!(failed["items"][0]["error_message"], "gone");

    // The event stream of a finished job is one `end` event.
    let events = read_events(&env, &job_id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "end");
    assert_eq!(events[0].1["job"]["status"], "cancelled");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_listed_with_status_and_type_filters() {
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("env");
    let email = "lister@example.com";
    let connection = connect(&env, email).await;
    let drive = env.emulator.state();
    let id = drive.create_file(email, None, "l.bin", "application/octet-stream", vec![7; 10].into());
    let first = import(&env, &connection, std::slice::from_ref(&id)).await;
    let second = import(&env, &connection, std::slice::from_ref(&id)).await;
    let upload =
        reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(vec![1u8; 64]).file_name("u.bin"));
    let uploaded =
        json_of(env.api(Method::POST, "/files").multipart(upload).send().await.expect("upload"), StatusCode::CREATED)
            .await;
    let export = json_of(
        env.api(Method::POST, "/cloud-storage/export")
            .json(&json!({ "connection_id": connection, "image_ids": [uploaded["id"]], "folder_name": "Out" }))
            .send()
            .await
            .expect("export"),
        StatusCode::OK,
    )
    .await;
    env.api(Method::POST, &format!("/cloud-storage/jobs/{}/cancel", first["job_id"].as_str().expect("id")))
        .send()
        .await
        .expect("cancel");

    let all = get(&env, "/cloud-storage/jobs").await;
    assert_eq!(all["total_count"], 3);
    assert_eq!(all["limit"], 20);
    assert_eq!(all["has_more"], false);
    // Newest first.
    assert_eq!(all["items"][0]["job_id"], export["job_id"]);
    assert_eq!(all["items"][0]["type"], "export");
    assert_eq!(all["items"][0]["cloud_file_ids"], Value::Null, "not finished yet");

    let exports = get(&env, "/cloud-storage/jobs?type=export").await;
    assert_eq!(exports["total_count"], 1);
    let imports = get(&env, "/cloud-storage/jobs?type=import&status=pending").await;
    assert_eq!(imports["total_count"], 1);
    assert_eq!(imports["items"][0]["job_id"], second["job_id"]);
    let either = get(&env, "/cloud-storage/jobs?status=pending,cancelled").await;
    assert_eq!(either["total_count"], 3);
    assert!(get(&env, "/cloud-storage/jobs?status=in_progress").await["items"].as_array().expect("items").is_empty());
    let paged = get(&env, "/cloud-storage/jobs?limit=2&offset=0").await;
    assert_eq!(paged["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(paged["has_more"], true);
    let rest = get(&env, "/cloud-storage/jobs?limit=2&offset=2").await;
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(rest["has_more"], false);

    for (query, field) in [
        ("status=done", "status"),
        ("type=upload", "type"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("offset=-1", "offset"),
    ] {
        let response = env.api(Method::GET, &format!("/cloud-storage/jobs?{query}")).send().await.expect("bad");
        let body = json_of(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(body["error"]["code"], "VALIDATION_ERROR");
        assert_eq!(body["error"]["details"]["field"], field, "{query}");
    }

    // Another tenant sees none of them.
    let other = env.second_tenant_key("jobs-other").await.expect("key");
    let theirs: Value =
        env.api_as(&other, Method::GET, "/cloud-storage/jobs").send().await.expect("list").json().await.expect("json");
    assert_eq!(theirs["total_count"], 0);
    let job_id = second["job_id"].as_str().expect("id");
    for path in [format!("/cloud-storage/jobs/{job_id}/items"), format!("/cloud-storage/jobs/{job_id}/events")] {
        let response = env.api_as(&other, Method::GET, &path).send().await.expect("foreign");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let response =
        env.api_as(&other, Method::POST, &format!("/cloud-storage/jobs/{job_id}/cancel")).send().await.expect("cancel");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_stream_progress_and_exports_report_cloud_file_ids() {
    let env = TestEnv::start().await.expect("env");
    let email = "stream@example.com";
    let connection = connect(&env, email).await;
    let drive = env.emulator.state();
    let ids: Vec<String> = (0..3)
        .map(|i| drive.create_file(email, None, &format!("s{i}.bin"), "application/octet-stream", vec![i; 4096].into()))
        .collect();
    let created = import(&env, &connection, &ids).await;
    let job_id = created["job_id"].as_str().expect("job id").to_owned();
    let events = read_events(&env, &job_id).await;
    let (last_event, last) = events.last().expect("at least one event");
    assert_eq!(last_event, "end");
    assert_eq!(last["job"]["status"], "completed");
    assert_eq!(last["job"]["completed_files"], 3);
    assert!(events[..events.len() - 1].iter().all(|(event, _)| event == "progress"));
    let items = get(&env, &format!("/cloud-storage/jobs/{job_id}/items")).await;
    for (item, image_id) in
        items["items"].as_array().expect("items").iter().zip(created["image_ids"].as_array().expect("ids"))
    {
        assert_eq!(item["status"], "completed");
        assert_eq!(&item["image_id"], image_id);
        assert!(item["drive_file_id"].is_string());
        assert_eq!(item["error_code"], Value::Null);
    }

    drive.reset_counters();
    let export = json_of(
        env.api(Method::POST, "/cloud-storage/export")
            .json(&json!({ "connection_id": connection, "image_ids": created["image_ids"], "folder_name": "Back" }))
            .send()
            .await
            .expect("export"),
        StatusCode::OK,
    )
    .await;
    let export_id = export["job_id"].as_str().expect("job id");
    let job = env.wait_for_job(export_id, Duration::from_secs(120)).await.expect("export finishes");
    assert_eq!(job["status"], "completed");
    let cloud_ids: Vec<String> = job["cloud_file_ids"]
        .as_array()
        .expect("cloud_file_ids filled when done")
        .iter()
        .map(|v| v.as_str().expect("id").to_owned())
        .collect();
    assert_eq!(cloud_ids.len(), 3);
    let items = get(&env, &format!("/cloud-storage/jobs/{export_id}/items")).await;
    for (item, cloud_id) in items["items"].as_array().expect("items").iter().zip(&cloud_ids) {
        assert_eq!(&item["drive_file_id"], cloud_id);
        assert!(drive.file_info(cloud_id).is_some(), "the exported file exists in Drive");
    }
    // What a job can ask Drive once it asks once: one batch of ids (the folder's and the three files'), one
    // folder creation.
    let endpoints = drive.counters().endpoints;
    assert_eq!(endpoints.get("files.generateIds"), Some(&1), "{endpoints:?}");
    assert_eq!(endpoints.get("files.create"), Some(&1), "{endpoints:?}");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_bodies_match_the_seed() {
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("env");
    let email = "snap@example.com";
    let connection = connect(&env, email).await;
    let id = env.emulator.state().create_file(email, None, "s.bin", "application/octet-stream", vec![1; 8].into());
    // Seed 001's request shape: collection_id is only an alias, auto_describe is accepted.
    let created = json_of(
        env.api(Method::POST, "/cloud-storage/import")
            .json(&json!({ "connection_id": connection, "files": [{ "id": id, "name": "s.bin", "mime_type": "application/octet-stream", "size_bytes": 8 }], "auto_describe": false, "tags": [] }))
            .send()
            .await
            .expect("import"),
        StatusCode::OK,
    )
    .await;
    let job_id = created["job_id"].as_str().expect("job").to_owned();
    let job = get(&env, &format!("/cloud-storage/jobs/{job_id}")).await;
    assert_snapshot(
        &job,
        &[],
        json!({ "job": {
            "job_id": "[job]",
            "type": "import",
            "status": "pending",
            "connection_id": "[uuid]",
            "provider": "google_drive",
            "total_files": 1,
            "completed_files": 0,
            "failed_files": 0,
            "error": null,
            "created_at": "[time]",
            "updated_at": "[time]",
            "completed_at": null,
        } }),
    );
    let items = get(&env, &format!("/cloud-storage/jobs/{job_id}/items")).await;
    assert_snapshot(
        &items,
        &[],
        json!({
            "job_id": "[job]",
            "items": [{
                "item_id": "[item]",
                "position": 0,
                "name": "s.bin",
                "mime_type": "application/octet-stream",
                "status": "pending",
                "image_id": "[img]",
                "drive_file_id": id,
                "error_code": null,
                "error_message": null,
                "attempts": 0,
                "created_at": "[time]",
                "updated_at": "[time]",
                "completed_at": null,
            }],
            "total_count": 1,
            "limit": 100,
            "offset": 0,
            "has_more": false,
        }),
    );
    let cancelled = json_of(
        env.api(Method::POST, &format!("/cloud-storage/jobs/{job_id}/cancel")).send().await.expect("cancel"),
        StatusCode::OK,
    )
    .await;
    assert_snapshot(
        &cancelled,
        &[],
        json!({
            "job": {
                "job_id": "[job]", "type": "import", "status": "cancelled", "connection_id": "[uuid]",
                "provider": "google_drive", "total_files": 1, "completed_files": 0, "failed_files": 0, "error": null,
                "created_at": "[time]", "updated_at": "[time]", "completed_at": "[time]",
            },
            "cancelled_files": 1,
            "running_files": 0,
            "message": "Cancelled 1 pending file(s)",
        }),
    );

    let upload =
        reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(vec![2u8; 16]).file_name("e.bin"));
    let uploaded =
        json_of(env.api(Method::POST, "/files").multipart(upload).send().await.expect("upload"), StatusCode::CREATED)
            .await;
    let export = json_of(
        env.api(Method::POST, "/cloud-storage/export")
            .json(
                &json!({ "connection_id": connection, "image_ids": [uploaded["id"]], "folder_name": "Scopix Export" }),
            )
            .send()
            .await
            .expect("export"),
        StatusCode::OK,
    )
    .await;
    assert_snapshot(
        &export,
        &[],
        json!({ "cloud_file_ids": null, "job_id": "[job]", "job_status": "pending", "is_async": true, "message": "Export job created" }),
    );
    let export_job = get(&env, &format!("/cloud-storage/jobs/{}", export["job_id"].as_str().expect("id"))).await;
    assert_eq!(export_job["job"]["type"], "export");
    assert_eq!(export_job["job"]["cloud_file_ids"], Value::Null);

    let missing = env
        .api(Method::GET, &format!("/cloud-storage/jobs/job_{}", uuid::Uuid::new_v4().simple()))
        .send()
        .await
        .expect("404");
    assert_snapshot(
        &json_of(missing, StatusCode::NOT_FOUND).await,
        &[],
        json!({ "error": { "code": "NOT_FOUND", "message": "Job not found", "details": {} } }),
    );
    let bad_folder = env
        .api(Method::POST, "/cloud-storage/export")
        .json(&json!({ "connection_id": connection, "image_ids": [uploaded["id"]], "folder_id": "noSuchFolder" }))
        .send()
        .await
        .expect("export");
    assert_snapshot(
        &json_of(bad_folder, StatusCode::BAD_REQUEST).await,
        &[],
        json!({ "error": { "code": "VALIDATION_ERROR", "message": "folder_id does not exist in the connected drive", "details": { "field": "folder_id" } } }),
    );
    let duplicate = env
        .api(Method::POST, "/cloud-storage/import")
        .json(&json!({ "connection_id": connection, "files": [{ "id": id, "name": "a" }, { "id": id, "name": "b" }] }))
        .send()
        .await
        .expect("dup");
    assert_snapshot(
        &json_of(duplicate, StatusCode::BAD_REQUEST).await,
        &[],
        json!({ "error": { "code": "VALIDATION_ERROR", "message": "Each Drive file may appear only once per import", "details": { "field": "files", "duplicate_ids": [id] } } }),
    );
    env.shutdown().await;
}

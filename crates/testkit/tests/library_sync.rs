//! Library sync against the emulator, end to end: a first run lists the linked folder; after every kind of
//! change in Drive (add, edit, rename, move out, a folder with a subtree moved in, trash, delete forever,
//! untrash, a Google Doc) the next run reads the changes feed and reports exact counts, and the library's tree
//! equals the folder's (names, nesting, md5 of every file). Also: one run at a time, scopes, no connection.

mod api_support;

use std::collections::BTreeMap;

use api_support::json_of;
use bytes::Bytes;
use ferry_core::Scope;
use ferry_testkit::{TestEnv, Workers};
use md5::{Digest, Md5};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const EMAIL: &str = "sync@example.com";

fn call(env: &TestEnv, method: Method, path: &str) -> reqwest::RequestBuilder {
    env.http.request(method, env.url(path)).bearer_auth(&env.api_key)
}

async fn sync(env: &TestEnv, library: &str, body: Value) -> Value {
    let response = call(env, Method::POST, &format!("/api/libraries/{library}/_sync"))
        .json(&body)
        .timeout(std::time::Duration::from_secs(120))
        .send()
        .await
        .expect("sync");
    json_of(response, StatusCode::OK).await
}

fn counts(result: &Value) -> [i64; 4] {
    ["syncedFiles", "addedFiles", "updatedFiles", "deletedFiles"].map(|k| result[k].as_i64().expect(k))
}

/// The Drive folder's live tree: path → md5 of the content (`None` for folders).
fn drive_tree(env: &TestEnv, folder: &str) -> BTreeMap<String, Option<String>> {
    let drive = env.emulator.state();
    let mut tree = BTreeMap::new();
    let mut stack = vec![(folder.to_owned(), String::new())];
    while let Some((id, prefix)) = stack.pop() {
        for child in drive.children(&id) {
            if child.trashed {
                continue;
            }
            let path = format!("{prefix}/{}", child.name);
            if child.mime_type == "application/vnd.google-apps.folder" {
                tree.insert(path.clone(), None);
                stack.push((child.id.clone(), path));
            } else {
                let content = drive.file_content(&child.id).expect("content");
                tree.insert(path, Some(hex::encode(Md5::digest(&content))));
            }
        }
    }
    tree
}

/// The library's live tree, read through the documents API, with the md5 of every file's downloaded bytes.
async fn library_tree(env: &TestEnv, root_item: &str) -> BTreeMap<String, Option<String>> {
    let base = format!("/internal/services/documents/v1/companies/{}", env.tenant_id.0);
    let mut tree = BTreeMap::new();
    let mut stack = vec![(root_item.to_owned(), String::new())];
    while let Some((id, prefix)) = stack.pop() {
        let listing =
            json_of(call(env, Method::GET, &format!("{base}/item/{id}")).send().await.expect("item"), StatusCode::OK)
                .await;
        for child in listing["children"].as_array().expect("children") {
            let name = child["name"].as_str().expect("name");
            let path = format!("{prefix}/{name}");
            let child_id = child["id"].as_str().expect("id");
            if child["is_directory"] == true {
                tree.insert(path.clone(), None);
                stack.push((child_id.to_owned(), path));
            } else {
                let bytes = call(env, Method::GET, &format!("{base}/item/{child_id}/download"))
                    .send()
                    .await
                    .expect("download")
                    .bytes()
                    .await
                    .expect("bytes");
                tree.insert(path, Some(hex::encode(Md5::digest(&bytes))));
            }
        }
    }
    tree
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_kind_of_drive_change_reaches_the_library_with_exact_counts() {
    let env = TestEnv::start_with(Workers::ALL, &[]).await.expect("env");
    let drive = env.emulator.state();
    drive.ensure_user(EMAIL, "Sync User");
    let linked = drive.create_folder(EMAIL, None, "Library");
    let outside = drive.create_folder(EMAIL, None, "Outside");
    let text = |s: &str| Bytes::from(s.to_owned());
    let edited = drive.create_file(EMAIL, Some(&linked), "a.txt", "text/plain", text("first"));
    let docs = drive.create_folder(EMAIL, Some(&linked), "docs");
    let renamed = drive.create_file(EMAIL, Some(&docs), "b.txt", "text/plain", text("bee"));
    let deep = drive.create_folder(EMAIL, Some(&docs), "deep");
    let moved_out = drive.create_file(EMAIL, Some(&deep), "c.txt", "text/plain", text("sea"));
    let trashed = drive.create_file(EMAIL, Some(&linked), "trash-me.txt", "text/plain", text("t"));
    let deleted = drive.create_file(EMAIL, Some(&linked), "delete-me.txt", "text/plain", text("d"));
    let comeback = drive.create_file(EMAIL, Some(&linked), "comeback.txt", "text/plain", text("back"));
    drive.set_trashed(&comeback, true);
    let arrivals = drive.create_folder(EMAIL, Some(&outside), "Arrivals");
    drive.create_file(EMAIL, Some(&arrivals), "x.txt", "text/plain", text("ex"));
    let y = drive.create_folder(EMAIL, Some(&arrivals), "y");
    drive.create_file(EMAIL, Some(&y), "z.txt", "text/plain", text("zed"));
    let connection =
        env.connect_drive(EMAIL).await.expect("connect")["connection"]["id"].as_str().expect("id").to_owned();

    let created = json_of(
        call(&env, Method::POST, "/api/libraries")
            .json(&json!({ "name": "Team library", "naturalId": "team" }))
            .send()
            .await
            .expect("create"),
        StatusCode::CREATED,
    )
    .await;
    let root_item = created["rootItemId"].as_str().expect("root").to_owned();
    let not_connected = call(&env, Method::POST, "/api/libraries/team/_sync").json(&json!({})).send().await;
    let body = json_of(not_connected.expect("sync"), StatusCode::CONFLICT).await;
    assert_eq!(body["error"]["code"], "NOT_CONNECTED");
    json_of(
        call(&env, Method::PUT, "/api/libraries/team/connection")
            .json(&json!({ "connectionId": connection, "folderId": linked }))
            .send()
            .await
            .expect("link"),
        StatusCode::OK,
    )
    .await;

    // First run: a full listing.
    let first = sync(&env, "team", json!({ "progress": "first-run" })).await;
    assert_eq!(counts(&first), [5, 5, 0, 0], "{first}");
    assert_eq!(first["errors"], json!([]));
    assert_eq!(library_tree(&env, &root_item).await, drive_tree(&env, &linked));
    let progress =
        json_of(call(&env, Method::GET, "/api/progress/first-run").send().await.expect("progress"), StatusCode::OK)
            .await;
    assert_eq!((progress["status"].as_str(), progress["planned"].as_bool()), (Some("completed"), Some(true)));
    assert_eq!(progress["result"]["addedFiles"], 5);

    // Nothing changed: nothing to do.
    let idle = sync(&env, "team", json!({})).await;
    assert_eq!(counts(&idle), [5, 0, 0, 0], "{idle}");

    // Every kind of change, then one run.
    drive.create_file(EMAIL, Some(&linked), "new.txt", "text/plain", text("new"));
    drive.replace_file_content(&edited, text("second, longer"));
    drive.rename(&renamed, "b-renamed.txt");
    drive.move_to(&moved_out, &outside);
    drive.move_to(&arrivals, &linked);
    drive.set_trashed(&trashed, true);
    drive.delete_forever(&deleted);
    drive.set_trashed(&comeback, false);
    drive.create_file(EMAIL, Some(&linked), "Plan", "application/vnd.google-apps.document", text("A plan"));
    let second = sync(&env, "team", json!({})).await;
    // added: new, x, z (moved in), comeback (untrashed), Plan; updated: a (edit), b (rename); deleted: c (moved
    // out), trash-me, delete-me.
    assert_eq!(counts(&second), [7, 5, 2, 3], "{second}");
    assert_eq!(second["errors"], json!([]));
    let mut expected = drive_tree(&env, &linked);
    // A Google Doc arrives exported (docx, named with its extension): its bytes are the export's, not Drive's.
    expected.remove("/Plan");
    let mut actual = library_tree(&env, &root_item).await;
    assert!(actual.remove("/Plan.docx").flatten().is_some(), "the Doc was exported: {actual:?}");
    assert_eq!(actual, expected);

    // Damage the library by hand: trash one file, delete another forever, add one Drive never had. A purge
    // lists the whole folder and puts the library back as Drive has it.
    let base = format!("/internal/services/documents/v1/companies/{}", env.tenant_id.0);
    let child = async |parent: &str, name: &str| -> String {
        let listing = json_of(
            call(&env, Method::GET, &format!("{base}/item/{parent}")).send().await.expect("item"),
            StatusCode::OK,
        )
        .await;
        let found = listing["children"].as_array().expect("children").iter().find(|c| c["name"] == name);
        found.and_then(|c| c["id"].as_str()).unwrap_or_else(|| panic!("no {name} in {listing}")).to_owned()
    };
    let a = child(&root_item, "a.txt").await;
    let docs_dir = child(&root_item, "docs").await;
    let b = child(&docs_dir, "b-renamed.txt").await;
    for (item, times) in [(&a, 1), (&b, 2)] {
        for _ in 0..times {
            let response = call(&env, Method::DELETE, &format!("{base}/item/{item}")).send().await.expect("delete");
            assert_eq!(response.status(), StatusCode::OK);
        }
    }
    let form = reqwest::multipart::Form::new()
        .text("item", json!({ "name": "intruder.txt", "parent_id": root_item }).to_string())
        .part("file", reqwest::multipart::Part::bytes(b"not from Drive".to_vec()).file_name("intruder.txt"));
    json_of(
        call(&env, Method::POST, &format!("{base}/item")).multipart(form).send().await.expect("upload"),
        StatusCode::OK,
    )
    .await;
    let repaired = sync(&env, "team", json!({ "purge": true })).await;
    // a.txt comes back from the trash with its content again (updated); b was deleted forever, so it is made
    // again (added); the intruder leaves (deleted).
    assert_eq!(counts(&repaired), [7, 1, 1, 1], "{repaired}");
    let mut actual = library_tree(&env, &root_item).await;
    assert!(actual.remove("/Plan.docx").flatten().is_some());
    assert_eq!(actual, expected, "purge put the library back as Drive has it");

    // The files that left are in the library's trash, recoverable.
    let trash = json_of(
        call(&env, Method::GET, &format!("/internal/services/documents/v1/companies/{}/item/trash", env.tenant_id.0))
            .send()
            .await
            .expect("trash"),
        StatusCode::OK,
    )
    .await;
    let mut binned: Vec<&str> =
        trash["children"].as_array().expect("children").iter().filter_map(|c| c["name"].as_str()).collect();
    binned.sort_unstable();
    assert_eq!(binned, ["c.txt", "delete-me.txt", "intruder.txt", "trash-me.txt"]);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_run_at_a_time_and_only_with_the_sync_scope() {
    let env = TestEnv::start_with(Workers::ALL, &[]).await.expect("env");
    let drive = env.emulator.state();
    drive.ensure_user(EMAIL, "Sync User");
    let linked = drive.create_folder(EMAIL, None, "Library");
    drive.create_file(EMAIL, Some(&linked), "a.txt", "text/plain", Bytes::from_static(b"a"));
    let connection =
        env.connect_drive(EMAIL).await.expect("connect")["connection"]["id"].as_str().expect("id").to_owned();
    let created = json_of(
        call(&env, Method::POST, "/api/libraries").json(&json!({ "name": "L" })).send().await.expect("create"),
        StatusCode::CREATED,
    )
    .await;
    let id = created["id"].as_str().expect("id").to_owned();
    json_of(
        call(&env, Method::PUT, &format!("/api/libraries/{id}/connection"))
            .json(&json!({ "connectionId": connection, "folderId": linked }))
            .send()
            .await
            .expect("link"),
        StatusCode::OK,
    )
    .await;

    let writer = env.scoped_key(&[Scope::LibraryRead, Scope::LibraryWrite]).await.expect("key");
    let denied = env
        .http
        .post(env.url(&format!("/api/libraries/{id}/_sync")))
        .bearer_auth(&writer)
        .json(&json!({}))
        .send()
        .await
        .expect("sync");
    let body = json_of(denied, StatusCode::FORBIDDEN).await;
    assert!(body["error"]["message"].as_str().expect("message").contains("library:sync"));

    // Listing is slowed down, so the first run is still planning when the second is asked for.
    drive
        .update_faults(|faults| {
            faults.latency_ms = 1500;
            faults.endpoints = vec!["/drive/v3/files".to_owned()];
        })
        .expect("faults");
    let accepted = call(&env, Method::POST, &format!("/api/libraries/{id}/_sync"))
        .header("Prefer", "respond-async")
        .json(&json!({ "progress": "slow" }))
        .send()
        .await
        .expect("sync");
    let accepted = json_of(accepted, StatusCode::ACCEPTED).await;
    let running = call(&env, Method::POST, &format!("/api/libraries/{id}/_sync")).json(&json!({})).send().await;
    let body = json_of(running.expect("second"), StatusCode::CONFLICT).await;
    assert_eq!(body["error"]["details"]["job_id"], accepted["jobId"], "{body}");

    // Cancelling the run ends it (whatever it had planned is dropped), and the library can sync again.
    let job_id = accepted["jobId"].as_str().expect("job id");
    let cancelled = call(&env, Method::POST, &format!("/api/v2/cloud-storage/jobs/{job_id}/cancel")).send().await;
    assert!(cancelled.expect("cancel").status().is_success());
    drive.update_faults(|faults| *faults = Default::default()).expect("faults");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let progress =
            json_of(call(&env, Method::GET, "/api/progress/slow").send().await.expect("progress"), StatusCode::OK)
                .await;
        if progress["result"].is_object() {
            // A transfer already running when the cancel came finishes; the rest are cancelled.
            assert_eq!(progress["status"], "cancelled", "{progress}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the cancelled run never ended: {progress}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Whatever the cancelled run did not bring over, the next one does.
    let next = sync(&env, &id, json!({})).await;
    assert_eq!((counts(&next)[0], counts(&next)[2], counts(&next)[3]), (1, 0, 0), "{next}");
    assert_eq!(next["errors"], json!([]));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scheduled_syncs_start_on_their_own_and_a_revoked_connection_waits_without_retrying() {
    let env = TestEnv::start_with(Workers::ALL, &[("importer.sync_schedule_every_secs", "1")]).await.expect("env");
    let drive = env.emulator.state();
    let link = async |email: &str, name: &str| -> (String, String) {
        drive.ensure_user(email, "Owner");
        let folder = drive.create_folder(email, None, name);
        drive.create_file(email, Some(&folder), "notes.txt", "text/plain", Bytes::from_static(b"notes"));
        let connection =
            env.connect_drive(email).await.expect("connect")["connection"]["id"].as_str().expect("id").to_owned();
        let created = json_of(
            call(&env, Method::POST, "/api/libraries").json(&json!({ "name": name })).send().await.expect("create"),
            StatusCode::CREATED,
        )
        .await;
        let id = created["id"].as_str().expect("id").to_owned();
        json_of(
            call(&env, Method::PUT, &format!("/api/libraries/{id}/connection"))
                .json(&json!({ "connectionId": connection, "folderId": folder }))
                .send()
                .await
                .expect("link"),
            StatusCode::OK,
        )
        .await;
        (id, created["rootItemId"].as_str().expect("root").to_owned())
    };
    let (healthy, healthy_root) = link("healthy@example.com", "Healthy").await;
    let (revoked, _) = link("revoked@example.com", "Revoked").await;
    drive.revoke_user_tokens("revoked@example.com");
    for id in [&healthy, &revoked] {
        json_of(
            call(&env, Method::PATCH, &format!("/api/libraries/{id}"))
                .json(&json!({ "syncIntervalSecs": 60 }))
                .send()
                .await
                .expect("schedule"),
            StatusCode::OK,
        )
        .await;
    }
    let library = async |id: &str| {
        json_of(call(&env, Method::GET, &format!("/api/libraries/{id}")).send().await.expect("get"), StatusCode::OK)
            .await
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (a, b) = (library(&healthy).await, library(&revoked).await);
        if a["lastSyncAt"].is_string() && b["lastSyncError"].is_string() {
            assert!(b["lastSyncAt"].is_null(), "{b}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no scheduled runs: {a} {b}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(library_tree(&env, &healthy_root).await.len(), 1, "the scheduled run brought the file over");

    // Several scheduler passes later there is still one run per library: the interval has not passed, and the
    // revoked connection waits for the account to be connected again.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let jobs = json_of(
        call(&env, Method::GET, "/api/v2/cloud-storage/jobs?type=sync").send().await.expect("jobs"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(jobs["total_count"], 2, "{jobs}");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shared_drive_folder_syncs_failures_are_reported_and_a_bad_position_means_a_full_listing() {
    let env = TestEnv::start_with(Workers::ALL, &[]).await.expect("env");
    let drive = env.emulator.state();
    drive.ensure_user(EMAIL, "Sync User");
    let team = drive.create_shared_drive("Team", &[EMAIL]);
    let handbook = drive.create_folder(EMAIL, Some(&team), "Handbook");
    drive.create_file(EMAIL, Some(&handbook), "a.txt", "text/plain", Bytes::from_static(b"a"));
    // A Google Form has no export format: its transfer fails for good, and the run carries on.
    drive.create_file(EMAIL, Some(&handbook), "Survey", "application/vnd.google-apps.form", Bytes::from_static(b"q"));
    let connection =
        env.connect_drive(EMAIL).await.expect("connect")["connection"]["id"].as_str().expect("id").to_owned();
    let created = json_of(
        call(&env, Method::POST, "/api/libraries").json(&json!({ "name": "Handbook" })).send().await.expect("create"),
        StatusCode::CREATED,
    )
    .await;
    let id = created["id"].as_str().expect("id").to_owned();
    let linked = json_of(
        call(&env, Method::PUT, &format!("/api/libraries/{id}/connection"))
            .json(&json!({ "connectionId": connection, "folderId": handbook }))
            .send()
            .await
            .expect("link"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(linked["driveId"].as_str(), Some(team.as_str()));

    let first = sync(&env, &id, json!({})).await;
    assert_eq!(counts(&first), [1, 1, 0, 0], "{first}");
    let errors = first["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{first}");
    assert_eq!((errors[0]["name"].as_str(), errors[0]["code"].as_str()), (Some("Survey"), Some("not_importable")));
    assert!(errors[0]["fileId"].as_str().is_some_and(|f| !f.is_empty()));
    assert_eq!(first["status"], "partial");
    let job = json_of(
        call(&env, Method::GET, &format!("/api/v2/cloud-storage/jobs/{}", first["jobId"].as_str().expect("job")))
            .send()
            .await
            .expect("job"),
        StatusCode::OK,
    )
    .await;
    assert_eq!((job["job"]["type"].as_str(), job["job"]["status"].as_str()), (Some("sync"), Some("partial")));

    // The shared drive's changes feed carries a new file.
    drive.create_file(EMAIL, Some(&handbook), "b.txt", "text/plain", Bytes::from_static(b"b"));
    let feed_reads = || drive.request_counts().get("/drive/v3/changes").copied().unwrap_or(0);
    let before = feed_reads();
    let second = sync(&env, &id, json!({})).await;
    assert_eq!(counts(&second), [2, 1, 0, 0], "{second}");
    assert_eq!(second["errors"].as_array().map(Vec::len), Some(1), "the form is asked for again: {second}");
    assert!(feed_reads() > before, "a later run reads the changes feed");

    // A position Drive refuses: the run lists the folder instead (no second read of the feed).
    let library_id = uuid::Uuid::parse_str(&id).expect("uuid");
    ferry_db::testing::set_library_page_token_unchecked(&env.database.db, library_id, "not-a-position")
        .await
        .expect("damage the position");
    drive.create_file(EMAIL, Some(&handbook), "c.txt", "text/plain", Bytes::from_static(b"c"));
    let reads = feed_reads();
    let third = sync(&env, &id, json!({})).await;
    assert_eq!(counts(&third), [3, 1, 0, 0], "{third}");
    assert_eq!(feed_reads(), reads + 1, "one refused read, then the listing: {third}");

    // A disconnected connection: nothing to sync with.
    let disconnected = call(&env, Method::DELETE, &format!("/api/v2/cloud-storage/connections/{connection}"))
        .send()
        .await
        .expect("disconnect");
    assert!(disconnected.status().is_success());
    let refused = call(&env, Method::POST, &format!("/api/libraries/{id}/_sync")).json(&json!({})).send().await;
    let body = json_of(refused.expect("sync"), StatusCode::CONFLICT).await;
    assert_eq!(body["error"]["code"], "NOT_CONNECTED");
    env.shutdown().await;
}

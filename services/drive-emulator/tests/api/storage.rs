//! Contents on disk and `data_dir`: the state survives a restart.

use std::net::TcpListener;

use drive_emulator::EmulatorConfig;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestEmulator, assert_google_error};

async fn start_in(dir: &std::path::Path) -> TestEmulator {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let config = EmulatorConfig { data_dir: Some(dir.to_path_buf()), ..EmulatorConfig::default() };
    let emu = drive_emulator::spawn(config, listener).await.expect("spawn");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    TestEmulator { emu, http }
}

#[tokio::test]
async fn data_dir_keeps_users_files_contents_and_grants_across_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let me = "persistent@ferry.test";
    let content: Vec<u8> = (0..500_000u32).map(|i| (i % 241) as u8).collect();
    let (tokens, file_id, folder_id, start_token) = {
        let t = start_in(dir.path()).await;
        let tokens = t.login(me).await;
        let (_, folder) = {
            let res = t
                .http
                .post(t.url("/drive/v3/files"))
                .bearer_auth(&tokens.access)
                .json(&serde_json::json!({"name": "Kept", "mimeType": "application/vnd.google-apps.folder"}))
                .send()
                .await
                .expect("folder");
            (res.status(), res.json::<Value>().await.expect("json"))
        };
        let folder_id = folder["id"].as_str().expect("id").to_owned();
        let res = t
            .http
            .post(t.url("/upload/drive/v3/files"))
            .bearer_auth(&tokens.access)
            .query(&[("uploadType", "media"), ("fields", "id,md5Checksum")])
            .header("Content-Type", "application/octet-stream")
            .body(content.clone())
            .send()
            .await
            .expect("upload");
        assert_eq!(res.status(), StatusCode::OK);
        let file: Value = res.json().await.expect("json");
        let (_, start) = t.get_json(&tokens.access, "/drive/v3/changes/startPageToken", &[]).await;
        t.emu.stop().await;
        (tokens, file["id"].as_str().expect("id").to_owned(), folder_id, start["startPageToken"].clone())
    };
    assert!(dir.path().join("state.json").exists());

    let t = start_in(dir.path()).await;
    // Access tokens are not kept (clients refresh, as after an outage); refresh tokens are.
    let (s, body) = t.get_json(&tokens.access, "/drive/v3/files", &[]).await;
    assert_google_error(s, &body, 401, "authError");
    let res = t
        .http
        .post(t.url("/token"))
        .basic_auth("ferry-dev-client", Some("ferry-dev-secret"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", tokens.refresh.as_deref().expect("refresh"))])
        .send()
        .await
        .expect("refresh");
    assert_eq!(res.status(), StatusCode::OK);
    let access = res.json::<Value>().await.expect("json")["access_token"].as_str().expect("access").to_owned();
    let (s, body) =
        t.get_json(&access, "/drive/v3/files", &[("q", "trashed = false"), ("fields", "files(id,name)")]).await;
    assert_eq!(s, StatusCode::OK);
    let ids: Vec<&str> = body["files"].as_array().expect("files").iter().filter_map(|f| f["id"].as_str()).collect();
    assert!(ids.contains(&file_id.as_str()) && ids.contains(&folder_id.as_str()), "{body}");
    let res = t
        .http
        .get(t.url(&format!("/drive/v3/files/{file_id}?alt=media")))
        .bearer_auth(&access)
        .send()
        .await
        .expect("download");
    assert_eq!(res.bytes().await.expect("body"), content);
    // The change log continues where it was.
    let (_, start) = t.get_json(&access, "/drive/v3/changes/startPageToken", &[]).await;
    assert_eq!(start["startPageToken"], start_token);
    assert!(!t.emu.state().is_empty());
    t.emu.stop().await;
}

#[tokio::test]
async fn deleting_a_file_removes_its_content_from_disk() {
    let dir = tempfile::tempdir().expect("dir");
    let t = start_in(dir.path()).await;
    let me = "deleter@ferry.test";
    let id = t.emu.state().create_file(me, None, "gone.bin", "application/octet-stream", vec![1u8; 4096].into());
    let blobs = || std::fs::read_dir(dir.path().join("blobs")).expect("blobs").count();
    assert_eq!(blobs(), 1);
    let tokens = t.login(me).await;
    let res = t.http.delete(t.url(&format!("/drive/v3/files/{id}"))).bearer_auth(&tokens.access).send().await;
    assert_eq!(res.expect("delete").status(), StatusCode::NO_CONTENT);
    assert_eq!(blobs(), 0);
    t.emu.stop().await;
}

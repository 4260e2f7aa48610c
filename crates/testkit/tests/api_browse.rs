//! Browse: the seed's body shape, the root's virtual folders ("Shared with me", shared drives), breadcrumbs
//! and importability.

mod api_support;

use api_support::{assert_snapshot, json_of};
use ferry_testkit::{TestEnv, Workers};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browse_bodies_match_the_seed_and_offer_virtual_folders() {
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("env");
    let email = "browser@example.com";
    let drive = env.emulator.state();
    drive.ensure_user(email, "Browser");
    let folder = drive.create_folder(email, None, "Albums");
    let photo = drive.create_file(email, Some(&folder), "photo.jpg", "image/jpeg", vec![9u8; 2048].into());
    drive.create_file(email, Some(&folder), "form", "application/vnd.google-apps.form", "x".into());
    let connection =
        env.connect_drive(email).await.expect("connect")["connection"]["id"].as_str().expect("id").to_owned();
    let browse =
        |query: String| env.api(Method::GET, &format!("/cloud-storage/connections/{connection}/browse{query}")).send();

    let root = json_of(browse(String::new()).await.expect("root"), StatusCode::OK).await;
    assert_snapshot(
        &root,
        &["web_view_link", "thumbnail_url"],
        json!({
            "files": [
                {
                    "id": "shared_with_me", "name": "Shared with me", "mime_type": "application/vnd.google-apps.folder",
                    "size_bytes": null, "modified_at": null, "is_folder": true, "web_view_link": null,
                    "thumbnail_url": null, "is_importable": false,
                },
                {
                    "id": folder, "name": "Albums", "mime_type": "application/vnd.google-apps.folder",
                    "size_bytes": null, "modified_at": "[time]", "is_folder": true, "web_view_link": "[redacted]",
                    "thumbnail_url": null, "is_importable": false,
                },
            ],
            "next_page_token": null,
            "current_folder_id": null,
            "breadcrumbs": [],
            "provider": "google_drive",
        }),
    );

    let inside = json_of(browse(format!("?folder_id={folder}")).await.expect("folder"), StatusCode::OK).await;
    let entries = inside["files"].as_array().expect("files");
    let by_name = |name: &str| entries.iter().find(|e| e["name"] == name).cloned().expect("listed");
    assert_eq!(by_name("photo.jpg")["id"], photo.as_str());
    assert_eq!(by_name("photo.jpg")["size_bytes"], 2048);
    assert_eq!(by_name("photo.jpg")["is_importable"], true);
    assert_eq!(by_name("form")["is_importable"], false, "Forms cannot be exported");
    assert_eq!(inside["current_folder_id"], folder.as_str());
    let trail: Vec<_> = inside["breadcrumbs"].as_array().expect("trail").iter().map(|b| b["name"].clone()).collect();
    assert_eq!(trail.last(), Some(&json!("Albums")));

    let shared = json_of(browse("?folder_id=shared_with_me".to_owned()).await.expect("shared"), StatusCode::OK).await;
    assert_snapshot(
        &shared,
        &[],
        json!({
            "files": [],
            "next_page_token": null,
            "current_folder_id": "shared_with_me",
            "breadcrumbs": [{ "id": "shared_with_me", "name": "Shared with me" }],
            "provider": "google_drive",
        }),
    );
    let paged = json_of(browse(format!("?folder_id={folder}&page_size=1")).await.expect("paged"), StatusCode::OK).await;
    assert_eq!(paged["files"].as_array().map(Vec::len), Some(1));
    let token = paged["next_page_token"].as_str().expect("token").to_owned();
    let next = json_of(
        browse(format!("?folder_id={folder}&page_size=1&page_token={token}")).await.expect("next"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(next["files"].as_array().map(Vec::len), Some(1));
    assert_ne!(next["files"][0]["id"], paged["files"][0]["id"]);

    let missing = browse("?folder_id=doesNotExist".to_owned()).await.expect("missing");
    assert_eq!(json_of(missing, StatusCode::NOT_FOUND).await["error"]["code"], "NOT_FOUND");
    env.shutdown().await;
}

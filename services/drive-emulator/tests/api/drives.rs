//! Shared drives: drives.list/get/create and the corpora / driveId / supportsAllDrives semantics.

use bytes::Bytes;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_google_error, start};

#[tokio::test]
async fn shared_drive_items_need_supports_all_drives_and_the_right_corpus() {
    let t = start().await;
    let (alice, bob, carol) = ("alice-sd@ferry.test", "bob-sd@ferry.test", "carol-sd@ferry.test");
    let state = t.emu.state();
    let drive = state.create_shared_drive("Team", &[alice, bob]);
    let folder = state.create_folder(alice, Some(&drive), "Specs");
    let spec = state.create_file(alice, Some(&folder), "spec.txt", "text/plain", Bytes::from_static(b"spec"));
    let mine = state.create_file(bob, None, "bob-own.txt", "text/plain", Bytes::from_static(b"mine"));
    let tok = t.login(bob).await.access;
    let outsider = t.login(carol).await.access;

    // files.get: 404 without supportsAllDrives, the file with it (owned by the drive).
    let path = format!("/drive/v3/files/{spec}");
    let (s, body) = t.get_json(&tok, &path, &[("fields", "id")]).await;
    assert_google_error(s, &body, 404, "notFound");
    let (s, body) =
        t.get_json(&tok, &path, &[("supportsAllDrives", "true"), ("fields", "id,driveId,owners,parents")]).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["driveId"], drive.as_str());
    assert!(body.get("owners").is_none(), "{body}");
    let res = t
        .http
        .get(t.url(&path))
        .bearer_auth(&tok)
        .query(&[("alt", "media"), ("supportsAllDrives", "true")])
        .send()
        .await
        .expect("media");
    assert_eq!(res.bytes().await.expect("body"), "spec");
    // Not a member: 404 even with the flag.
    let (s, body) = t.get_json(&outsider, &path, &[("supportsAllDrives", "true")]).await;
    assert_google_error(s, &body, 404, "notFound");

    // files.list corpora.
    let names = |body: &Value| -> Vec<String> {
        let mut n: Vec<String> = body["files"]
            .as_array()
            .expect("files")
            .iter()
            .map(|f| f["name"].as_str().unwrap_or("").to_owned())
            .collect();
        n.sort();
        n
    };
    let (s, body) = t.get_json(&tok, "/drive/v3/files", &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(names(&body), ["bob-own.txt"], "the user corpus is My Drive only");
    let all = [("includeItemsFromAllDrives", "true"), ("supportsAllDrives", "true")];
    let (s, body) = t.get_json(&tok, "/drive/v3/files", &[("corpora", "drive"), ("driveId", &drive)]).await;
    assert_google_error(s, &body, 400, "invalid");
    let mut q = vec![("corpora", "drive"), ("driveId", drive.as_str())];
    q.extend(all);
    let (s, body) = t.get_json(&tok, "/drive/v3/files", &q).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(names(&body), ["Specs", "spec.txt"]);
    let parents_q = format!("'{drive}' in parents");
    q.push(("q", &parents_q));
    let (_, body) = t.get_json(&tok, "/drive/v3/files", &q).await;
    assert_eq!(names(&body), ["Specs"], "the drive id is its root folder");
    let mut q = vec![("corpora", "allDrives")];
    q.extend(all);
    let (_, body) = t.get_json(&tok, "/drive/v3/files", &q).await;
    assert_eq!(names(&body), ["Specs", "bob-own.txt", "spec.txt"]);
    let mut q = vec![("corpora", "drive")];
    q.extend(all);
    let (s, body) = t.get_json(&tok, "/drive/v3/files", &q).await;
    assert_google_error(s, &body, 400, "required");
    let mut q = vec![("corpora", "drive"), ("driveId", drive.as_str())];
    q.extend(all);
    let (s, body) = t.get_json(&outsider, "/drive/v3/files", &q).await;
    assert_google_error(s, &body, 404, "notFound");

    // Creating in a shared drive needs the flag too; the new file belongs to the drive.
    let create = |flag: bool| {
        let mut req = t
            .http
            .post(t.url("/drive/v3/files"))
            .bearer_auth(&tok)
            .query(&[("fields", "id,driveId,parents")])
            .json(&json!({"name": "notes.txt", "mimeType": "text/plain", "parents": [folder]}));
        if flag {
            req = req.query(&[("supportsAllDrives", "true")]);
        }
        req.send()
    };
    let res = create(false).await.expect("create");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = create(true).await.expect("create");
    assert_eq!(res.status(), StatusCode::OK);
    let created: Value = res.json().await.expect("json");
    assert_eq!(created["driveId"], drive.as_str());

    // changes.list: the drive's changes with driveId (and the flags); My Drive changes without.
    let (_, start) = t.get_json(&tok, "/drive/v3/changes/startPageToken", &[]).await;
    let start = start["startPageToken"].as_str().expect("token").to_owned();
    let res = t
        .http
        .patch(t.url(&format!("/drive/v3/files/{spec}")))
        .bearer_auth(&tok)
        .query(&[("supportsAllDrives", "true")])
        .json(&json!({"name": "spec-v2.txt"}))
        .send()
        .await
        .expect("rename");
    assert_eq!(res.status(), StatusCode::OK);
    let res = t.http.delete(t.url(&format!("/drive/v3/files/{mine}"))).bearer_auth(&tok).send().await;
    assert_eq!(res.expect("delete").status(), StatusCode::NO_CONTENT);
    let mut q = vec![("pageToken", start.as_str()), ("driveId", drive.as_str())];
    q.extend(all);
    let (s, body) = t.get_json(&tok, "/drive/v3/changes", &q).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let changes = body["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 1, "{body}");
    assert_eq!(changes[0]["fileId"], spec.as_str());
    assert_eq!(changes[0]["driveId"], drive.as_str());
    let (_, body) = t.get_json(&tok, "/drive/v3/changes", &[("pageToken", start.as_str())]).await;
    let ids: Vec<&str> =
        body["changes"].as_array().expect("changes").iter().filter_map(|c| c["fileId"].as_str()).collect();
    assert_eq!(ids, [mine.as_str()], "without the flags only My Drive changes: {body}");
    t.emu.stop().await;
}

#[tokio::test]
async fn drives_list_get_and_create() {
    let t = start().await;
    let me = "organizer@ferry.test";
    let tok = t.login(me).await.access;
    let other = t.login("not-member@ferry.test").await.access;
    let mut ids = Vec::new();
    for name in ["Alpha", "Beta", "Gamma"] {
        let res = t
            .http
            .post(t.url("/drive/v3/drives"))
            .bearer_auth(&tok)
            .query(&[("requestId", format!("req-{name}"))])
            .json(&json!({"name": name}))
            .send()
            .await
            .expect("create");
        assert_eq!(res.status(), StatusCode::OK);
        let d: Value = res.json().await.expect("json");
        assert_eq!(d["kind"], "drive#drive");
        assert_eq!(d["name"], name);
        ids.push(d["id"].as_str().expect("id").to_owned());
    }
    // Same requestId again: 409, no second drive.
    let res = t
        .http
        .post(t.url("/drive/v3/drives"))
        .bearer_auth(&tok)
        .query(&[("requestId", "req-Alpha")])
        .json(&json!({"name": "Alpha again"}))
        .send()
        .await
        .expect("create");
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let res = t.http.post(t.url("/drive/v3/drives")).bearer_auth(&tok).json(&json!({"name": "x"})).send().await;
    assert_eq!(res.expect("create").status(), StatusCode::BAD_REQUEST);

    let (s, page1) = t.get_json(&tok, "/drive/v3/drives", &[("pageSize", "2")]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(page1["kind"], "drive#driveList");
    assert_eq!(page1["drives"].as_array().map(Vec::len), Some(2));
    let next = page1["nextPageToken"].as_str().expect("next page");
    let (_, page2) = t.get_json(&tok, "/drive/v3/drives", &[("pageSize", "2"), ("pageToken", next)]).await;
    assert_eq!(page2["drives"][0]["name"], "Gamma");
    assert!(page2.get("nextPageToken").is_none());
    let (_, found) = t.get_json(&tok, "/drive/v3/drives", &[("q", "name contains 'et'")]).await;
    assert_eq!(found["drives"].as_array().map(Vec::len), Some(1));
    assert_eq!(found["drives"][0]["name"], "Beta");
    let (s, body) = t.get_json(&tok, "/drive/v3/drives", &[("q", "memberCount > 1 or")]).await;
    assert_google_error(s, &body, 400, "invalid");
    let (s, body) = t.get_json(&tok, "/drive/v3/drives", &[("pageSize", "101")]).await;
    assert_google_error(s, &body, 400, "invalid");
    // Non-members see nothing and get 404s.
    let (_, none) = t.get_json(&other, "/drive/v3/drives", &[]).await;
    assert_eq!(none["drives"], json!([]));
    let (s, d) = t.get_json(&tok, &format!("/drive/v3/drives/{}", ids[1]), &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(d["name"], "Beta");
    let (s, body) = t.get_json(&other, &format!("/drive/v3/drives/{}", ids[1]), &[]).await;
    assert_google_error(s, &body, 404, "notFound");
    t.emu.stop().await;
}

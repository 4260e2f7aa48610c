use bytes::Bytes;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_google_error, start};

const FOLDER: &str = "application/vnd.google-apps.folder";

#[tokio::test]
async fn list_with_query_paging_and_fields() {
    let t = start().await;
    let me = "lister@ferry.test";
    let state = t.emu.state();
    let docs = state.create_folder(me, None, "Docs");
    for name in ["e.txt", "b.txt", "d.txt", "a.txt", "c.txt"] {
        state.create_file(me, Some(&docs), name, "text/plain", Bytes::from(name.repeat(2)));
    }
    let sub = state.create_folder(me, Some(&docs), "Sub");
    let gone = state.create_file(me, Some(&docs), "gone.txt", "text/plain", Bytes::from_static(b"x"));
    assert!(state.set_trashed(&gone, true));
    // Someone else's file in a folder of the same name never shows.
    let other = state.create_folder("other@ferry.test", None, "Docs");
    state.create_file("other@ferry.test", Some(&other), "secret.txt", "text/plain", Bytes::from_static(b"s"));

    let tokens = t.login(me).await;
    let q = format!("'{docs}' in parents and trashed = false and mimeType != '{FOLDER}'");
    let mut names = Vec::new();
    let mut page_token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query = vec![
            ("q", q.as_str()),
            ("pageSize", "2"),
            ("fields", "nextPageToken, files(id,name,size,md5Checksum)"),
            ("alt", "json"),
        ];
        if let Some(pt) = &page_token {
            query.push(("pageToken", pt.as_str()));
        }
        let (status, body) = t.get_json(&tokens.access, "/drive/v3/files", &query).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("kind").is_none(), "fields mask drops kind: {body}");
        pages += 1;
        for f in body["files"].as_array().expect("files") {
            let obj = f.as_object().expect("object");
            assert_eq!(obj.len(), 4, "{f}");
            // int64 as a JSON string.
            assert_eq!(f["size"], json!("10"), "{f}");
            assert_eq!(f["md5Checksum"].as_str().map(str::len), Some(32));
            names.push(f["name"].as_str().expect("name").to_owned());
        }
        match body["nextPageToken"].as_str() {
            Some(next) => page_token = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt"]);

    // Without fields: the fileList envelope and kind,id,name,mimeType per file.
    let q = format!("'{docs}' in parents and name = 'Sub'");
    let (status, body) = t.get_json(&tokens.access, "/drive/v3/files", &[("q", &q)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["kind"], "drive#fileList");
    assert_eq!(body["incompleteSearch"], false);
    assert!(body.get("nextPageToken").is_none());
    assert_eq!(body["files"], json!([{"kind": "drive#file", "id": sub, "name": "Sub", "mimeType": FOLDER}]));

    // The root alias, trashed files (listed unless q excludes them), ordering.
    let (_, body) =
        t.get_json(&tokens.access, "/drive/v3/files", &[("q", "'root' in parents"), ("fields", "files/id")]).await;
    assert_eq!(body, json!({"files": [{"id": docs}]}));
    let q = format!("'{docs}' in parents and trashed = true");
    let (_, body) = t.get_json(&tokens.access, "/drive/v3/files", &[("q", &q)]).await;
    assert_eq!(body["files"][0]["id"], gone.as_str());
    let q = format!("'{docs}' in parents");
    let (_, body) = t
        .get_json(
            &tokens.access,
            "/drive/v3/files",
            &[("q", &q), ("orderBy", "folder,name desc"), ("fields", "files(name)")],
        )
        .await;
    let order: Vec<&str> = body["files"].as_array().expect("files").iter().filter_map(|f| f["name"].as_str()).collect();
    assert_eq!(order, ["Sub", "gone.txt", "e.txt", "d.txt", "c.txt", "b.txt", "a.txt"]);
    let (_, body) =
        t.get_json(&tokens.access, "/drive/v3/files", &[("q", "name contains 'sec'"), ("fields", "files(name)")]).await;
    assert_eq!(body["files"], json!([]));

    // Errors: unparseable q, bad fields, bad pageSize, bad pageToken, bad orderBy.
    let (status, body) = t.get_json(&tokens.access, "/drive/v3/files", &[("q", "name = 'unterminated")]).await;
    assert_google_error(status, &body, 400, "invalid");
    assert_eq!(body["error"]["errors"][0]["location"], "q");
    assert_eq!(body["error"]["errors"][0]["locationType"], "parameter");
    let (status, body) = t.get_json(&tokens.access, "/drive/v3/files", &[("q", "size > 3")]).await;
    assert_google_error(status, &body, 400, "invalid");
    let (status, body) = t.get_json(&tokens.access, "/drive/v3/files", &[("fields", "files(id,bogus)")]).await;
    assert_google_error(status, &body, 400, "invalidParameter");
    assert_eq!(body["error"]["message"], "Invalid field selection bogus");
    let (status, body) = t.get_json(&tokens.access, "/drive/v3/files", &[("pageSize", "1001")]).await;
    assert_google_error(status, &body, 400, "invalid");
    let (status, body) = t.get_json(&tokens.access, "/drive/v3/files", &[("pageToken", "!!")]).await;
    assert_google_error(status, &body, 400, "invalid");
    let (status, body) = t.get_json(&tokens.access, "/drive/v3/files", &[("orderBy", "size")]).await;
    assert_google_error(status, &body, 400, "invalid");
    t.emu.stop().await;
}

#[tokio::test]
async fn get_metadata_media_and_ranges() {
    let t = start().await;
    let me = "getter@ferry.test";
    let state = t.emu.state();
    let content = Bytes::from((0..200_000u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let file = state.create_file(me, None, "data.bin", "application/octet-stream", content.clone());
    let empty = state.create_file(me, None, "empty.txt", "text/plain", Bytes::new());
    let folder = state.create_folder(me, None, "Folder");
    let doc = state.create_file(
        me,
        None,
        "Notes",
        "application/vnd.google-apps.document",
        Bytes::from_static(b"exported text"),
    );
    let foreign = state.create_file("x@ferry.test", None, "x.txt", "text/plain", Bytes::from_static(b"x"));
    let tokens = t.login(me).await;
    let path = format!("/drive/v3/files/{file}");

    let (status, body) = t.get_json(&tokens.access, &path, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"kind": "drive#file", "id": file, "name": "data.bin", "mimeType": "application/octet-stream"})
    );
    let (status, body) = t
        .get_json(&tokens.access, &path, &[("fields", "*"), ("supportsAllDrives", "true"), ("prettyPrint", "false")])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["size"], "200000");
    assert_eq!(body["version"].as_str().map(|v| !v.is_empty()), Some(true));
    assert_eq!(body["quotaBytesUsed"], "200000");
    assert_eq!(body["trashed"], false);
    assert_eq!(body["ownedByMe"], true);
    assert_eq!(body["parents"], json!([state.root_folder_id(me)]));
    assert_eq!(body["webViewLink"], format!("https://drive.google.com/file/d/{file}/view?usp=drivesdk"));
    let info = state.file_info(&file).expect("info");
    assert_eq!(body["md5Checksum"], info.md5.as_deref().expect("md5"));
    assert_eq!(body["sha256Checksum"].as_str().map(str::len), Some(64));
    assert_eq!(body["sha1Checksum"].as_str().map(str::len), Some(40));
    let created = body["createdTime"].as_str().expect("createdTime");
    assert!(created.ends_with('Z') && created.len() == 24, "{created}");
    let (_, body) = t
        .get_json(
            &tokens.access,
            &format!("/drive/v3/files/{folder}"),
            &[("fields", "id,size,webViewLink,capabilities/canListChildren")],
        )
        .await;
    assert_eq!(
        body,
        json!({"id": folder, "webViewLink": format!("https://drive.google.com/drive/folders/{folder}"), "capabilities": {"canListChildren": true}})
    );
    let (_, body) = t.get_json(&tokens.access, "/drive/v3/files/root", &[("fields", "id,name")]).await;
    assert_eq!(body, json!({"id": state.root_folder_id(me), "name": "My Drive"}));

    // Whole download.
    let res =
        t.http.get(t.url(&path)).bearer_auth(&tokens.access).query(&[("alt", "media")]).send().await.expect("download");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/octet-stream");
    assert_eq!(res.bytes().await.expect("bytes"), content);

    // A range.
    let res = t
        .http
        .get(t.url(&path))
        .bearer_auth(&tokens.access)
        .query(&[("alt", "media")])
        .header("Range", "bytes=100000-199999")
        .send()
        .await
        .expect("range");
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.headers()["content-range"], "bytes 100000-199999/200000");
    assert_eq!(res.bytes().await.expect("bytes"), content.slice(100_000..));
    let res = t
        .http
        .get(t.url(&path))
        .bearer_auth(&tokens.access)
        .query(&[("alt", "media")])
        .header("Range", "bytes=199990-")
        .send()
        .await
        .expect("range");
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.headers()["content-range"], "bytes 199990-199999/200000");

    // Unsatisfiable ranges, including any range of an empty file.
    for (id, range, total) in [(&file, "bytes=200000-", 200_000), (&empty, "bytes=0-", 0)] {
        let res = t
            .http
            .get(t.url(&format!("/drive/v3/files/{id}")))
            .bearer_auth(&tokens.access)
            .query(&[("alt", "media")])
            .header("Range", range)
            .send()
            .await
            .expect("range");
        assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(res.headers()["content-range"], format!("bytes */{total}"));
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["error"]["code"], 416);
    }
    let res = t
        .http
        .get(t.url(&format!("/drive/v3/files/{empty}")))
        .bearer_auth(&tokens.access)
        .query(&[("alt", "media")])
        .send()
        .await
        .expect("download");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.bytes().await.expect("bytes").is_empty());

    // Folders and Workspace files are not downloadable; others' files do not exist.
    for id in [&folder, &doc] {
        let (status, body) = t.get_json(&tokens.access, &format!("/drive/v3/files/{id}"), &[("alt", "media")]).await;
        assert_google_error(status, &body, 403, "fileNotDownloadable");
    }
    let (status, body) = t.get_json(&tokens.access, &format!("/drive/v3/files/{foreign}"), &[]).await;
    assert_google_error(status, &body, 404, "notFound");
    assert_eq!(body["error"]["message"], format!("File not found: {foreign}."));
    assert_eq!(body["error"]["errors"][0]["location"], "fileId");

    // Export returns the Workspace file's bytes as the requested type.
    let res = t
        .http
        .get(t.url(&format!("/drive/v3/files/{doc}/export")))
        .bearer_auth(&tokens.access)
        .query(&[("mimeType", "text/plain")])
        .send()
        .await
        .expect("export");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/plain");
    assert_eq!(res.bytes().await.expect("bytes"), "exported text");
    let (status, body) =
        t.get_json(&tokens.access, &format!("/drive/v3/files/{file}/export"), &[("mimeType", "text/plain")]).await;
    assert_google_error(status, &body, 403, "fileNotExportable");
    t.emu.stop().await;
}

#[tokio::test]
async fn create_with_generated_ids_about_and_delete() {
    let t = start().await;
    let me = "creator@ferry.test";
    let tokens = t.login(me).await;

    let (status, body) =
        t.get_json(&tokens.access, "/drive/v3/files/generateIds", &[("count", "3"), ("space", "drive")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["kind"], "drive#generatedIds");
    assert_eq!(body["space"], "drive");
    let ids: Vec<String> =
        body["ids"].as_array().expect("ids").iter().map(|v| v.as_str().expect("id").to_owned()).collect();
    assert_eq!(ids.len(), 3);
    for id in &ids {
        assert_eq!(id.len(), 33);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }

    let create = |body: Value| {
        t.http
            .post(t.url("/drive/v3/files"))
            .bearer_auth(&tokens.access)
            .query(&[("fields", "id,name,mimeType,parents")])
            .json(&body)
    };
    let folder_body = json!({"id": ids[0], "name": "Exports", "mimeType": FOLDER});
    let res = create(folder_body.clone()).send().await.expect("create");
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.expect("json");
    let root = t.emu.state().root_folder_id(me);
    assert_eq!(body, json!({"id": ids[0], "name": "Exports", "mimeType": FOLDER, "parents": [root]}));
    // The same pre-generated id again: 409, not a duplicate.
    let res = create(folder_body).send().await.expect("create");
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let body: Value = res.json().await.expect("json");
    assert_google_error(StatusCode::CONFLICT, &body, 409, "duplicate");
    assert_eq!(t.emu.state().children(&root).iter().filter(|f| f.name == "Exports").count(), 1);

    // An empty file inside it; an unknown parent is a 404.
    let res = create(json!({"id": ids[1], "name": "empty.txt", "mimeType": "text/plain", "parents": [ids[0]]}))
        .send()
        .await
        .expect("create");
    assert_eq!(res.status(), StatusCode::OK);
    let kids = t.emu.state().children(&ids[0]);
    assert_eq!(kids.len(), 1);
    assert_eq!(kids[0].size, Some(0));
    assert_eq!(kids[0].md5.as_deref(), Some("d41d8cd98f00b204e9800998ecf8427e"));
    let res = create(json!({"name": "orphan", "parents": ["1nope-nope-nope-nope"]})).send().await.expect("create");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // about: fields is required; quota values are strings.
    let (status, body) = t.get_json(&tokens.access, "/drive/v3/about", &[]).await;
    assert_google_error(status, &body, 400, "required");
    assert_eq!(body["error"]["message"], "The 'fields' parameter is required for this method.");
    let (status, body) = t.get_json(&tokens.access, "/drive/v3/about", &[("fields", "user,storageQuota")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"]["emailAddress"], me);
    assert_eq!(body["user"]["me"], true);
    assert!(body["user"]["permissionId"].is_string());
    assert!(body["storageQuota"]["limit"].is_string());
    assert_eq!(body["storageQuota"]["usage"], "0");
    assert_eq!(body["storageQuota"]["usageInDriveTrash"], "0");
    assert!(body.get("kind").is_none());

    // Rename and trash through PATCH; delete takes descendants along.
    let res = t
        .http
        .patch(t.url(&format!("/drive/v3/files/{}", ids[0])))
        .bearer_auth(&tokens.access)
        .query(&[("fields", "name,trashed")])
        .json(&json!({"name": "Old exports", "trashed": true}))
        .send()
        .await
        .expect("patch");
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body, json!({"name": "Old exports", "trashed": true}));
    assert!(t.emu.state().file_info(&ids[1]).expect("child").trashed);
    let res = t
        .http
        .delete(t.url(&format!("/drive/v3/files/{}", ids[0])))
        .bearer_auth(&tokens.access)
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(t.emu.state().file_info(&ids[1]).is_none());
    let (status, body) = t.get_json(&tokens.access, &format!("/drive/v3/files/{}", ids[0]), &[]).await;
    assert_google_error(status, &body, 404, "notFound");

    // Unknown paths are Google-shaped too.
    let (status, body) = t.get_json(&tokens.access, "/drive/v3/nothing", &[]).await;
    assert_google_error(status, &body, 404, "notFound");
    t.emu.stop().await;
}

#[tokio::test]
async fn changes_follow_creates_and_deletes() {
    let t = start().await;
    let me = "changes@ferry.test";
    let tokens = t.login(me).await;
    let (status, body) = t.get_json(&tokens.access, "/drive/v3/changes/startPageToken", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let start_token = body["startPageToken"].as_str().expect("token").to_owned();
    let a = t.emu.state().create_file(me, None, "a.txt", "text/plain", Bytes::from_static(b"a"));
    let b = t.emu.state().create_file(me, None, "b.txt", "text/plain", Bytes::from_static(b"b"));
    let res =
        t.http.delete(t.url(&format!("/drive/v3/files/{a}"))).bearer_auth(&tokens.access).send().await.expect("delete");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (status, body) = t.get_json(&tokens.access, "/drive/v3/changes", &[("pageToken", &start_token)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let changes = body["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 2, "{body}");
    assert_eq!(changes[0]["fileId"], b.as_str());
    assert_eq!(changes[0]["removed"], false);
    assert_eq!(changes[0]["file"]["name"], "b.txt");
    assert_eq!(changes[1]["fileId"], a.as_str());
    assert_eq!(changes[1]["removed"], true);
    assert!(body["newStartPageToken"].is_string());
    t.emu.stop().await;
}

#[tokio::test]
async fn abusive_files_download_only_with_acknowledge_abuse() {
    let t = start().await;
    let me = "abuse@ferry.test";
    let id = t.emu.state().create_file(me, None, "spam.exe", "application/octet-stream", Bytes::from_static(b"MZ"));
    assert!(t.emu.state().set_abusive(&id, true));
    let tokens = t.login(me).await;
    let url = t.url(&format!("/drive/v3/files/{id}"));
    let res = t.http.get(&url).bearer_auth(&tokens.access).query(&[("alt", "media")]).send().await.expect("get");
    let status = res.status();
    let body: Value = res.json().await.expect("json");
    assert_google_error(status, &body, 403, "cannotDownloadAbusiveFile");
    let res = t
        .http
        .get(&url)
        .bearer_auth(&tokens.access)
        .query(&[("alt", "media"), ("acknowledgeAbuse", "true")])
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.expect("body"), "MZ");
    // Metadata is readable either way.
    let (s, _) = t.get_json(&tokens.access, &format!("/drive/v3/files/{id}"), &[]).await;
    assert_eq!(s, StatusCode::OK);
    t.emu.stop().await;
}

#[tokio::test]
async fn about_lists_import_and_export_formats() {
    let t = start().await;
    let tokens = t.login("formats@ferry.test").await;
    let (s, body) = t
        .get_json(&tokens.access, "/drive/v3/about", &[("fields", "exportFormats,importFormats,maxImportSizes")])
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let doc_targets = body["exportFormats"]["application/vnd.google-apps.document"].as_array().expect("doc formats");
    assert!(doc_targets.contains(&json!("application/vnd.openxmlformats-officedocument.wordprocessingml.document")));
    assert_eq!(body["importFormats"]["text/csv"], json!(["application/vnd.google-apps.spreadsheet"]));
    assert_eq!(body["maxImportSizes"]["application/vnd.google-apps.document"], "10485760");
    t.emu.stop().await;
}

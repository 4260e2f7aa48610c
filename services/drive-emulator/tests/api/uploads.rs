use bytes::Bytes;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestEmulator, assert_google_error, start};

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + seed as usize) % 256) as u8).collect()
}

fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(bytes))
}

async fn multipart_upload(
    t: &TestEmulator,
    token: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let res = t
        .http
        .post(t.url(path))
        .bearer_auth(token)
        .query(&[("uploadType", "multipart"), ("fields", "id,name,mimeType,size,md5Checksum,parents")])
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .expect("upload");
    let status = res.status();
    (status, res.json().await.expect("json"))
}

#[tokio::test]
async fn multipart_in_both_framings() {
    let t = start().await;
    let me = "multi@ferry.test";
    let folder = t.emu.state().create_folder(me, None, "In");
    let tokens = t.login(me).await;

    // google-drive3: CRLF, leading CRLF, unquoted boundary, lowercase part headers.
    let content = [b"binary\r\n--not-the-boundary\r\n".as_slice(), &pattern(5000, 1)].concat();
    let meta = json!({"name": "drive3.bin", "parents": [folder]}).to_string();
    let mut body = format!(
        "\r\n--MDuXWGyeE33QFXGchb2VFWc4Z7945d\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{meta}\r\n--MDuXWGyeE33QFXGchb2VFWc4Z7945d\r\ncontent-type: application/x-custom\r\ncontent-length: {}\r\n\r\n",
        meta.len(),
        content.len()
    )
    .into_bytes();
    body.extend_from_slice(&content);
    body.extend_from_slice(b"\r\n--MDuXWGyeE33QFXGchb2VFWc4Z7945d--");
    let (status, file) = multipart_upload(
        &t,
        &tokens.access,
        "/upload/drive/v3/files",
        "multipart/related; boundary=MDuXWGyeE33QFXGchb2VFWc4Z7945d",
        body,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{file}");
    assert_eq!(file["name"], "drive3.bin");
    assert_eq!(file["mimeType"], "application/x-custom");
    assert_eq!(file["size"], content.len().to_string());
    assert_eq!(file["md5Checksum"], md5_hex(&content));
    assert_eq!(file["parents"], json!([folder]));
    let id = file["id"].as_str().expect("id");
    assert_eq!(t.emu.state().file_content(id).expect("content"), Bytes::from(content));

    // google-api-python-client: bare LF, quoted boundary with '=', MIME-Version and
    // Content-Transfer-Encoding headers; metadata carries the MIME type.
    let boundary = "===============7330845974216740156==";
    let content = b"hello from python\n".to_vec();
    let mut body = format!(
        "--{boundary}\nContent-Type: application/json\nMIME-Version: 1.0\n\n{{\"name\": \"py.txt\", \"mimeType\": \"text/plain\"}}\n--{boundary}\nContent-Type: text/plain\nMIME-Version: 1.0\nContent-Transfer-Encoding: binary\n\n"
    )
    .into_bytes();
    body.extend_from_slice(&content);
    body.extend_from_slice(format!("\n--{boundary}--").as_bytes());
    let (status, file) = multipart_upload(
        &t,
        &tokens.access,
        "/upload/drive/v3/files",
        &format!("multipart/related; boundary=\"{boundary}\""),
        body,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{file}");
    assert_eq!(file["name"], "py.txt");
    assert_eq!(file["mimeType"], "text/plain");
    assert_eq!(file["size"], "18");
    assert_eq!(file["md5Checksum"], md5_hex(&content));
    assert_eq!(file["parents"], json!([t.emu.state().root_folder_id(me)]));

    // A folder as multipart with an empty media part (google-drive3 has no metadata-only create).
    let meta = json!({"name": "Made", "mimeType": "application/vnd.google-apps.folder"}).to_string();
    let body = format!(
        "\r\n--b1\r\ncontent-type: application/json\r\n\r\n{meta}\r\n--b1\r\ncontent-type: application/octet-stream\r\n\r\n\r\n--b1--"
    );
    let (status, file) = multipart_upload(
        &t,
        &tokens.access,
        "/upload/drive/v3/files",
        "multipart/related; boundary=b1",
        body.into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{file}");
    assert_eq!(file["mimeType"], "application/vnd.google-apps.folder");
    assert!(file.get("size").is_none());

    // Not multipart at all.
    let (status, body) =
        multipart_upload(&t, &tokens.access, "/upload/drive/v3/files", "text/plain", b"x".to_vec()).await;
    assert_google_error(status, &body, 400, "badRequest");
    t.emu.stop().await;
}

async fn send_chunk(t: &TestEmulator, session: &str, put: bool, range: &str, body: Vec<u8>) -> reqwest::Response {
    // No Authorization: the session URL is the credential.
    let req = if put { t.http.put(session) } else { t.http.post(session) };
    req.header("Content-Range", range).body(body).send().await.expect("chunk")
}

fn range_header(res: &reqwest::Response) -> Option<String> {
    res.headers().get("range").map(|v| v.to_str().expect("ascii").to_owned())
}

#[tokio::test]
async fn resumable_upload_in_chunks_with_status_queries_and_a_lost_chunk() {
    let t = start().await;
    let me = "resume@ferry.test";
    let folder = t.emu.state().create_folder(me, None, "Exports");
    let tokens = t.login(me).await;
    let (_, ids) = t.get_json(&tokens.access, "/drive/v3/files/generateIds", &[("count", "1")]).await;
    let id = ids["ids"][0].as_str().expect("id").to_owned();
    let total = 700_000usize;
    let content = pattern(total, 3);
    const CHUNK: usize = 256 * 1024;

    let start_session = || {
        t.http
            .post(t.url("/resumable/upload/drive/v3/files"))
            .bearer_auth(&tokens.access)
            .query(&[("uploadType", "resumable"), ("fields", "id,name,size,md5Checksum,parents,mimeType")])
            .header("X-Upload-Content-Type", "application/zip")
            .header("X-Upload-Content-Length", total.to_string())
            .json(&json!({"id": id, "name": "big.zip", "parents": [folder]}))
            .send()
    };
    let res = start_session().await.expect("start");
    assert_eq!(res.status(), StatusCode::OK);
    let session = res.headers()["location"].to_str().expect("location").to_owned();
    let prefix = format!("{}/upload/drive/v3/files?uploadType=resumable&upload_id=", t.emu.base_url());
    assert!(session.starts_with(&prefix), "{session}");

    // Nothing committed yet: 308 without Range.
    let res = send_chunk(&t, &session, true, &format!("bytes */{total}"), Vec::new()).await;
    assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(range_header(&res), None);

    // First chunk by POST with an unknown total (google-drive3 style).
    let res = send_chunk(&t, &session, false, &format!("bytes 0-{}/*", CHUNK - 1), content[..CHUNK].to_vec()).await;
    assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(range_header(&res).as_deref(), Some("bytes=0-262143"));

    // The second chunk is "lost"; the third one leaves a gap and is refused.
    let res = send_chunk(
        &t,
        &session,
        true,
        &format!("bytes {}-{}/{total}", 2 * CHUNK, total - 1),
        content[2 * CHUNK..].to_vec(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"]["code"], 400);

    // The client asks where to resume.
    let res = send_chunk(&t, &session, true, &format!("bytes */{total}"), Vec::new()).await;
    assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(range_header(&res).as_deref(), Some("bytes=0-262143"));
    assert!(t.emu.state().file_info(&id).is_none(), "no file before the last byte");

    // Resending from an earlier offset overlaps committed bytes: they are skipped.
    let res = send_chunk(
        &t,
        &session,
        true,
        &format!("bytes 131072-{}/{total}", 2 * CHUNK - 1),
        content[131_072..2 * CHUNK].to_vec(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(range_header(&res).as_deref(), Some("bytes=0-524287"));

    let res = send_chunk(
        &t,
        &session,
        true,
        &format!("bytes {}-{}/{total}", 2 * CHUNK, total - 1),
        content[2 * CHUNK..].to_vec(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let file: Value = res.json().await.expect("json");
    assert_eq!(
        file,
        json!({
            "id": id,
            "name": "big.zip",
            "mimeType": "application/zip",
            "size": total.to_string(),
            "md5Checksum": md5_hex(&content),
            "parents": [folder],
        })
    );
    assert_eq!(t.emu.state().file_content(&id).expect("content"), Bytes::from(content));

    // A status query after completion answers 200 with the file again.
    let res = send_chunk(&t, &session, true, &format!("bytes */{total}"), Vec::new()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let again: Value = res.json().await.expect("json");
    assert_eq!(again["id"], id.as_str());

    // A new session for the same pre-generated id: 409.
    let res = start_session().await.expect("start");
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let body: Value = res.json().await.expect("json");
    assert_google_error(StatusCode::CONFLICT, &body, 409, "duplicate");
    t.emu.stop().await;
}

#[tokio::test]
async fn resumable_edge_cases() {
    let t = start().await;
    let me = "edge@ferry.test";
    let tokens = t.login(me).await;
    let start_session = || {
        t.http
            .post(t.url("/upload/drive/v3/files"))
            .bearer_auth(&tokens.access)
            .query(&[("uploadType", "resumable")])
            .json(&json!({"name": "e.txt", "mimeType": "text/plain"}))
            .send()
    };

    // Zero bytes: a status query with total 0 completes it.
    let res = start_session().await.expect("start");
    let session = res.headers()["location"].to_str().expect("location").to_owned();
    let res = send_chunk(&t, &session, true, "bytes */0", Vec::new()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let file: Value = res.json().await.expect("json");
    assert_eq!(file["name"], "e.txt");
    let info = t.emu.state().file_info(file["id"].as_str().expect("id")).expect("info");
    assert_eq!(info.size, Some(0));

    // A single PUT without Content-Range is the whole upload.
    let res = start_session().await.expect("start");
    let session = res.headers()["location"].to_str().expect("location").to_owned();
    let res = t.http.put(&session).body("all at once").send().await.expect("put");
    assert_eq!(res.status(), StatusCode::OK);
    let file: Value = res.json().await.expect("json");
    let id = file["id"].as_str().expect("id");
    assert_eq!(t.emu.state().file_content(id).expect("content"), "all at once");

    // Cancel, then the session is gone.
    let res = start_session().await.expect("start");
    let session = res.headers()["location"].to_str().expect("location").to_owned();
    let res = t.http.delete(&session).send().await.expect("delete");
    assert_eq!(res.status().as_u16(), 499);
    let res = send_chunk(&t, &session, true, "bytes 0-1/2", b"ab".to_vec()).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = send_chunk(&t, &format!("{}garbage", session), true, "bytes */2", Vec::new()).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // A body that does not match its Content-Range, and a garbage Content-Range.
    let res = start_session().await.expect("start");
    let session = res.headers()["location"].to_str().expect("location").to_owned();
    let res = send_chunk(&t, &session, true, "bytes 0-9/20", b"short".to_vec()).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = send_chunk(&t, &session, true, "bytes=0-9", b"0123456789".to_vec()).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // Starting needs a token and a known uploadType.
    let res =
        t.http.post(t.url("/upload/drive/v3/files")).query(&[("uploadType", "resumable")]).send().await.expect("start");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = t
        .http
        .post(t.url("/upload/drive/v3/files"))
        .bearer_auth(&tokens.access)
        .query(&[("uploadType", "sideways")])
        .send()
        .await
        .expect("start");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    t.emu.stop().await;
}

#[tokio::test]
async fn thirty_mib_uploads_stream_without_content_length() {
    let t = start().await;
    let me = "big@ferry.test";
    let tokens = t.login(me).await;
    let content = Bytes::from(pattern(30 * 1024 * 1024, 9));

    // uploadType=media with a chunked body (no Content-Length).
    let pieces: Vec<Result<Bytes, std::io::Error>> =
        content.chunks(1024 * 1024).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let res = t
        .http
        .post(t.url("/upload/drive/v3/files"))
        .bearer_auth(&tokens.access)
        .query(&[("uploadType", "media"), ("fields", "id,name,size,mimeType")])
        .header("Content-Type", "image/png")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(pieces)))
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status(), StatusCode::OK);
    let file: Value = res.json().await.expect("json");
    assert_eq!(file["name"], "Untitled");
    assert_eq!(file["mimeType"], "image/png");
    assert_eq!(file["size"], (30 * 1024 * 1024).to_string());
    let id = file["id"].as_str().expect("id").to_owned();

    // And back down, whole.
    let res = t
        .http
        .get(t.url(&format!("/drive/v3/files/{id}")))
        .bearer_auth(&tokens.access)
        .query(&[("alt", "media")])
        .send()
        .await
        .expect("download");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-length"], (30 * 1024 * 1024).to_string());
    assert!(res.bytes().await.expect("bytes") == content);

    // The same size through a resumable session in 8 MiB PUTs.
    let res = t
        .http
        .post(t.url("/upload/drive/v3/files"))
        .bearer_auth(&tokens.access)
        .query(&[("uploadType", "resumable")])
        .json(&json!({"name": "big.bin"}))
        .send()
        .await
        .expect("start");
    let session = res.headers()["location"].to_str().expect("location").to_owned();
    let total = content.len();
    let step = 8 * 1024 * 1024;
    let mut offset = 0;
    while offset < total {
        let end = (offset + step).min(total);
        let res = send_chunk(
            &t,
            &session,
            true,
            &format!("bytes {offset}-{}/{total}", end - 1),
            content[offset..end].to_vec(),
        )
        .await;
        if end < total {
            assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
            assert_eq!(range_header(&res), Some(format!("bytes=0-{}", end - 1)));
        } else {
            assert_eq!(res.status(), StatusCode::OK);
        }
        offset = end;
    }
    let root = t.emu.state().root_folder_id(me);
    let big = t.emu.state().children(&root).into_iter().find(|f| f.name == "big.bin").expect("big.bin");
    assert_eq!(big.size, Some(total as u64));
    assert_eq!(big.md5, Some(md5_hex(&content)));
    t.emu.stop().await;
}

#[tokio::test]
async fn update_with_media_multipart_and_resumable_replaces_content() {
    let t = start().await;
    let me = "updater@ferry.test";
    let id = t.emu.state().create_file(me, None, "v1.txt", "text/plain", Bytes::from_static(b"version one"));
    let doc =
        t.emu.state().create_file(me, None, "Doc", "application/vnd.google-apps.document", Bytes::from_static(b"old"));
    let tokens = t.login(me).await;
    let (_, start_token) = t.get_json(&tokens.access, "/drive/v3/changes/startPageToken", &[]).await;
    let start_token = start_token["startPageToken"].as_str().expect("token").to_owned();
    let fields = "id,name,mimeType,size,md5Checksum,version";

    // uploadType=media on /upload/drive/v3/files/{id}.
    let res = t
        .http
        .patch(t.url(&format!("/upload/drive/v3/files/{id}")))
        .bearer_auth(&tokens.access)
        .query(&[("uploadType", "media"), ("fields", fields)])
        .header("Content-Type", "text/plain")
        .body("version two")
        .send()
        .await
        .expect("media update");
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["md5Checksum"], md5_hex(b"version two"));
    assert_eq!(body["version"], "2");
    assert_eq!(body["name"], "v1.txt");

    // multipart: new name and content together.
    let multipart = "--b\r\nContent-Type: application/json\r\n\r\n{\"name\":\"v3.txt\"}\r\n--b\r\nContent-Type: text/plain\r\n\r\nversion three\r\n--b--\r\n";
    let res = t
        .http
        .patch(t.url(&format!("/upload/drive/v3/files/{id}")))
        .bearer_auth(&tokens.access)
        .query(&[("uploadType", "multipart"), ("fields", fields)])
        .header("Content-Type", "multipart/related; boundary=b")
        .body(multipart)
        .send()
        .await
        .expect("multipart update");
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.expect("json");
    assert_eq!((body["name"].as_str(), body["size"].as_str()), (Some("v3.txt"), Some("13")));
    assert_eq!(t.emu.state().file_content(&id).expect("content"), "version three");

    // resumable on the other path, in two chunks.
    let content = pattern(300 * 1024, 4);
    let res = t
        .http
        .patch(t.url(&format!("/resumable/upload/drive/v3/files/{id}")))
        .bearer_auth(&tokens.access)
        .query(&[("uploadType", "resumable"), ("fields", fields)])
        .header("X-Upload-Content-Type", "application/octet-stream")
        .json(&json!({}))
        .send()
        .await
        .expect("start");
    assert_eq!(res.status(), StatusCode::OK);
    let session = res.headers()["location"].to_str().expect("location").to_owned();
    let res = send_chunk(&t, &session, true, "bytes 0-262143/307200", content[..262_144].to_vec()).await;
    assert_eq!(res.status().as_u16(), 308);
    let res = send_chunk(&t, &session, false, "bytes 262144-307199/307200", content[262_144..].to_vec()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["md5Checksum"], md5_hex(&content));
    assert_eq!(body["mimeType"], "text/plain", "the file keeps its type");
    assert_eq!(body["version"], "4");

    // A Workspace file converts the new content; an unknown id is a 404.
    let res = t
        .http
        .patch(t.url(&format!("/upload/drive/v3/files/{doc}")))
        .bearer_auth(&tokens.access)
        .query(&[("uploadType", "media")])
        .header("Content-Type", "text/html")
        .body("<p>new text</p>")
        .send()
        .await
        .expect("doc update");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(t.emu.state().file_content(&doc).expect("model"), "new text");
    let res = t
        .http
        .patch(t.url("/upload/drive/v3/files/1missing0000000000000"))
        .bearer_auth(&tokens.access)
        .query(&[("uploadType", "media")])
        .body("x")
        .send()
        .await
        .expect("missing");
    let status = res.status();
    let body: Value = res.json().await.expect("json");
    assert_google_error(status, &body, 404, "notFound");

    // Each update is a change.
    let (_, changes) = t.get_json(&tokens.access, "/drive/v3/changes", &[("pageToken", start_token.as_str())]).await;
    let ids: Vec<&str> =
        changes["changes"].as_array().expect("changes").iter().filter_map(|c| c["fileId"].as_str()).collect();
    assert!(ids.contains(&id.as_str()) && ids.contains(&doc.as_str()), "{changes}");
    t.emu.stop().await;
}

#[tokio::test]
async fn expired_upload_sessions_answer_404() {
    let config = drive_emulator::EmulatorConfig {
        upload_session_ttl: std::time::Duration::ZERO,
        ..drive_emulator::EmulatorConfig::default()
    };
    let t = crate::helpers::start_with(config).await;
    let tokens = t.login("expiring@ferry.test").await;
    let res = t
        .http
        .post(t.url("/upload/drive/v3/files"))
        .bearer_auth(&tokens.access)
        .query(&[("uploadType", "resumable")])
        .json(&json!({"name": "late.bin"}))
        .send()
        .await
        .expect("start");
    assert_eq!(res.status(), StatusCode::OK);
    let session = res.headers()["location"].to_str().expect("location").to_owned();
    let res = send_chunk(&t, &session, true, "bytes 0-9/10", vec![0u8; 10]).await;
    let status = res.status();
    let body: Value = res.json().await.expect("json");
    assert_google_error(status, &body, 404, "notFound");
    t.emu.stop().await;
}

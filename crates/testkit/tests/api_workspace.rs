//! Google Workspace files are exported on import: Docs → docx, Sheets → xlsx, Slides → pptx, Drawings → png by
//! default, another format when the request asks, and past files.export's 10 MB cap through `exportLinks`.

mod api_support;

use std::time::Duration;

use api_support::json_of;
use ferry_testkit::TestEnv;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const DOC: &str = "application/vnd.google-apps.document";
const SHEET: &str = "application/vnd.google-apps.spreadsheet";
const SLIDES: &str = "application/vnd.google-apps.presentation";
const DRAWING: &str = "application/vnd.google-apps.drawing";

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// High-entropy text (so the exported, deflated document stays large), in lines.
fn noisy_text(len: usize) -> Vec<u8> {
    let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.push(if out.len() % 120 == 119 { b'\n' } else { alphabet[(state % 62) as usize] });
    }
    out
}

async fn content_of(env: &TestEnv, image_id: &str) -> (Value, Vec<u8>) {
    let meta =
        json_of(env.api(Method::GET, &format!("/files/{image_id}")).send().await.expect("meta"), StatusCode::OK).await;
    let bytes = env.api(Method::GET, &format!("/files/{image_id}/content")).send().await.expect("content");
    assert_eq!(bytes.status(), StatusCode::OK);
    (meta, bytes.bytes().await.expect("bytes").to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workspace_files_import_as_office_documents() {
    let env = TestEnv::start().await.expect("env");
    let email = "docs@example.com";
    let drive = env.emulator.state();
    drive.ensure_user(email, "Docs");
    let doc = drive.create_file(email, None, "Notes", DOC, "Hello from a Doc\nSecond line".into());
    let sheet = drive.create_file(email, None, "Budget", SHEET, "item,cost\npaper,3\nink,7\n".into());
    let slides = drive.create_file(email, None, "Deck", SLIDES, "Title slide\nSecond slide".into());
    let drawing = drive.create_file(email, None, "Sketch", DRAWING, "a drawing".into());
    let as_pdf = drive.create_file(email, None, "Printable", DOC, "Print me".into());
    let big = drive.create_file(email, None, "Big", DOC, noisy_text(16 * 1024 * 1024).into());
    let connection =
        env.connect_drive(email).await.expect("connect")["connection"]["id"].as_str().expect("id").to_owned();

    // Browse offers them as importable.
    let root = json_of(
        env.api(Method::GET, &format!("/cloud-storage/connections/{connection}/browse")).send().await.expect("browse"),
        StatusCode::OK,
    )
    .await;
    let entries = root["files"].as_array().expect("files");
    for entry in entries.iter().filter(|e| e["is_folder"] == false) {
        assert_eq!(entry["is_importable"], true, "{entry}");
    }
    assert_eq!(entries.iter().filter(|e| e["is_folder"] == false).count(), 6);

    let created = json_of(
        env.api(Method::POST, "/cloud-storage/import")
            .json(&json!({
                "connection_id": connection,
                "files": [
                    { "id": doc, "name": "Notes.docx" },
                    { "id": sheet, "name": "Budget" },
                    { "id": slides, "name": "Deck.pptx" },
                    { "id": drawing, "name": "Sketch.png" },
                    { "id": as_pdf, "name": "Printable.pdf", "export_mime_type": "application/pdf" },
                    { "id": big, "name": "Big.docx" },
                ],
                "export_formats": { "drawing": "image/png" },
            }))
            .send()
            .await
            .expect("import"),
        StatusCode::OK,
    )
    .await;
    let job_id = created["job_id"].as_str().expect("job");
    let job = env.wait_for_job(job_id, Duration::from_secs(240)).await.expect("job ends");
    let items = json_of(
        env.api(Method::GET, &format!("/cloud-storage/jobs/{job_id}/items")).send().await.expect("items"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(job["status"], "completed", "{job} {items}");
    let ids: Vec<String> =
        created["image_ids"].as_array().expect("ids").iter().map(|v| v.as_str().expect("id").to_owned()).collect();

    let (meta, bytes) = content_of(&env, &ids[0]).await;
    assert_eq!(meta["mime_type"], "application/vnd.openxmlformats-officedocument.wordprocessingml.document");
    assert_eq!(meta["name"], "Notes.docx", "a name that already has the extension is kept");
    assert!(bytes.starts_with(b"PK\x03\x04") && contains(&bytes, "word/document.xml"), "a docx");
    let (meta, bytes) = content_of(&env, &ids[1]).await;
    assert_eq!(meta["mime_type"], "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
    assert_eq!(meta["name"], "Budget.xlsx", "an export gains its format's extension");
    assert!(bytes.starts_with(b"PK\x03\x04") && contains(&bytes, "xl/workbook.xml"), "an xlsx");
    let (meta, bytes) = content_of(&env, &ids[2]).await;
    assert_eq!(meta["mime_type"], "application/vnd.openxmlformats-officedocument.presentationml.presentation");
    assert!(bytes.starts_with(b"PK\x03\x04") && contains(&bytes, "ppt/presentation.xml"), "a pptx");
    let (meta, bytes) = content_of(&env, &ids[3]).await;
    assert_eq!(meta["mime_type"], "image/png");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a png");
    let (meta, bytes) = content_of(&env, &ids[4]).await;
    assert_eq!(meta["mime_type"], "application/pdf");
    assert!(bytes.starts_with(b"%PDF"), "the requested pdf");
    let (meta, bytes) = content_of(&env, &ids[5]).await;
    assert!(bytes.len() > 10 * 1024 * 1024, "past the export cap: {} bytes", bytes.len());
    assert_eq!(meta["size_bytes"], bytes.len());
    assert!(bytes.starts_with(b"PK\x03\x04") && contains(&bytes, "word/document.xml"), "a large docx");
    // files.export refuses more than 10 MB, so those bytes came through the file's exportLinks after a refusal.
    assert!(drive.request_count(&format!("/drive/v3/files/{big}/export")) >= 1, "{:?}", drive.request_counts());
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_format_choices_are_validated() {
    let env = TestEnv::start_with(ferry_testkit::Workers::NONE, &[]).await.expect("env");
    let email = "formats@example.com";
    env.emulator.state().ensure_user(email, "Formats");
    let connection =
        env.connect_drive(email).await.expect("connect")["connection"]["id"].as_str().expect("id").to_owned();
    for (extra, field) in [
        (json!({ "export_formats": { "document": "image/png" } }), "export_formats"),
        (json!({ "export_formats": { "video": "video/mp4" } }), "export_formats"),
        (
            json!({ "files": [{ "id": "a", "name": "a", "export_mime_type": "application/x-nope" }] }),
            "files[0].export_mime_type",
        ),
    ] {
        let mut body = json!({ "connection_id": connection, "files": [{ "id": "a", "name": "a" }] });
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        let error = json_of(
            env.api(Method::POST, "/cloud-storage/import").json(&body).send().await.expect("import"),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(error["error"]["details"]["field"], field, "{body}");
    }
    env.shutdown().await;
}

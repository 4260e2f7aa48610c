//! Workspace files: conversion on upload, real exported documents, the 10 MB cap and exportLinks.

use std::io::{Cursor, Read};

use bytes::Bytes;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestEmulator, assert_google_error, start};

const DOC: &str = "application/vnd.google-apps.document";
const SHEET: &str = "application/vnd.google-apps.spreadsheet";
const SLIDES: &str = "application/vnd.google-apps.presentation";
const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const PPTX: &str = "application/vnd.openxmlformats-officedocument.presentationml.presentation";

fn zip_entry(bytes: &[u8], name: &str) -> String {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).expect("a valid zip");
    let mut out = String::new();
    archive.by_name(name).expect("entry").read_to_string(&mut out).expect("utf-8 entry");
    out
}

async fn upload_converted(t: &TestEmulator, token: &str, name: &str, target: &str, source: &str, body: &[u8]) -> Value {
    let boundary = "conv==boundary";
    let mut multipart = format!(
        "--{boundary}\r\nContent-Type: application/json\r\n\r\n{{\"name\":\"{name}\",\"mimeType\":\"{target}\"}}\r\n--{boundary}\r\nContent-Type: {source}\r\n\r\n"
    )
    .into_bytes();
    multipart.extend_from_slice(body);
    multipart.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let res = t
        .http
        .post(t.url("/upload/drive/v3/files"))
        .bearer_auth(token)
        .query(&[("uploadType", "multipart"), ("fields", "id,name,mimeType,size,exportLinks")])
        .header("Content-Type", format!("multipart/related; boundary=\"{boundary}\""))
        .body(multipart)
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.expect("json")
}

async fn export(t: &TestEmulator, token: &str, id: &str, mime: &str) -> (StatusCode, Bytes) {
    let res = t
        .http
        .get(t.url(&format!("/drive/v3/files/{id}/export")))
        .bearer_auth(token)
        .query(&[("mimeType", mime)])
        .send()
        .await
        .expect("export");
    let status = res.status();
    (status, res.bytes().await.expect("body"))
}

#[tokio::test]
async fn uploads_with_a_workspace_type_convert_and_export_as_real_documents() {
    let t = start().await;
    let tokens = t.login("converter@ferry.test").await;
    let text = "Meeting notes\nAction: ship the emulator";
    let doc = upload_converted(&t, &tokens.access, "Notes", DOC, "text/plain", text.as_bytes()).await;
    assert_eq!(doc["mimeType"], DOC);
    assert!(doc.get("size").is_none(), "Workspace files have no size: {doc}");
    let id = doc["id"].as_str().expect("id");

    let (s, body) = export(&t, &tokens.access, id, "text/plain").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, text);
    let (s, docx) = export(&t, &tokens.access, id, DOCX).await;
    assert_eq!(s, StatusCode::OK);
    assert!(zip_entry(&docx, "word/document.xml").contains("Action: ship the emulator"));
    assert!(zip_entry(&docx, "[Content_Types].xml").contains("wordprocessingml.document.main+xml"));
    let (s, pdf) = export(&t, &tokens.access, id, "application/pdf").await;
    assert_eq!(s, StatusCode::OK);
    assert!(pdf.starts_with(b"%PDF-"));
    let (s, html) = export(&t, &tokens.access, id, "text/html").await;
    assert_eq!(s, StatusCode::OK);
    assert!(String::from_utf8_lossy(&html).contains("<p>Meeting notes</p>"));
    let (s, odt) = export(&t, &tokens.access, id, "application/vnd.oasis.opendocument.text").await;
    assert_eq!(s, StatusCode::OK);
    assert!(zip_entry(&odt, "content.xml").contains("Meeting notes"));

    // A docx uploaded as a Doc converts from its text; so does HTML.
    let from_docx = upload_converted(&t, &tokens.access, "Again", DOC, DOCX, &docx).await;
    let (_, body) = export(&t, &tokens.access, from_docx["id"].as_str().expect("id"), "text/plain").await;
    assert_eq!(body, text);
    let from_html = upload_converted(
        &t,
        &tokens.access,
        "Page",
        DOC,
        "text/html",
        b"<html><body><h1>Title</h1><p>Body</p></body></html>",
    )
    .await;
    let (_, body) = export(&t, &tokens.access, from_html["id"].as_str().expect("id"), "text/plain").await;
    assert_eq!(body, "Title\nBody");

    // Sheets: CSV in, CSV/TSV/XLSX out.
    let csv = "item,qty\r\napples,3\r\n\"pears, green\",5";
    let sheet = upload_converted(&t, &tokens.access, "Stock", SHEET, "text/csv", csv.as_bytes()).await;
    let sid = sheet["id"].as_str().expect("id");
    let (s, body) = export(&t, &tokens.access, sid, "text/csv").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, csv);
    let (_, xlsx) = export(&t, &tokens.access, sid, XLSX).await;
    let sheet_xml = zip_entry(&xlsx, "xl/worksheets/sheet1.xml");
    assert!(sheet_xml.contains("pears, green") && sheet_xml.contains("<v>5</v>"), "{sheet_xml}");
    let from_xlsx = upload_converted(&t, &tokens.access, "Stock 2", SHEET, XLSX, &xlsx).await;
    let (_, body) = export(&t, &tokens.access, from_xlsx["id"].as_str().expect("id"), "text/csv").await;
    assert_eq!(body, csv);
    let (_, tsv) = export(&t, &tokens.access, sid, "text/tab-separated-values").await;
    assert_eq!(tsv, "item\tqty\napples\t3\npears, green\t5");

    // Slides: text in (slides split by blank lines), PPTX out with one slide part each.
    let deck = "Quarterly review\nRevenue up\n\nNext steps\nHire";
    let slides = upload_converted(&t, &tokens.access, "Deck", SLIDES, "text/plain", deck.as_bytes()).await;
    let pid = slides["id"].as_str().expect("id");
    let (s, pptx) = export(&t, &tokens.access, pid, PPTX).await;
    assert_eq!(s, StatusCode::OK);
    assert!(zip_entry(&pptx, "ppt/slides/slide1.xml").contains("Quarterly review"));
    assert!(zip_entry(&pptx, "ppt/slides/slide2.xml").contains("Hire"));
    assert!(zip_entry(&pptx, "ppt/presentation.xml").contains("sldIdLst"));
    let (s, png) = export(&t, &tokens.access, pid, "image/png").await;
    assert_eq!(s, StatusCode::OK);
    assert!(png.starts_with(b"\x89PNG"));
}

#[tokio::test]
async fn export_errors_and_the_size_cap_with_export_links_past_it() {
    let t = start().await;
    let me = "big-export@ferry.test";
    let state = t.emu.state();
    // 11 MB of text: the text/plain export exceeds the 10 MB cap.
    let big: String = "All work and no play makes a dull emulator.\n".repeat(11 * 1024 * 1024 / 44 + 1);
    let doc = state.create_file(me, None, "Huge", DOC, Bytes::from(big.clone()));
    let binary = state.create_file(me, None, "b.txt", "text/plain", Bytes::from_static(b"bin"));
    let folder = state.create_folder(me, None, "F");
    let tokens = t.login(me).await;

    let (s, body) = export(&t, &tokens.access, &doc, "text/plain").await;
    let body: Value = serde_json::from_slice(&body).expect("json error");
    assert_google_error(s, &body, 403, "exportSizeLimitExceeded");
    // Compressed formats of the same doc stay under the cap.
    let (s, _) = export(&t, &tokens.access, &doc, DOCX).await;
    assert_eq!(s, StatusCode::OK);

    let (s, meta) = t.get_json(&tokens.access, &format!("/drive/v3/files/{doc}"), &[("fields", "exportLinks")]).await;
    assert_eq!(s, StatusCode::OK);
    let link = meta["exportLinks"]["text/plain"].as_str().expect("text/plain export link");
    assert!(link.starts_with(t.emu.base_url()), "{link}");
    assert_eq!(meta["exportLinks"].as_object().map(|m| m.len()), Some(9), "{meta}");
    let res = t.http.get(link).bearer_auth(&tokens.access).send().await.expect("export link");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.expect("body").len(), big.len());
    // Export links need the user's token like any Drive call.
    let res = t.http.get(link).send().await.expect("export link");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    for (id, mime, status, reason) in [
        (binary.as_str(), "text/plain", 403, "fileNotExportable"),
        (folder.as_str(), "application/pdf", 403, "fileNotExportable"),
        (doc.as_str(), "image/png", 400, "badRequest"),
        ("1nope000000000000000", "text/plain", 404, "notFound"),
    ] {
        let (s, body) = export(&t, &tokens.access, id, mime).await;
        let body: Value = serde_json::from_slice(&body).expect("json error");
        assert_google_error(s, &body, status, reason);
    }
    let (s, body) = t.get_json(&tokens.access, &format!("/drive/v3/files/{doc}/export"), &[]).await;
    assert_google_error(s, &body, 400, "required");
    // Binary files have no exportLinks.
    let (_, meta) = t.get_json(&tokens.access, &format!("/drive/v3/files/{binary}"), &[("fields", "*")]).await;
    assert!(meta.get("exportLinks").is_none());
}

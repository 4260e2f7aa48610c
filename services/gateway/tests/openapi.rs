//! The committed `docs/openapi.json` must be what the code generates. After changing the API, regenerate it
//! with `FERRY_UPDATE_OPENAPI=1 cargo test -p ferry-gateway --test openapi`.

use std::path::PathBuf;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

#[test]
fn committed_openapi_matches_the_code() {
    let generated = ferry_gateway::openapi::document_json();
    let path = committed_path();
    if std::env::var("FERRY_UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("writing docs/openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is out of date with the code; regenerate it with \
         `FERRY_UPDATE_OPENAPI=1 cargo test -p ferry-gateway --test openapi` and commit the result"
    );
}

#[test]
fn the_description_is_openapi_3_1_and_covers_the_seed_endpoints() {
    let doc: serde_json::Value = serde_json::from_str(&ferry_gateway::openapi::document_json()).expect("valid JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/cloud-storage/auth/{provider}", "post"),
        ("/cloud-storage/auth/{provider}/callback", "get"),
        ("/cloud-storage/auth/{provider}/callback", "post"),
        ("/cloud-storage/connections", "get"),
        ("/cloud-storage/connections/{connection_id}", "delete"),
        ("/cloud-storage/connections/{connection_id}/browse", "get"),
        ("/cloud-storage/connections/{connection_id}/picker-token", "get"),
        ("/cloud-storage/picker-proxy", "post"),
        ("/cloud-storage/import", "post"),
        ("/cloud-storage/export", "post"),
        ("/cloud-storage/jobs", "get"),
        ("/cloud-storage/jobs/{job_id}", "get"),
        ("/cloud-storage/jobs/{job_id}/items", "get"),
        ("/cloud-storage/jobs/{job_id}/cancel", "post"),
        ("/cloud-storage/jobs/{job_id}/events", "get"),
        ("/files", "get"),
        ("/files", "post"),
        ("/files/{file_id}", "get"),
        ("/files/{file_id}", "patch"),
        ("/files/{file_id}", "delete"),
        ("/files/{file_id}/content", "get"),
        ("/folders", "get"),
        ("/folders", "post"),
        ("/folders/{folder_id}", "get"),
        ("/folders/{folder_id}", "patch"),
        ("/folders/{folder_id}", "delete"),
    ] {
        let path = format!("/api/v2{path}");
        assert!(paths.get(&path).and_then(|p| p.get(method)).is_some(), "{method} {path} is described");
    }
    assert!(doc["components"]["schemas"]["ImportRequest"]["properties"]["collection_id"].is_object());
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
}

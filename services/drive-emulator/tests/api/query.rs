//! files.list `q`: a table of expressions against a known set of files, and the ones Drive refuses.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_google_error, start};

const FOLDER: &str = "application/vnd.google-apps.folder";

#[tokio::test]
async fn a_table_of_q_expressions() {
    let t = start().await;
    let me = "querier@ferry.test";
    let tok = t.login(me).await.access;
    let create = |body: Value| {
        let tok = tok.clone();
        let url = t.url("/drive/v3/files");
        let http = t.http.clone();
        async move {
            let res = http.post(url).bearer_auth(tok).query(&[("fields", "id")]).json(&body).send().await;
            let v: Value = res.expect("create").json().await.expect("json");
            v["id"].as_str().expect("id").to_owned()
        }
    };
    let docs = create(json!({"name": "Docs", "mimeType": FOLDER, "modifiedTime": "2024-01-01T00:00:00Z"})).await;
    create(json!({"name": "Annual Report.pdf", "mimeType": "application/pdf", "parents": [docs],
        "createdTime": "2023-05-01T10:00:00Z", "modifiedTime": "2024-03-01T12:00:00Z"}))
    .await;
    create(json!({"name": "report draft.txt", "mimeType": "text/plain", "parents": [docs], "starred": true,
        "createdTime": "2024-02-01T10:00:00Z", "modifiedTime": "2024-06-15T08:30:00Z"}))
    .await;
    create(json!({"name": "beach.jpg", "mimeType": "image/jpeg",
        "createdTime": "2022-07-01T10:00:00Z", "modifiedTime": "2022-07-02T10:00:00Z"}))
    .await;
    create(json!({"name": "it's here.png", "mimeType": "image/png",
        "createdTime": "2022-08-01T10:00:00Z", "modifiedTime": "2022-08-01T10:00:00Z"}))
    .await;
    let old = create(json!({"name": "old notes.txt", "mimeType": "text/plain",
        "createdTime": "2021-01-01T00:00:00Z", "modifiedTime": "2021-01-01T00:00:00Z"}))
    .await;
    let res = t
        .http
        .patch(t.url(&format!("/drive/v3/files/{old}")))
        .bearer_auth(&tok)
        .json(&json!({"trashed": true, "modifiedTime": "2021-01-01T00:00:00Z"}))
        .send()
        .await
        .expect("trash");
    assert_eq!(res.status(), StatusCode::OK);

    let all_live = ["Annual Report.pdf", "beach.jpg", "Docs", "it's here.png", "report draft.txt"];
    let table: Vec<(String, Vec<&str>)> = vec![
        ("trashed = false".into(), all_live.to_vec()),
        ("trashed = true".into(), vec!["old notes.txt"]),
        (format!("'{docs}' in parents"), vec!["Annual Report.pdf", "report draft.txt"]),
        ("'root' in parents and trashed = false".into(), vec!["beach.jpg", "Docs", "it's here.png"]),
        ("name = 'beach.jpg'".into(), vec!["beach.jpg"]),
        (
            "name != 'beach.jpg' and trashed = false".into(),
            vec!["Annual Report.pdf", "Docs", "it's here.png", "report draft.txt"],
        ),
        // contains: word-prefix, case-insensitive.
        ("name contains 'report'".into(), vec!["Annual Report.pdf", "report draft.txt"]),
        ("name contains 'port'".into(), vec![]),
        ("name = 'it\\'s here.png'".into(), vec!["it's here.png"]),
        ("mimeType = 'image/jpeg'".into(), vec!["beach.jpg"]),
        ("mimeType contains 'image/'".into(), vec!["beach.jpg", "it's here.png"]),
        (
            format!("mimeType != '{FOLDER}' and trashed = false"),
            vec!["Annual Report.pdf", "beach.jpg", "it's here.png", "report draft.txt"],
        ),
        ("mimeType = 'text/plain' AND trashed = FALSE".into(), vec!["report draft.txt"]),
        ("mimeType = 'image/png' or mimeType = 'application/pdf'".into(), vec!["Annual Report.pdf", "it's here.png"]),
        (
            "not mimeType contains 'image/' and trashed = false".into(),
            vec!["Annual Report.pdf", "Docs", "report draft.txt"],
        ),
        (
            "(name contains 'beach' or name contains 'annual') and not trashed = true".into(),
            vec!["Annual Report.pdf", "beach.jpg"],
        ),
        ("name contains 'report' and (mimeType = 'text/plain' or starred = true)".into(), vec!["report draft.txt"]),
        ("starred = true".into(), vec!["report draft.txt"]),
        ("modifiedTime > '2024-01-01T00:00:00Z'".into(), vec!["Annual Report.pdf", "report draft.txt"]),
        ("modifiedTime >= '2024-01-01T00:00:00Z'".into(), vec!["Annual Report.pdf", "Docs", "report draft.txt"]),
        ("modifiedTime < '2022-07-02T10:00:00Z'".into(), vec!["old notes.txt"]),
        ("modifiedTime <= '2022-07-02T10:00:00'".into(), vec!["beach.jpg", "old notes.txt"]),
        (
            "createdTime >= '2023-01-01T00:00:00Z' and createdTime < '2024-01-01T00:00:00Z'".into(),
            vec!["Annual Report.pdf"],
        ),
        ("createdTime = '2022-08-01T10:00:00.000Z'".into(), vec!["it's here.png"]),
        (format!("'{me}' in owners and name contains 'beach'"), vec!["beach.jpg"]),
        ("'someone@else.test' in owners".into(), vec![]),
        ("fullText contains 'draft'".into(), vec!["report draft.txt"]),
        ("sharedWithMe = true".into(), vec![]),
    ];
    for (q, want) in table {
        let (s, body) = t.get_json(&tok, "/drive/v3/files", &[("q", q.as_str()), ("fields", "files(name)")]).await;
        assert_eq!(s, StatusCode::OK, "{q}: {body}");
        let mut got: Vec<String> = body["files"]
            .as_array()
            .expect("files")
            .iter()
            .map(|f| f["name"].as_str().unwrap_or("").to_owned())
            .collect();
        got.sort_by_key(|n| n.to_lowercase());
        let mut want: Vec<String> = want.iter().map(|n| (*n).to_owned()).collect();
        want.sort_by_key(|n| n.to_lowercase());
        assert_eq!(got, want, "q = {q}");
    }

    for bad in [
        "name = ",
        "name = 'unterminated",
        "size > 10",
        "trashed = maybe",
        "(name = 'a'",
        "name = 'a' and",
        "modifiedTime > 'yesterday'",
        "name ~ 'a'",
        "'a' in children",
    ] {
        let (s, body) = t.get_json(&tok, "/drive/v3/files", &[("q", bad)]).await;
        assert_google_error(s, &body, 400, "invalid");
        assert_eq!(body["error"]["errors"][0]["location"], "q", "{bad}: {body}");
    }
    t.emu.stop().await;
}

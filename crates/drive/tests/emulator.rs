//! The OAuth and Drive clients against the real Drive emulator, in-process on 127.0.0.1:0.
//! Each test starts its own emulator and uses its own user, so tests run in parallel.

use std::collections::HashMap;

use bytes::Bytes;
use drive_emulator::{EmulatorConfig, RunningEmulator};
use ferry_drive::{
    DriveClient, DriveError, GoogleEndpoints, GoogleOAuth, NewDriveFile, OAuthClientConfig, OAuthError, TokenSet,
    UploadProgress,
};
use futures::TryStreamExt;
use md5::{Digest, Md5};
use url::Url;

const CLIENT_ID: &str = "ferry-dev-client";
const CLIENT_SECRET: &str = "ferry-dev-secret";
const REDIRECT_URI: &str = "http://127.0.0.1:1/oauth/callback";
const KIB: usize = 1024;

struct Env {
    emulator: RunningEmulator,
    oauth: GoogleOAuth,
    drive: DriveClient,
}

fn http() -> reqwest::Client {
    // Ignore the error: another test in this binary may have installed it first.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder().build().expect("reqwest client")
}

fn endpoints(base: &str) -> GoogleEndpoints {
    GoogleEndpoints {
        auth_url: format!("{base}/o/oauth2/v2/auth"),
        token_url: format!("{base}/token"),
        revoke_url: format!("{base}/revoke"),
        userinfo_url: format!("{base}/v1/userinfo"),
        drive_root_url: format!("{base}/"),
    }
}

async fn start() -> Env {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let emulator = drive_emulator::spawn(EmulatorConfig::default(), listener).await.expect("emulator");
    let endpoints = endpoints(emulator.base_url());
    let http = http();
    let oauth = GoogleOAuth::new(
        &endpoints,
        OAuthClientConfig {
            client_id: CLIENT_ID.into(),
            timeouts: ferry_drive::HttpTimeouts::default(),
            client_secret: CLIENT_SECRET.into(),
            redirect_uri: REDIRECT_URI.into(),
            scopes: vec![
                "openid".into(),
                "email".into(),
                "profile".into(),
                "https://www.googleapis.com/auth/drive".into(),
            ],
        },
        http.clone(),
    )
    .expect("oauth client");
    let drive = DriveClient::new(&endpoints.drive_root_url, http).expect("drive client");
    Env { emulator, oauth, drive }
}

/// Runs the browser part of the code flow: follow the authorization URL to the emulator's
/// auto-approving consent, which redirects to our redirect URI with the code.
async fn authorize(env: &Env, email: &str) -> (String, String) {
    authorize_via(env, email, None).await
}

async fn authorize_via(env: &Env, email: &str, redirect_override: Option<&str>) -> (String, String) {
    let state = format!("state-{email}");
    let req = env.oauth.authorization_request(&state, Some(email), redirect_override);
    let browser =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("browser client");
    let resp = browser.get(&req.url).send().await.expect("authorize");
    assert_eq!(resp.status().as_u16(), 302, "authorize should redirect");
    let location = resp.headers().get(reqwest::header::LOCATION).expect("Location").to_str().expect("ascii Location");
    let location = Url::parse(location).expect("absolute Location");
    let expected = redirect_override.unwrap_or(REDIRECT_URI);
    assert!(location.as_str().starts_with(expected), "redirected to {location}");
    let params: HashMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(params.get("state"), Some(&state), "state must round-trip");
    let code = params.get("code").expect("code in redirect").clone();
    (code, req.pkce_verifier)
}

/// A connected user: the full code flow, returning the token set.
async fn connect(env: &Env, email: &str) -> TokenSet {
    env.emulator.state().ensure_user(email, "Test User");
    let (code, verifier) = authorize(env, email).await;
    env.oauth.exchange_code(&code, &verifier, None).await.expect("code exchange")
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

/// Deterministic, incompressible-looking bytes.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

async fn collect(download: ferry_drive::Download) -> Vec<u8> {
    let chunks: Vec<Bytes> = download.stream.try_collect().await.expect("download stream");
    chunks.concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_flow_userinfo_refresh_and_revoke() {
    let env = start().await;
    let email = "flow@ferry.test";
    let tokens = connect(&env, email).await;
    assert!(!tokens.access_token.is_empty());
    let refresh_token = tokens.refresh_token.clone().expect("offline consent gives a refresh token");
    assert!(tokens.expires_at > chrono::Utc::now());

    let me = env.oauth.userinfo(&tokens.access_token).await.expect("userinfo");
    assert_eq!(me.email.as_deref(), Some(email));
    assert!(!me.sub.is_empty());

    let about = env.drive.about(&tokens.access_token).await.expect("about");
    assert_eq!(about.email.as_deref(), Some(email));
    assert_eq!(about.display_name.as_deref(), Some("Test User"));
    assert!(about.storage_limit.is_some_and(|l| l > 0));
    assert!(about.storage_usage.is_some());

    // Refresh: a new access token that works; Google sends no new refresh token.
    let refreshed = env.oauth.refresh(&refresh_token).await.expect("refresh");
    assert_ne!(refreshed.access_token, tokens.access_token);
    assert_eq!(refreshed.refresh_token, None);
    let me_again = env.oauth.userinfo(&refreshed.access_token).await.expect("userinfo after refresh");
    assert_eq!(me_again.sub, me.sub);

    // Revoking kills the grant: refresh now needs re-authorisation.
    env.oauth.revoke(&refresh_token).await.expect("revoke");
    let err = env.oauth.refresh(&refresh_token).await.expect_err("refresh after revoke");
    assert!(matches!(err, OAuthError::InvalidGrant(_)), "{err:?}");
    assert!(!err.to_string().contains(&refresh_token));
    // Revoking again is not an error.
    env.oauth.revoke(&refresh_token).await.expect("second revoke");
    // The access tokens died with the grant.
    let err = env.oauth.userinfo(&refreshed.access_token).await.expect_err("userinfo after revoke");
    assert_eq!(err, OAuthError::Unauthorized);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_exchange_failures_are_classified() {
    let env = start().await;
    let email = "codefail@ferry.test";
    env.emulator.state().ensure_user(email, "Code Fail");

    // A code can be used once.
    let (code, verifier) = authorize(&env, email).await;
    env.oauth.exchange_code(&code, &verifier, None).await.expect("first exchange");
    let err = env.oauth.exchange_code(&code, &verifier, None).await.expect_err("reused code");
    assert!(matches!(err, OAuthError::InvalidGrant(_)), "{err:?}");

    // The PKCE verifier must match the challenge.
    let (code, _verifier) = authorize(&env, email).await;
    let err = env
        .oauth
        .exchange_code(&code, "wrong-verifier-wrong-verifier-wrong-verifier-123", None)
        .await
        .expect_err("bad verifier");
    assert!(matches!(err, OAuthError::InvalidGrant(_)), "{err:?}");

    // A per-call redirect URI must be repeated at the exchange.
    let other = "http://127.0.0.1:2/other/callback";
    let (code, verifier) = authorize_via(&env, email, Some(other)).await;
    let err = env.oauth.exchange_code(&code, &verifier, None).await.expect_err("redirect mismatch");
    match &err {
        OAuthError::Provider { status, error, .. } => {
            assert_eq!((*status, error.as_str()), (400, "redirect_uri_mismatch"))
        }
        other => panic!("expected Provider, got {other:?}"),
    }
    let (code, verifier) = authorize_via(&env, email, Some(other)).await;
    env.oauth.exchange_code(&code, &verifier, Some(other)).await.expect("exchange with the same redirect URI");

    // A wrong client secret is a configuration problem, not a dead grant.
    let bad = GoogleOAuth::new(
        &endpoints(env.emulator.base_url()),
        OAuthClientConfig {
            client_id: CLIENT_ID.into(),
            timeouts: ferry_drive::HttpTimeouts::default(),
            client_secret: "not-the-secret".into(),
            redirect_uri: REDIRECT_URI.into(),
            scopes: vec!["openid".into()],
        },
        http(),
    )
    .expect("oauth client");
    let (code, verifier) = authorize(&env, email).await;
    let err = bad.exchange_code(&code, &verifier, None).await.expect_err("bad secret");
    assert!(matches!(err, OAuthError::InvalidClient(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_folder_pages_folders_first_by_name() {
    let env = start().await;
    let email = "list@ferry.test";
    let tokens = connect(&env, email).await;
    let state = env.emulator.state();
    let parent = state.create_folder(email, None, "listing");
    for name in ["delta.txt", "alpha.txt", "echo.txt", "charlie.txt"] {
        state.create_file(email, Some(&parent), name, "text/plain", Bytes::from(name.as_bytes().to_vec()));
    }
    state.create_folder(email, Some(&parent), "zulu-folder");
    state.create_folder(email, Some(&parent), "bravo-folder");
    let trashed = state.create_file(email, Some(&parent), "trashed.txt", "text/plain", Bytes::from_static(b"gone"));
    assert!(state.set_trashed(&trashed, true));

    let mut names = Vec::new();
    let mut pages = 0;
    let mut page_token: Option<String> = None;
    loop {
        let page =
            env.drive.list_folder(&tokens.access_token, &parent, page_token.as_deref(), 3).await.expect("list page");
        pages += 1;
        assert!(page.files.len() <= 3);
        for f in &page.files {
            assert_eq!(f.parents, vec![parent.clone()]);
            if f.is_folder() {
                assert_eq!(f.size, None);
            } else {
                assert_eq!(f.size, Some(f.name.len() as u64));
                assert_eq!(f.md5_checksum.as_deref(), Some(md5_hex(f.name.as_bytes()).as_str()));
                assert!(f.modified_time.is_some());
            }
            assert!(!f.trashed);
            names.push(f.name.clone());
        }
        match page.next_page_token {
            Some(t) => page_token = Some(t),
            None => break,
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(names, ["bravo-folder", "zulu-folder", "alpha.txt", "charlie.txt", "delta.txt", "echo.txt"]);

    // "root" lists My Drive.
    let root = env.drive.list_folder(&tokens.access_token, "root", None, 100).await.expect("list root");
    assert!(root.files.iter().any(|f| f.id == parent && f.is_folder()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_file_and_ranged_download() {
    let env = start().await;
    let email = "download@ferry.test";
    let tokens = connect(&env, email).await;
    let content = pattern(700 * KIB + 123, 7);
    let id = env.emulator.state().create_file(
        email,
        None,
        "photo.bin",
        "application/octet-stream",
        Bytes::from(content.clone()),
    );

    let file = env.drive.get_file(&tokens.access_token, &id).await.expect("get_file");
    assert_eq!(file.id, id);
    assert_eq!(file.name, "photo.bin");
    assert_eq!(file.mime_type, "application/octet-stream");
    assert_eq!(file.size, Some(content.len() as u64));
    assert_eq!(file.md5_checksum.as_deref(), Some(md5_hex(&content).as_str()));
    assert!(!file.is_folder() && !file.is_google_workspace());
    assert!(file.created_time.is_some() && file.modified_time.is_some());

    let whole = env.drive.download(&tokens.access_token, &id, 0).await.expect("download");
    assert_eq!(whole.total_size, Some(content.len() as u64));
    assert_eq!(collect(whole).await, content);

    let offset = 300 * KIB + 5;
    let tail = env.drive.download(&tokens.access_token, &id, offset as u64).await.expect("ranged download");
    assert_eq!(tail.total_size, Some(content.len() as u64));
    assert_eq!(collect(tail).await, &content[offset..]);

    // Resuming a finished download yields nothing more.
    let done = env.drive.download(&tokens.access_token, &id, content.len() as u64).await.expect("download at end");
    assert_eq!(done.total_size, Some(content.len() as u64));
    assert!(collect(done).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspace_files_export_but_do_not_download() {
    let env = start().await;
    let email = "workspace@ferry.test";
    let tokens = connect(&env, email).await;
    let id = env.emulator.state().create_file(
        email,
        None,
        "Notes",
        "application/vnd.google-apps.document",
        Bytes::from_static(b"hello"),
    );
    let file = env.drive.get_file(&tokens.access_token, &id).await.expect("get_file");
    assert!(file.is_google_workspace());
    assert_eq!(file.size, None);
    let err = env.drive.download(&tokens.access_token, &id, 0).await.expect_err("workspace download");
    match &err {
        DriveError::Forbidden { reason, .. } => assert_eq!(reason, "fileNotDownloadable"),
        other => panic!("expected Forbidden, got {other:?}"),
    }
    assert!(!err.is_retryable());
    assert_eq!(err.code(), "drive_forbidden");

    // Workspace files come out through export instead.
    let exported = env.drive.export(&tokens.access_token, &id, "text/plain").await.expect("export");
    assert_eq!(collect(exported).await, b"hello");
    let err =
        env.drive.export(&tokens.access_token, &id, "image/x-nonsense").await.expect_err("unsupported conversion");
    assert!(matches!(err, DriveError::BadRequest { .. }), "{err:?}");
    let binary = env.emulator.state().create_file(email, None, "plain.txt", "text/plain", Bytes::from_static(b"plain"));
    let err =
        env.drive.export(&tokens.access_token, &binary, "application/pdf").await.expect_err("export of a binary file");
    match &err {
        DriveError::Forbidden { reason, .. } => assert_eq!(reason, "fileNotExportable"),
        other => panic!("expected Forbidden, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumable_upload_in_chunks_with_status_query() {
    let env = start().await;
    let email = "upload@ferry.test";
    let tokens = connect(&env, email).await;
    let state = env.emulator.state();
    let folder = state.create_folder(email, None, "uploads");
    let content = Bytes::from(pattern(3 * 1024 * KIB, 42));
    let total = content.len() as u64;
    let id = env.drive.generate_ids(&tokens.access_token, 1).await.expect("generate_ids").pop().expect("one id");

    let meta = NewDriveFile {
        id: Some(id.clone()),
        name: "big.bin".into(),
        mime_type: "application/octet-stream".into(),
        parents: vec![folder.clone()],
    };
    let session = env.drive.start_resumable_upload(&tokens.access_token, &meta, total).await.expect("start session");
    assert!(session.starts_with("http://127.0.0.1:"), "absolute session URI");

    let chunk_size = 4 * 256 * KIB as u64; // 1 MiB: a multiple of 256 KiB
    let mut offset = 0u64;
    let mut asked_status = false;
    let file = loop {
        let end = (offset + chunk_size).min(total);
        let chunk = content.slice(offset as usize..end as usize);
        match env.drive.upload_chunk(&session, offset, chunk, total).await.expect("chunk") {
            UploadProgress::Incomplete { committed } => {
                assert_eq!(committed, end);
                offset = committed;
                if !asked_status {
                    // As after a crash: ask the server where to resume.
                    asked_status = true;
                    let status = env.drive.upload_status(&session, total).await.expect("status");
                    assert_eq!(status, UploadProgress::Incomplete { committed });
                }
            }
            UploadProgress::Complete(file) => {
                assert_eq!(end, total);
                break file;
            }
        }
    };
    assert!(asked_status);
    assert_eq!(file.id, id);
    assert_eq!(file.name, "big.bin");
    assert_eq!(file.size, Some(total));
    assert_eq!(file.parents, vec![folder.clone()]);
    assert_eq!(file.md5_checksum.as_deref(), Some(md5_hex(&content).as_str()));
    assert_eq!(state.file_content(&id).as_deref(), Some(&content[..]));

    // A finished session reports completion on a status query.
    match env.drive.upload_status(&session, total).await.expect("status after") {
        UploadProgress::Complete(f) => assert_eq!(f.id, id),
        other => panic!("expected Complete, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumable_upload_of_an_empty_file() {
    let env = start().await;
    let email = "empty@ferry.test";
    let tokens = connect(&env, email).await;
    let meta = NewDriveFile { id: None, name: "empty.txt".into(), mime_type: "text/plain".into(), parents: vec![] };
    let session = env.drive.start_resumable_upload(&tokens.access_token, &meta, 0).await.expect("start session");
    let file = match env.drive.upload_chunk(&session, 0, Bytes::new(), 0).await.expect("empty chunk") {
        UploadProgress::Complete(file) => file,
        other => panic!("expected Complete, got {other:?}"),
    };
    assert_eq!(file.size, Some(0));
    assert_eq!(file.md5_checksum.as_deref(), Some(md5_hex(b"").as_str()));
    let download = env.drive.download(&tokens.access_token, &file.id, 0).await.expect("download empty");
    assert!(collect(download).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_folder_with_generated_id_is_idempotent() {
    let env = start().await;
    let email = "folders@ferry.test";
    let tokens = connect(&env, email).await;
    let ids = env.drive.generate_ids(&tokens.access_token, 3).await.expect("generate_ids");
    assert_eq!(ids.len(), 3);
    let parent = env
        .drive
        .create_folder(&tokens.access_token, Some(&ids[0]), "Ferry import", None)
        .await
        .expect("create parent");
    assert_eq!(parent.id, ids[0]);
    assert!(parent.is_folder());
    let child = env
        .drive
        .create_folder(&tokens.access_token, Some(&ids[1]), "2024", Some(&parent.id))
        .await
        .expect("create child");
    assert_eq!(child.parents, vec![parent.id.clone()]);

    let err = env
        .drive
        .create_folder(&tokens.access_token, Some(&ids[1]), "2024", Some(&parent.id))
        .await
        .expect_err("same id twice");
    assert_eq!(err, DriveError::AlreadyExists);
    assert_eq!(err.code(), "drive_already_exists");
    let children = env.emulator.state().children(&parent.id);
    assert_eq!(children.len(), 1, "the retry must not duplicate the folder");

    // Without an id Drive picks one.
    let free = env.drive.create_folder(&tokens.access_token, None, "no id", None).await.expect("create without id");
    assert!(!free.id.is_empty() && !ids.contains(&free.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_files_are_not_found() {
    let env = start().await;
    let tokens = connect(&env, "missing@ferry.test").await;
    let err = env.drive.get_file(&tokens.access_token, "no-such-file").await.expect_err("missing file");
    assert!(matches!(err, DriveError::NotFound(_)), "{err:?}");
    assert_eq!(err.code(), "drive_not_found");
    assert!(!err.is_retryable());

    let err = env.drive.download(&tokens.access_token, "no-such-file", 0).await.expect_err("missing download");
    assert!(matches!(err, DriveError::NotFound(_)), "{err:?}");

    let err = env.drive.list_folder(&tokens.access_token, "no-such-folder", None, 10).await;
    // Drive lists nothing for an unknown parent rather than failing; either is acceptable here,
    // but never a transport or decode error.
    if let Err(e) = err {
        assert!(matches!(e, DriveError::NotFound(_)), "{e:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_access_token_is_unauthorized_until_refreshed() {
    let env = start().await;
    let email = "expired@ferry.test";
    let tokens = connect(&env, email).await;
    env.drive.list_folder(&tokens.access_token, "root", None, 10).await.expect("list with fresh token");

    env.emulator.state().expire_access_tokens();
    let err = env.drive.list_folder(&tokens.access_token, "root", None, 10).await.expect_err("expired token");
    assert_eq!(err, DriveError::Unauthorized);
    assert_eq!(err.code(), "drive_unauthorized");
    assert!(!err.is_retryable());
    assert!(!err.to_string().contains(&tokens.access_token));
    let err = env.oauth.userinfo(&tokens.access_token).await.expect_err("userinfo with expired token");
    assert_eq!(err, OAuthError::Unauthorized);

    let refresh_token = tokens.refresh_token.expect("refresh token");
    let fresh = env.oauth.refresh(&refresh_token).await.expect("refresh");
    env.drive.list_folder(&fresh.access_token, "root", None, 10).await.expect("list after refresh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_and_dead_servers_are_classified() {
    let env = start().await;
    let err = env.drive.about("not-a-token").await.expect_err("bad token");
    assert_eq!(err, DriveError::Unauthorized);

    // Nothing listens on a closed port: a retryable transport error without the URL.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let dead = DriveClient::new(&format!("http://127.0.0.1:{port}/"), http()).expect("client");
    let err = dead
        .upload_status(&format!("http://127.0.0.1:{port}/upload?upload_id=SECRET"), 10)
        .await
        .expect_err("dead server");
    assert!(matches!(err, DriveError::Transport(_)), "{err:?}");
    assert!(err.is_retryable());
    assert!(!err.to_string().contains("SECRET"), "{err}");
}

/// `PATCH`es a file the way a Drive client does: metadata (rename, trash) with a JSON body, moves with
/// `addParents`/`removeParents`, content with `uploadType=media`.
async fn patch(env: &Env, token: &str, file_id: &str, query: &[(&str, &str)], body: serde_json::Value) {
    let url = format!("{}/drive/v3/files/{file_id}", env.emulator.base_url());
    let response = http().patch(url).bearer_auth(token).query(query).json(&body).send().await.expect("patch");
    assert!(response.status().is_success(), "PATCH {file_id}: {}", response.status());
}

async fn replace_content(env: &Env, token: &str, file_id: &str, content: &[u8]) {
    let url = format!("{}/upload/drive/v3/files/{file_id}", env.emulator.base_url());
    let response = http()
        .patch(url)
        .bearer_auth(token)
        .query(&[("uploadType", "media")])
        .body(content.to_vec())
        .send()
        .await
        .expect("upload");
    assert!(response.status().is_success(), "content of {file_id}: {}", response.status());
}

/// Every change from `page_token` on, page by page, with the token the next run starts from.
async fn all_changes(
    env: &Env,
    token: &str,
    page_token: &str,
    drive_id: Option<&str>,
) -> (HashMap<String, ferry_drive::Change>, String) {
    let mut changes = HashMap::new();
    let mut next = page_token.to_owned();
    loop {
        let page = env.drive.list_changes(token, &next, drive_id, 2).await.expect("changes.list");
        for change in page.changes {
            changes.insert(change.file_id.clone(), change);
        }
        match (page.next_page_token, page.new_start_page_token) {
            (Some(more), _) => next = more,
            (None, Some(start)) => return (changes, start),
            (None, None) => panic!("the last page must carry newStartPageToken"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_changes_feed_reports_renames_moves_content_trash_and_removals() {
    let env = start().await;
    let email = "changes@example.com";
    let tokens = connect(&env, email).await;
    let token = tokens.access_token.as_str();
    let state = env.emulator.state();
    let a = state.create_folder(email, None, "A");
    let b = state.create_folder(email, None, "B");
    let moved = state.create_file(email, Some(&a), "draft.txt", "text/plain", Bytes::from_static(b"v1"));
    let binned = state.create_file(email, Some(&a), "old.txt", "text/plain", Bytes::from_static(b"old"));
    let restored = state.create_file(email, Some(&a), "back.txt", "text/plain", Bytes::from_static(b"back"));
    let deleted = state.create_file(email, Some(&a), "gone.txt", "text/plain", Bytes::from_static(b"gone"));
    let untouched = state.create_file(email, Some(&a), "same.txt", "text/plain", Bytes::from_static(b"same"));

    // The position is taken before the changes: every one of them is after it.
    let start_token = env.drive.start_page_token(token, None).await.expect("start token");
    patch(&env, token, &moved, &[], serde_json::json!({ "name": "final.txt" })).await;
    patch(&env, token, &moved, &[("addParents", b.as_str()), ("removeParents", a.as_str())], serde_json::json!({}))
        .await;
    replace_content(&env, token, &moved, b"version two").await;
    patch(&env, token, &binned, &[], serde_json::json!({ "trashed": true })).await;
    patch(&env, token, &restored, &[], serde_json::json!({ "trashed": true })).await;
    patch(&env, token, &restored, &[], serde_json::json!({ "trashed": false })).await;
    let url = format!("{}/drive/v3/files/{deleted}", env.emulator.base_url());
    assert!(http().delete(url).bearer_auth(token).send().await.expect("delete").status().is_success());
    let added = state.create_file(email, Some(&b), "new.txt", "text/plain", Bytes::from_static(b"new"));

    let (changes, next_start) = all_changes(&env, token, &start_token, None).await;
    assert!(!changes.contains_key(&untouched), "an unchanged file is not reported");
    let latest = |id: &str| changes.get(id).unwrap_or_else(|| panic!("no change for {id}"));
    let file = latest(&moved).file.as_ref().expect("the moved file");
    assert_eq!(
        (file.name.as_str(), file.parents.clone()),
        ("final.txt", vec![b.clone()]),
        "one change, its latest state"
    );
    assert_eq!(file.md5_checksum.as_deref(), Some(md5_hex(b"version two").as_str()));
    assert!(file.head_revision_id.is_some() && file.version.is_some());
    assert!(latest(&binned).file.as_ref().expect("trashed file").trashed);
    assert!(!latest(&restored).file.as_ref().expect("restored file").trashed);
    assert!(latest(&deleted).removed && latest(&deleted).file.is_none(), "a deletion is a removal");
    assert_eq!(latest(&added).file.as_ref().expect("added").parents, vec![b.clone()]);

    // From the new start token nothing is reported until something changes again.
    let (none, _) = all_changes(&env, token, &next_start, None).await;
    assert!(none.is_empty(), "{none:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_drive_has_its_own_changes_corpus_for_its_members() {
    let env = start().await;
    let member = "member@example.com";
    let tokens = connect(&env, member).await;
    let outsider = connect(&env, "outsider@example.com").await;
    let state = env.emulator.state();
    let team = state.create_shared_drive("Team", &[member]);

    let start_token = env.drive.start_page_token(&tokens.access_token, Some(&team)).await.expect("drive token");
    let doc = state.create_file(member, Some(&team), "plan.txt", "text/plain", Bytes::from_static(b"plan"));
    let mine = state.create_file(member, None, "mine.txt", "text/plain", Bytes::from_static(b"mine"));
    let (changes, _) = all_changes(&env, &tokens.access_token, &start_token, Some(&team)).await;
    assert_eq!(changes.get(&doc).and_then(|c| c.drive_id.clone()), Some(team.clone()));
    assert!(!changes.contains_key(&mine), "My Drive changes are not in the shared drive's corpus");

    let refused = env.drive.start_page_token(&outsider.access_token, Some(&team)).await;
    assert!(matches!(refused, Err(DriveError::NotFound(_))), "{refused:?}");
}

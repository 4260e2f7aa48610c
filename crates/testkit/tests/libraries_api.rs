//! Libraries (seed 003) as a client uses them: create and find them by id or natural id, the built-in
//! integration, linking a connection and a Drive folder (a shared drive's too), the Drive account behind it, and
//! API key scopes.

mod api_support;

use api_support::json_of;
use ferry_core::Scope;
use ferry_testkit::{TestEnv, Workers};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const EMAIL: &str = "lib@example.com";

fn call(env: &TestEnv, key: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
    env.http.request(method, env.url(path)).bearer_auth(key)
}

async fn error_code(response: reqwest::Response, status: StatusCode) -> String {
    let body = json_of(response, status).await;
    body["error"]["code"].as_str().expect("error code").to_owned()
}

#[tokio::test]
async fn a_library_links_a_connection_and_folder_and_reports_its_account() {
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("env");
    let key = env.api_key.clone();
    let drive = env.emulator.state();
    drive.ensure_user(EMAIL, "Library Owner");
    let folder = drive.create_folder(EMAIL, None, "Engineering");
    let file = drive.create_file(EMAIL, Some(&folder), "spec.txt", "text/plain", "spec".into());
    let team = drive.create_shared_drive("Team drive", &[EMAIL]);
    let team_folder = drive.create_folder(EMAIL, Some(&team), "Handbook");
    let connection =
        env.connect_drive(EMAIL).await.expect("connect")["connection"]["id"].as_str().expect("id").to_owned();

    // Create, then find by id and by natural id; the natural id is unique.
    let created = json_of(
        call(&env, &key, Method::POST, "/api/libraries")
            .json(&json!({ "name": " Engineering docs ", "naturalId": "eng-docs" }))
            .send()
            .await
            .expect("create"),
        StatusCode::CREATED,
    )
    .await;
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["name"], "Engineering docs");
    assert_eq!(created["naturalId"], "eng-docs");
    assert_eq!(created["connectionId"], Value::Null);
    let by_natural =
        json_of(call(&env, &key, Method::GET, "/api/libraries/eng-docs").send().await.expect("get"), StatusCode::OK)
            .await;
    assert_eq!(by_natural["id"], created["id"]);
    let root_item = created["rootItemId"].as_str().expect("root item").to_owned();
    let company = env.tenant_id.0.to_string();
    let directory = json_of(
        call(&env, &key, Method::GET, &format!("/internal/services/documents/v1/companies/{company}/item/{root_item}"))
            .send()
            .await
            .expect("directory"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(directory["item"]["name"], "Engineering docs", "the library is a directory of the store");
    let taken = call(&env, &key, Method::POST, "/api/libraries")
        .json(&json!({ "name": "Other", "naturalId": "eng-docs" }))
        .send()
        .await
        .expect("duplicate");
    assert_eq!(error_code(taken, StatusCode::CONFLICT).await, "CONFLICT");
    let uuid_like = call(&env, &key, Method::POST, "/api/libraries")
        .json(&json!({ "name": "Other", "naturalId": id }))
        .send()
        .await
        .expect("uuid natural id");
    assert_eq!(error_code(uuid_like, StatusCode::BAD_REQUEST).await, "VALIDATION_ERROR");

    // Rename renames the directory; the interval is bounded; null clears it.
    let patched = json_of(
        call(&env, &key, Method::PATCH, &format!("/api/libraries/{id}"))
            .json(&json!({ "name": "Eng", "syncIntervalSecs": 3600 }))
            .send()
            .await
            .expect("patch"),
        StatusCode::OK,
    )
    .await;
    assert_eq!((patched["name"].as_str(), patched["syncIntervalSecs"].as_i64()), (Some("Eng"), Some(3600)));
    let too_often = call(&env, &key, Method::PATCH, "/api/libraries/eng-docs")
        .json(&json!({ "syncIntervalSecs": 5 }))
        .send()
        .await
        .expect("patch");
    assert_eq!(error_code(too_often, StatusCode::BAD_REQUEST).await, "VALIDATION_ERROR");
    let cleared = json_of(
        call(&env, &key, Method::PATCH, "/api/libraries/eng-docs")
            .json(&json!({ "syncIntervalSecs": null }))
            .send()
            .await
            .expect("patch"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(cleared["syncIntervalSecs"], Value::Null);
    assert_eq!(cleared["name"], "Eng", "absent fields are unchanged");

    // The built-in integration, never with a secret.
    let integrations =
        json_of(call(&env, &key, Method::GET, "/api/integrations").send().await.expect("list"), StatusCode::OK).await;
    let google = &integrations["integrations"][0];
    assert_eq!((google["type"].as_str(), google["embedded"].as_bool()), (Some("google-drive"), Some(true)));
    assert_eq!(google["clientId"], env.settings.google.client_id.as_str());
    assert!(!integrations.to_string().contains(env.settings.google.client_secret.expose().as_str()));
    let integration_id = google["id"].as_str().expect("id").to_owned();
    let none_yet =
        call(&env, &key, Method::GET, &format!("/api/libraries/{id}/integration")).send().await.expect("get");
    assert_eq!(none_yet.status(), StatusCode::NOT_FOUND);
    let unknown = call(&env, &key, Method::PUT, &format!("/api/libraries/{id}/integration"))
        .json(&json!({ "integrationId": uuid::Uuid::new_v4().to_string() }))
        .send()
        .await
        .expect("put");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    // Without a connection: the connection and the account say NOT_CONNECTED.
    let unlinked = call(&env, &key, Method::GET, &format!("/api/libraries/{id}/account")).send().await.expect("get");
    assert_eq!(error_code(unlinked, StatusCode::CONFLICT).await, "NOT_CONNECTED");
    let unlinked = call(&env, &key, Method::GET, &format!("/api/libraries/{id}/connection")).send().await.expect("get");
    assert_eq!(error_code(unlinked, StatusCode::CONFLICT).await, "NOT_CONNECTED");

    // Linking checks the folder with Drive: a file or an unknown id is refused.
    let link = |folder: &str| {
        call(&env, &key, Method::PUT, &format!("/api/libraries/{id}/connection"))
            .json(&json!({ "connectionId": connection, "folderId": folder }))
    };
    assert_eq!(link(&file).send().await.expect("file").status(), StatusCode::BAD_REQUEST);
    assert_eq!(link("doesNotExist123").send().await.expect("unknown").status(), StatusCode::NOT_FOUND);
    let linked = json_of(link(&folder).send().await.expect("link"), StatusCode::OK).await;
    assert_eq!((linked["id"].as_str(), linked["ownerId"].as_str()), (Some(connection.as_str()), Some(EMAIL)));
    assert_eq!((linked["folderId"].as_str(), linked["driveId"].as_str()), (Some(folder.as_str()), None));
    assert_eq!(linked["integrationId"].as_str(), Some(integration_id.as_str()), "the connection's integration");
    let shared = json_of(link(&team_folder).send().await.expect("link shared"), StatusCode::OK).await;
    assert_eq!(shared["driveId"].as_str(), Some(team.as_str()), "a shared drive's folder records its drive");
    let integration = json_of(
        call(&env, &key, Method::GET, &format!("/api/libraries/{id}/integration")).send().await.expect("get"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(integration["libraryId"].as_str(), Some(id.as_str()));

    let account = json_of(
        call(&env, &key, Method::GET, "/api/libraries/eng-docs/account").send().await.expect("account"),
        StatusCode::OK,
    )
    .await;
    assert_eq!((account["email"].as_str(), account["displayName"].as_str()), (Some(EMAIL), Some("Library Owner")));
    assert!(account["accountId"].as_str().is_some_and(|a| !a.is_empty()));

    // A revoked grant: the account needs connecting again, said as such.
    drive.revoke_user_tokens(EMAIL);
    let revoked = call(&env, &key, Method::GET, "/api/libraries/eng-docs/account").send().await.expect("account");
    assert_eq!(error_code(revoked, StatusCode::CONFLICT).await, "CONNECTION_NEEDS_REAUTH");

    // Unlinking keeps the library (and its files); a second unlink has nothing to unlink.
    let unlinked =
        call(&env, &key, Method::DELETE, &format!("/api/libraries/{id}/connection")).send().await.expect("del");
    assert_eq!(unlinked.status(), StatusCode::NO_CONTENT);
    let again = call(&env, &key, Method::DELETE, &format!("/api/libraries/{id}/connection")).send().await.expect("del");
    assert_eq!(error_code(again, StatusCode::CONFLICT).await, "NOT_CONNECTED");

    // Deleting the library puts its directory in the trash.
    let deleted = call(&env, &key, Method::DELETE, "/api/libraries/eng-docs").send().await.expect("delete");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = call(&env, &key, Method::GET, &format!("/api/libraries/{id}")).send().await.expect("get");
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let trash = json_of(
        call(&env, &key, Method::GET, &format!("/internal/services/documents/v1/companies/{company}/item/trash"))
            .send()
            .await
            .expect("trash"),
        StatusCode::OK,
    )
    .await;
    assert!(trash["children"].as_array().expect("children").iter().any(|c| c["id"] == root_item.as_str()));
    env.shutdown().await;
}

#[tokio::test]
async fn api_key_scopes_limit_what_a_key_may_do() {
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("env");
    let reader = env.scoped_key(&[Scope::LibraryRead]).await.expect("reader key");
    let writer = env.scoped_key(&[Scope::LibraryRead, Scope::LibraryWrite]).await.expect("writer key");

    let denied = call(&env, &reader, Method::POST, "/api/libraries").json(&json!({ "name": "Nope" })).send().await;
    let body = json_of(denied.expect("post"), StatusCode::FORBIDDEN).await;
    assert_eq!(body["error"]["code"], "PERMISSION_DENIED");
    assert!(body["error"]["message"].as_str().expect("message").contains("library:write"));

    let created = json_of(
        call(&env, &writer, Method::POST, "/api/libraries").json(&json!({ "name": "Ok" })).send().await.expect("post"),
        StatusCode::CREATED,
    )
    .await;
    let id = created["id"].as_str().expect("id");
    let listed =
        json_of(call(&env, &reader, Method::GET, "/api/libraries").send().await.expect("list"), StatusCode::OK).await;
    assert_eq!(listed["totalCount"], 1);
    let read = call(&env, &reader, Method::GET, &format!("/api/libraries/{id}")).send().await.expect("get");
    assert_eq!(read.status(), StatusCode::OK);

    // Library scopes reach nothing else: files and cloud storage need their own.
    for path in ["/api/v2/files", "/api/v2/cloud-storage/connections", "/api/v2/folders"] {
        let response = call(&env, &writer, Method::GET, path).send().await.expect("get");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    // Deleting the library's directory forever (documents API: trash, then delete again) ends the library.
    let root = created["rootItemId"].as_str().expect("root item");
    let item = format!("/internal/services/documents/v1/companies/{}/item/{root}", env.tenant_id.0);
    for _ in 0..2 {
        let response = call(&env, &env.api_key, Method::DELETE, &item).send().await.expect("delete directory");
        assert_eq!(response.status(), StatusCode::OK);
    }
    let gone = call(&env, &reader, Method::GET, &format!("/api/libraries/{id}")).send().await.expect("get");
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);

    // A key with no scope list may do everything (keys made before scopes existed keep working).
    let files = call(&env, &env.api_key, Method::GET, "/api/v2/files").send().await.expect("files");
    assert_eq!(files.status(), StatusCode::OK);
    env.shutdown().await;
}

//! The documents API (seed 004) reads the same store as `/api/v2/files` and `/folders`: one tree of items, each
//! file with its versions. Uploads and imports each make a file's first version; `root` lists the top level;
//! another company's id is a 404.

mod api_support;

use std::time::Duration;

use api_support::json_of;
use ferry_testkit::{TestEnv, Workers};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn upload(env: &TestEnv, name: &str, bytes: &[u8], folder_id: Option<&str>) -> Value {
    let mut form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes.to_vec())
            .file_name(name.to_owned())
            .mime_str("text/plain")
            .expect("mime"),
    );
    if let Some(folder_id) = folder_id {
        form = form.text("folder_id", folder_id.to_owned());
    }
    json_of(env.api(Method::POST, "/files").multipart(form).send().await.expect("upload"), StatusCode::CREATED).await
}

fn documents(env: &TestEnv, company: &str, path: &str) -> reqwest::RequestBuilder {
    env.http
        .get(env.url(&format!("/internal/services/documents/v1/companies/{company}{path}")))
        .bearer_auth(&env.api_key)
}

async fn item(env: &TestEnv, company: &str, id: &str) -> Value {
    json_of(documents(env, company, &format!("/item/{id}")).send().await.expect("get item"), StatusCode::OK).await
}

fn names(children: &Value) -> Vec<&str> {
    children.as_array().expect("children").iter().map(|c| c["name"].as_str().expect("name")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_and_imports_are_items_with_versions_in_one_tree() {
    let env = TestEnv::start_with(Workers::ALL, &[]).await.expect("env");
    let me = json_of(env.api(Method::GET, "/me").send().await.expect("me"), StatusCode::OK).await;
    assert_eq!(me["tenant"]["name"], "tenant-a");
    let company = me["tenant"]["id"].as_str().expect("tenant id").to_owned();
    assert_eq!(company, env.tenant_id.0.to_string());

    let folder = json_of(
        env.api(Method::POST, "/folders").json(&json!({ "name": "Reports" })).send().await.expect("folder"),
        StatusCode::CREATED,
    )
    .await;
    let folder_id = folder["id"].as_str().expect("folder id");
    let inside = upload(&env, "q3.final.txt", b"quarter three", Some(folder_id)).await;
    let top = upload(&env, "notes", b"top level", None).await;

    let root = item(&env, &company, "root").await;
    assert_eq!(root["item"]["id"], "root");
    assert_eq!(root["item"]["is_directory"], true);
    assert_eq!(names(&root["children"]), ["Reports", "notes"], "directories first, then files");
    assert_eq!(root["children"][0]["id"], folder["id"]);
    assert_eq!(root["children"][0]["parent_id"], "root");
    assert_eq!(root["children"][1]["id"], top["id"]);
    assert_eq!(root["children"][1]["extension"], "");

    let reports = item(&env, &company, folder_id).await;
    assert_eq!(reports["item"]["name"], "Reports");
    assert_eq!(names(&reports["children"]), ["q3.final.txt"]);
    let child = &reports["children"][0];
    assert_eq!((child["parent_id"].as_str(), child["extension"].as_str()), (Some(folder_id), Some("txt")));
    assert_eq!(child["size"], 13);
    assert_eq!(child["last_version_cache"]["file_metadata"]["size"], 13);

    let file = item(&env, &company, inside["id"].as_str().expect("id")).await;
    assert_eq!(file["item"]["is_directory"], false);
    assert_eq!(file["children"], json!([]));
    let versions = file["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 1);
    let version = &versions[0];
    assert_eq!(version["provider"], "internal");
    assert_eq!(version["file_metadata"]["source"], "internal");
    assert_eq!(version["file_metadata"]["name"], "q3.final.txt");
    assert_eq!(version["file_metadata"]["mime"], "text/plain");
    assert!(version["date_added"].as_i64().is_some_and(|ms| ms > 1_700_000_000_000), "milliseconds: {version}");
    assert_eq!(file["item"]["last_version_cache"]["id"], version["id"]);

    // An import's bytes become the placeholder file's first version, provided by Drive.
    env.emulator.state().ensure_user("items@example.com", "Items");
    let connection = env.connect_drive("items@example.com").await.expect("connect")["connection"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let drive_id =
        env.emulator.state().create_file("items@example.com", None, "scan.pdf", "application/pdf", "%PDF".into());
    let imported = json_of(
        env.api(Method::POST, "/cloud-storage/import")
            .json(&json!({ "connection_id": connection, "files": [{ "id": drive_id, "name": "scan.pdf" }] }))
            .send()
            .await
            .expect("import"),
        StatusCode::OK,
    )
    .await;
    let job = env.wait_for_job(imported["job_id"].as_str().expect("job"), Duration::from_secs(60)).await.expect("job");
    assert_eq!(job["status"], "completed", "{job}");
    let scan = item(&env, &company, imported["image_ids"][0].as_str().expect("img")).await;
    let version = &scan["versions"][0];
    assert_eq!(version["provider"], "drive");
    assert_eq!(version["file_metadata"]["external_id"], drive_id.as_str());
    assert_eq!(version["file_metadata"]["size"], 4);
    assert_eq!(names(&item(&env, &company, "root").await["children"]), ["Reports", "notes", "scan.pdf"]);
    assert_eq!(item(&env, &company, "trash").await["children"], json!([]));

    // Another company, an unknown item and a malformed id name nothing.
    let other = uuid::Uuid::new_v4().to_string();
    for (company, id) in [
        (other.as_str(), "root"),
        (company.as_str(), "img_00000000000000000000000000000000"),
        (company.as_str(), "nope"),
    ] {
        let response = documents(&env, company, &format!("/item/{id}")).send().await.expect("get");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{company} {id}");
    }
    let anonymous = env.http.get(env.url(&format!("/internal/services/documents/v1/companies/{company}/item/root")));
    assert_eq!(anonymous.send().await.expect("get").status(), StatusCode::UNAUTHORIZED);
    env.shutdown().await;
}

fn documents_post(env: &TestEnv, company: &str, path: &str) -> reqwest::RequestBuilder {
    env.http
        .post(env.url(&format!("/internal/services/documents/v1/companies/{company}{path}")))
        .bearer_auth(&env.api_key)
}

async fn content_of(env: &TestEnv, image_id: &str) -> Vec<u8> {
    let response = env.api(Method::GET, &format!("/files/{image_id}/content")).send().await.expect("content");
    assert_eq!(response.status(), StatusCode::OK);
    response.bytes().await.expect("bytes").to_vec()
}

/// Directories and files are created, renamed and moved through the documents API; a new version becomes
/// what `/api/v2/files/{id}/content` serves, and the older one stays listed; a directory cannot move into its
/// own subtree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_are_created_versioned_renamed_and_moved() {
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("env");
    let company = env.tenant_id.0.to_string();

    let created = |body: Value| {
        let request = documents_post(&env, &company, "/item").json(&body);
        async move { json_of(request.send().await.expect("create"), StatusCode::OK).await }
    };
    let outer = created(json!({ "item": { "name": "Outer", "is_directory": true, "tags": ["team"] } })).await;
    assert_eq!((outer["is_directory"].as_bool(), outer["parent_id"].as_str()), (Some(true), Some("root")));
    let outer_id = outer["id"].as_str().expect("id").to_owned();
    let inner = created(json!({ "item": { "name": "Inner", "is_directory": true, "parent_id": outer_id } })).await;
    let inner_id = inner["id"].as_str().expect("id").to_owned();
    let empty =
        created(json!({ "item": { "name": "empty.txt", "parent_id": inner_id, "description": "nothing yet" } })).await;
    assert_eq!((empty["size"].as_i64(), empty["description"].as_str()), (Some(0), Some("nothing yet")));

    // A multipart file with its first version, then a second version.
    let form = reqwest::multipart::Form::new()
        .text("item", json!({ "parent_id": outer_id, "tags": ["draft"] }).to_string())
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"first".to_vec())
                .file_name("plan.md")
                .mime_str("text/markdown")
                .expect("mime"),
        );
    let plan =
        json_of(documents_post(&env, &company, "/item").multipart(form).send().await.expect("create"), StatusCode::OK)
            .await;
    let plan_id = plan["id"].as_str().expect("id").to_owned();
    assert_eq!((plan["name"].as_str(), plan["size"].as_i64()), (Some("plan.md"), Some(5)));
    assert_eq!(plan["last_version_cache"]["file_metadata"]["mime"], "text/markdown");
    let form = reqwest::multipart::Form::new()
        .text("version", json!({ "file_metadata": { "name": "plan-v2.md" } }).to_string())
        .part("file", reqwest::multipart::Part::bytes(b"second, longer".to_vec()).file_name("x.md"));
    let second = json_of(
        documents_post(&env, &company, &format!("/item/{plan_id}/version"))
            .multipart(form)
            .send()
            .await
            .expect("version"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (second["file_metadata"]["name"].as_str(), second["file_metadata"]["size"].as_i64()),
        (Some("plan-v2.md"), Some(14))
    );
    assert_eq!(content_of(&env, &plan_id).await, b"second, longer");
    let details = item(&env, &company, &plan_id).await;
    let sizes: Vec<i64> = details["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| v["file_metadata"]["size"].as_i64().expect("size"))
        .collect();
    assert_eq!(sizes, [14, 5], "newest first");
    assert_eq!(details["item"]["size"], 14);
    assert_eq!(details["item"]["last_version_cache"]["id"], second["id"]);

    // Rename and move; a directory cannot go under itself or a descendant, nor into a directory that is not there.
    let renamed = json_of(
        documents_post(&env, &company, &format!("/item/{plan_id}"))
            .json(&json!({ "name": "Plan.md", "parent_id": "root" }))
            .send()
            .await
            .expect("update"),
        StatusCode::OK,
    )
    .await;
    assert_eq!((renamed["name"].as_str(), renamed["parent_id"].as_str()), (Some("Plan.md"), Some("root")));
    for target in [&outer_id, &inner_id] {
        let response = documents_post(&env, &company, &format!("/item/{outer_id}"))
            .json(&json!({ "parent_id": target }))
            .send()
            .await
            .expect("move");
        let error = json_of(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(error["error"]["details"]["field"], "parent_id", "{error}");
    }
    let nowhere = uuid::Uuid::new_v4().to_string();
    let response = documents_post(&env, &company, &format!("/item/{inner_id}"))
        .json(&json!({ "parent_id": nowhere }))
        .send()
        .await
        .expect("move");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let moved = json_of(
        documents_post(&env, &company, &format!("/item/{inner_id}"))
            .json(&json!({ "parent_id": "root", "description": "top" }))
            .send()
            .await
            .expect("move"),
        StatusCode::OK,
    )
    .await;
    assert_eq!((moved["parent_id"].as_str(), moved["description"].as_str()), (Some("root"), Some("top")));
    assert_eq!(names(&item(&env, &company, "root").await["children"]), ["Inner", "Outer", "Plan.md"]);

    // The files API sees the same items.
    let listed = json_of(
        env.api(Method::GET, "/files").query(&[("folder_id", inner_id.as_str())]).send().await.expect("list"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["items"][0]["name"], "empty.txt");
    env.shutdown().await;
}

fn documents_delete(env: &TestEnv, company: &str, path: &str) -> reqwest::RequestBuilder {
    env.http
        .delete(env.url(&format!("/internal/services/documents/v1/companies/{company}{path}")))
        .bearer_auth(&env.api_key)
}

/// Trashing keeps an item (and a directory's contents) until it is restored: the trash lists the top of each
/// trashed subtree, `root` and the files and folders APIs stop listing them, and a restored item goes back to
/// its parent, or to `root` when the parent is itself in the trash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trashed_items_leave_the_tree_until_restored() {
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("env");
    let company = env.tenant_id.0.to_string();
    let create = |body: Value| {
        let request = documents_post(&env, &company, "/item").json(&body);
        async move { json_of(request.send().await.expect("create"), StatusCode::OK).await }
    };
    let docs = create(json!({ "item": { "name": "Docs", "is_directory": true } })).await;
    let docs_id = docs["id"].as_str().expect("id").to_owned();
    let inner = create(json!({ "item": { "name": "inner.txt", "parent_id": docs_id } })).await;
    let top = create(json!({ "item": { "name": "top.txt" } })).await;
    let top_id = top["id"].as_str().expect("id").to_owned();

    // inner.txt is trashed on its own first, then its directory.
    let inner_id = inner["id"].as_str().expect("id").to_owned();
    json_of(
        documents_delete(&env, &company, &format!("/item/{inner_id}")).send().await.expect("trash"),
        StatusCode::OK,
    )
    .await;
    let trashed = json_of(
        documents_delete(&env, &company, &format!("/item/{docs_id}")).send().await.expect("trash"),
        StatusCode::OK,
    )
    .await;
    let trashed = &trashed["trashed"];
    assert_eq!((trashed["in_trash"].as_bool(), trashed["parent_id"].as_str()), (Some(true), Some("root")));
    json_of(documents_delete(&env, &company, &format!("/item/{top_id}")).send().await.expect("trash"), StatusCode::OK)
        .await;

    assert_eq!(names(&item(&env, &company, "root").await["children"]), Vec::<&str>::new());
    assert_eq!(names(&item(&env, &company, "trash").await["children"]), ["Docs", "top.txt"], "the tops, not inner.txt");
    assert_eq!(names(&item(&env, &company, &docs_id).await["children"]), Vec::<&str>::new(), "inner.txt is trashed");
    let files = json_of(
        env.api(Method::GET, "/files").query(&[("folder_id", "root")]).send().await.expect("files"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(files["total_count"], 0, "{files}");
    let everywhere = json_of(env.api(Method::GET, "/files").send().await.expect("files"), StatusCode::OK).await;
    assert_eq!(everywhere["total_count"], 0, "inner.txt went to the trash with its directory: {everywhere}");
    let folders = json_of(env.api(Method::GET, "/folders").send().await.expect("folders"), StatusCode::OK).await;
    assert_eq!(folders["total_count"], 0, "{folders}");

    // Back where it was; and an item whose directory is in the trash comes back to root.
    let restored = json_of(
        documents_post(&env, &company, &format!("/item/{top_id}/restore")).send().await.expect("restore"),
        StatusCode::OK,
    )
    .await;
    assert_eq!((restored["in_trash"].as_bool(), restored["parent_id"].as_str()), (Some(false), Some("root")));
    let rescued = json_of(
        documents_post(&env, &company, &format!("/item/{inner_id}/restore")).send().await.expect("restore"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(rescued["parent_id"], "root", "its directory is in the trash");
    let live = documents_post(&env, &company, &format!("/item/{inner_id}/restore")).send().await.expect("restore live");
    assert_eq!(live.status(), StatusCode::CONFLICT);
    json_of(
        documents_post(&env, &company, &format!("/item/{docs_id}/restore")).send().await.expect("restore"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(names(&item(&env, &company, "root").await["children"]), ["Docs", "inner.txt", "top.txt"]);
    assert_eq!(item(&env, &company, "trash").await["children"], json!([]));

    // A trashed directory takes no new items.
    json_of(documents_delete(&env, &company, &format!("/item/{docs_id}")).send().await.expect("trash"), StatusCode::OK)
        .await;
    let into_trash =
        documents_post(&env, &company, "/item").json(&json!({ "item": { "name": "x", "parent_id": docs_id } }));
    assert_eq!(into_trash.send().await.expect("create").status(), StatusCode::NOT_FOUND);
    env.shutdown().await;
}

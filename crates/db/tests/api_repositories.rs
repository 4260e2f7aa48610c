//! Repositories behind the files, folders and picker endpoints, against a real Postgres.

use chrono::Utc;
use ferry_core::{FileId, TenantId};
use ferry_db::files::NewUploadedFile;
use ferry_db::store::{FileDelete, FileFilter, FileUpdate, FolderDelete, FolderScope};
use ferry_db::testing::TestDatabase;
use ferry_db::{Db, DbError};

async fn upload(db: &Db, tenant: TenantId, name: &str, tags: &[String]) -> Result<FileId, DbError> {
    let id = FileId::new();
    db.tenant(tenant)
        .insert_uploaded_file(NewUploadedFile {
            id,
            name,
            mime_type: "text/plain",
            size_bytes: 1,
            sha256: "s",
            md5: "m",
            blob_key: "k",
            tags,
            folder_id: None,
            description: "",
            access_info: None,
        })
        .await?;
    Ok(id)
}

#[tokio::test]
async fn folders_files_and_filters() {
    let test = TestDatabase::create().await.expect("database");
    let db = &test.db;
    let tenant = TenantId(db.ensure_tenant("lib-a").await.expect("tenant").id);
    let other = TenantId(db.ensure_tenant("lib-b").await.expect("tenant").id);
    let folder = db.tenant(tenant).create_folder(uuid::Uuid::now_v7(), "Docs", None).await.expect("folder");
    assert!(db.tenant(other).get_folder(folder.id).await.expect("get").is_none(), "tenant-scoped");
    let a = upload(db, tenant, "a", &["x".into(), "y".into()]).await.expect("a");
    let _b = upload(db, tenant, "b", &["x".into()]).await.expect("b");

    let moved = db
        .tenant(tenant)
        .update_file(a, &FileUpdate { folder_id: Some(Some(folder.id)), ..FileUpdate::default() })
        .await
        .expect("update")
        .expect("found");
    assert_eq!(moved.folder_id, Some(folder.id));
    assert_eq!(moved.name, "a", "untouched fields stay");
    let tags = vec!["x".to_owned()];
    let both = FileFilter { tags: &tags, limit: 10, ..FileFilter::default() };
    assert_eq!(db.tenant(tenant).list_files_filtered(&both).await.expect("list").1, 2);
    let in_folder = FileFilter { folder: FolderScope::In(folder.id), limit: 10, ..FileFilter::default() };
    assert_eq!(db.tenant(tenant).list_files_filtered(&in_folder).await.expect("list").1, 1);
    let at_root = FileFilter { folder: FolderScope::Root, limit: 10, ..FileFilter::default() };
    assert_eq!(db.tenant(tenant).list_files_filtered(&at_root).await.expect("list").1, 1);
    assert_eq!(db.tenant(other).list_files_filtered(&both).await.expect("list").1, 0);

    assert!(matches!(
        db.tenant(tenant).delete_folder(folder.id).await.expect("delete"),
        FolderDelete::NotEmpty { files: 1, folders: 0 }
    ));
    assert!(matches!(db.tenant(other).delete_file(a).await.expect("foreign"), FileDelete::NotFound));
    assert!(matches!(db.tenant(tenant).delete_file(a).await.expect("delete"), FileDelete::Deleted { .. }));
    assert!(matches!(db.tenant(tenant).delete_folder(folder.id).await.expect("delete"), FolderDelete::Deleted));
    assert!(matches!(db.tenant(tenant).delete_folder(folder.id).await.expect("again"), FolderDelete::NotFound));
}

#[tokio::test]
async fn picker_sessions_are_tenant_bound_and_expire() {
    let test = TestDatabase::create().await.expect("database");
    let db = &test.db;
    let tenant = TenantId(db.ensure_tenant("pick-a").await.expect("tenant").id);
    let other = TenantId(db.ensure_tenant("pick-b").await.expect("tenant").id);
    let connection = ferry_db::testing::drive_connection(db, tenant, "sub-p").await.expect("connection");
    let expires = Utc::now() + chrono::Duration::minutes(10);
    db.tenant(tenant).create_picker_session("hash-1", connection, expires).await.expect("create");
    assert!(db.tenant(tenant).find_picker_session("hash-1").await.expect("find").is_some());
    assert!(db.tenant(other).find_picker_session("hash-1").await.expect("find").is_none(), "another tenant's");
    assert!(db.tenant(tenant).find_picker_session("hash-2").await.expect("find").is_none());
    db.set_picker_session_expiry("hash-1", Utc::now() - chrono::Duration::seconds(1)).await.expect("expire");
    assert!(db.tenant(tenant).find_picker_session("hash-1").await.expect("find").is_none(), "expired");
}

//! The tenant-scoped handle shows a tenant nothing of another's, and the composite foreign keys refuse a row
//! that points at another tenant's folder or connection even when a query forgets to check.

use ferry_core::{ConnectionId, FileId, TenantId};
use ferry_db::connections::ConnectionFilter;
use ferry_db::files::NewUploadedFile;
use ferry_db::job_control::{CancelOutcome, JobFilter};
use ferry_db::store::{FileDelete, FileFilter, FileUpdate, FolderDelete};
use ferry_db::testing::{TestDatabase, import_job, tenant_with_connection};
use ferry_db::{Db, TenantDb};
use serde_json::json;

async fn upload(db: &TenantDb, name: &str) -> FileId {
    let id = FileId::new();
    db.insert_uploaded_file(NewUploadedFile {
        id,
        name,
        mime_type: "text/plain",
        size_bytes: 1,
        sha256: "s",
        md5: "m",
        blob_key: "k",
        tags: &[],
        folder_id: None,
        description: "",
        access_info: None,
    })
    .await
    .expect("upload");
    id
}

async fn two_tenants(db: &Db) -> ((TenantId, ConnectionId), (TenantId, ConnectionId)) {
    let a = tenant_with_connection(db, "scope-a").await.expect("tenant a");
    let b = tenant_with_connection(db, "scope-b").await.expect("tenant b");
    (a, b)
}

#[tokio::test]
async fn another_tenants_ids_are_invisible_through_the_tenant_handle() {
    let test = TestDatabase::create().await.expect("database");
    let ((tenant_a, connection_a), (tenant_b, _)) = two_tenants(&test.db).await;
    let a = test.db.tenant(tenant_a);
    let b = test.db.tenant(tenant_b);

    let folder = a.create_folder(uuid::Uuid::now_v7(), "Private", None).await.expect("folder");
    let file = upload(&a, "secret.txt").await;
    let job = import_job(tenant_a, connection_a, 2);
    let job_id = job.job_id;
    a.create_import_job(job, &[]).await.expect("job");

    assert!(b.get_connection(connection_a).await.expect("q").is_none());
    // Both tenants connected the same Drive account: each finds only its own connection.
    assert_ne!(b.find_connection_id("google_drive", "sub-1").await.expect("q"), Some(connection_a));
    let connections = ConnectionFilter { active_only: false, limit: 10, ..ConnectionFilter::default() };
    assert_eq!(
        b.list_connections(&connections).await.expect("q").0.iter().filter(|c| c.id == connection_a.0).count(),
        0
    );
    assert!(!b.disconnect_connection(connection_a).await.expect("q"));
    b.touch_connection(connection_a).await.expect("touch");
    let untouched = a.get_connection(connection_a).await.expect("q").expect("a's connection");
    assert!(untouched.is_active && untouched.last_used_at.is_none(), "b cannot touch a's connection");

    assert!(b.get_folder(folder.id).await.expect("q").is_none());
    assert!(b.rename_folder(folder.id, "mine").await.expect("q").is_none());
    assert!(matches!(b.delete_folder(folder.id).await.expect("q"), FolderDelete::NotFound));
    assert_eq!(b.list_folders(None, 10, 0).await.expect("q").1, 0);

    assert!(b.get_file(file).await.expect("q").is_none());
    assert!(b.get_files(&[file]).await.expect("q").is_empty());
    assert_eq!(b.list_files(10, 0).await.expect("q").1, 0);
    assert_eq!(b.list_files_filtered(&FileFilter { limit: 10, ..FileFilter::default() }).await.expect("q").1, 0);
    let rename = FileUpdate { name: Some("stolen".into()), ..FileUpdate::default() };
    assert!(b.update_file(file, &rename).await.expect("q").is_none());
    assert!(matches!(b.delete_file(file).await.expect("q"), FileDelete::NotFound));

    assert!(b.get_job(job_id).await.expect("q").is_none());
    assert_eq!(b.list_jobs(&JobFilter { limit: 10, ..JobFilter::default() }).await.expect("q").1, 0);
    assert_eq!(b.page_job_items(job_id, None, 10, 0).await.expect("q").1, 0);
    assert!(b.exported_drive_ids(job_id).await.expect("q").is_empty());
    assert!(matches!(b.cancel_job(job_id).await.expect("q"), CancelOutcome::NotFound));

    // And a's own handle sees all of it, untouched.
    assert_eq!(a.get_file(file).await.expect("q").expect("file").name, "secret.txt");
    assert_eq!(a.get_folder(folder.id).await.expect("q").expect("folder").name, "Private");
    assert_eq!(a.page_job_items(job_id, None, 10, 0).await.expect("q").1, 2);
}

#[tokio::test]
async fn composite_foreign_keys_refuse_pointers_at_another_tenants_rows() {
    let test = TestDatabase::create().await.expect("database");
    let ((tenant_a, connection_a), (tenant_b, connection_b)) = two_tenants(&test.db).await;
    let a = test.db.tenant(tenant_a);
    let b = test.db.tenant(tenant_b);
    let folder_a = a.create_folder(uuid::Uuid::now_v7(), "A's", None).await.expect("folder");

    // A file of b moved into a's folder.
    let file_b = upload(&b, "b.txt").await;
    let into_a = FileUpdate { folder_id: Some(Some(folder_a.id)), ..FileUpdate::default() };
    assert!(b.update_file(file_b, &into_a).await.is_err(), "a file cannot sit in another tenant's folder");
    assert_eq!(b.get_file(file_b).await.expect("q").expect("file").folder_id, None);

    // A folder of b created inside a's folder.
    assert!(b.create_folder(uuid::Uuid::now_v7(), "nested", Some(folder_a.id)).await.is_err());

    // A job of b on a's connection, even through the system handle, which trusts its caller.
    let mut job = import_job(tenant_b, connection_a, 1);
    let placeholder = job.items[0].file_id;
    assert!(test.db.create_import_job(job.clone()).await.is_err(), "a job cannot use another tenant's connection");
    // Import placeholders of b in a's folder.
    job.connection_id = connection_b;
    job.folder_id = Some(folder_a.id);
    let formats = [(placeholder, json!({ "*": "application/pdf" }))];
    assert!(b.create_import_job(job.clone(), &formats).await.is_err(), "placeholders cannot land in a's folder");
    // Nothing of the refused job was written, its export formats included: they share its transaction.
    assert!(b.get_job(job.job_id).await.expect("q").is_none());
    assert!(test.db.import_export_formats(placeholder).await.expect("q").is_none());

    job.folder_id = None;
    b.create_import_job(job.clone(), &formats).await.expect("a valid job");
    assert_eq!(
        test.db.import_export_format(placeholder, "application/vnd.google-apps.document").await.expect("q"),
        Some("application/pdf".into())
    );
}

//! What migrations do with rows written before them.

use diesel_async::RunQueryDsl;
use ferry_core::{FileId, VersionProvider};
use ferry_db::testing::TestDatabase;

/// The store became a tree of items with versions: every file that had content gets its first version (a
/// Drive import's names its Drive file), and the file points at it; a placeholder still waiting for its bytes
/// gets none.
#[tokio::test]
async fn files_with_content_get_their_first_version() {
    let test = TestDatabase::create_before("2026-11-24-001400").await.expect("older schema");
    let tenant = uuid::Uuid::now_v7();
    let (uploaded, imported, pending) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let mut conn = test.db.conn().await.expect("conn");
    diesel::sql_query("INSERT INTO tenants (id, name) VALUES ($1, 'old')")
        .bind::<diesel::sql_types::Uuid, _>(tenant)
        .execute(&mut conn)
        .await
        .expect("tenant");
    for (id, name, status, blob, source) in [
        (uploaded, "a.txt", "ready", Some("tenants/t/files/a"), None),
        (imported, "b.pdf", "ready", Some("tenants/t/files/b"), Some("drive-b")),
        (pending, "c.bin", "pending", None, Some("drive-c")),
    ] {
        diesel::sql_query(
            "INSERT INTO files (id, tenant_id, name, mime_type, size_bytes, sha256, md5, blob_key, status, \
             source_file_id) VALUES ($1, $2, $3, 'text/plain', 7, 'sha', 'md5', $4, $5, $6)",
        )
        .bind::<diesel::sql_types::Uuid, _>(id)
        .bind::<diesel::sql_types::Uuid, _>(tenant)
        .bind::<diesel::sql_types::Text, _>(name)
        .bind::<diesel::sql_types::Nullable<diesel::sql_types::Text>, _>(blob)
        .bind::<diesel::sql_types::Text, _>(status)
        .bind::<diesel::sql_types::Nullable<diesel::sql_types::Text>, _>(source)
        .execute(&mut conn)
        .await
        .expect("file");
    }
    drop(conn);
    ferry_db::run_migrations(&test.url).await.expect("the rest of the migrations");

    let db = test.db.tenant(ferry_core::TenantId(tenant));
    let versions = db.list_versions(FileId(uploaded)).await.expect("versions");
    assert_eq!(versions.len(), 1);
    assert_eq!((versions[0].provider, versions[0].blob_key.as_str()), (VersionProvider::Internal, "tenants/t/files/a"));
    assert_eq!((versions[0].size_bytes, versions[0].name.as_str()), (7, "a.txt"));
    let file = db.get_file(FileId(uploaded)).await.expect("get").expect("file");
    assert_eq!(file.last_version_id, Some(versions[0].id));

    let versions = db.list_versions(FileId(imported)).await.expect("versions");
    assert_eq!((versions[0].provider, versions[0].external_id.as_deref()), (VersionProvider::Drive, Some("drive-b")));
    assert!(db.list_versions(FileId(pending)).await.expect("versions").is_empty());
    assert_eq!(db.get_file(FileId(pending)).await.expect("get").expect("file").last_version_id, None);
}

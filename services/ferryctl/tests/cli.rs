//! `ferryctl` as an operator runs it: a real process against a real Postgres.

use std::process::Command;

use ferry_db::testing::test_server_url;

fn ferryctl(database_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferryctl"))
        .args(["--database-url", database_url])
        .args(args)
        .output()
        .expect("ferryctl runs")
}

#[tokio::test]
async fn migrate_creates_the_database_and_api_keys_print_only_the_key() {
    let url = format!("{}/ferryctl_test_{}", test_server_url().trim_end_matches('/'), uuid::Uuid::new_v4().simple());

    let migrated = ferryctl(&url, &["migrate"]);
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    assert!(String::from_utf8_lossy(&migrated.stderr).contains("created database"));
    let again = ferryctl(&url, &["migrate"]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("applied 0 migration(s)"), "migrate is idempotent");

    let created = ferryctl(&url, &["api-key", "create", "--tenant", "acme"]);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let stdout = String::from_utf8(created.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "only the key on stdout: {stdout:?}");
    let key = lines[0];
    assert!(key.starts_with("fry_") && key.len() >= 36, "{key}");
    assert!(key[4..].chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));

    let db = ferry_db::Db::connect(&url, 1).expect("pool");
    let owner = db.find_api_key(&ferry_crypto::hash_api_key(key)).await.expect("lookup").expect("key stored");
    let tenant = db.ensure_tenant("acme").await.expect("tenant");
    assert_eq!(owner.tenant_id.0, tenant.id);
    assert_ne!(owner.key_hash, key, "stored hashed");

    let empty = ferryctl(&url, &["api-key", "create", "--tenant", "  "]);
    assert!(!empty.status.success());
    drop(db);
    ferry_db::drop_database(&url).await.expect("cleanup");
}

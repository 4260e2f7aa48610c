use std::path::PathBuf;

use ferry_config::{ConfigError, LogFormat, Secret, Settings, StorageBackend};

fn repo_config_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config")
}

fn problems(err: ConfigError) -> Vec<String> {
    match err {
        ConfigError::Invalid { problems } => problems,
        other => panic!("expected validation problems, got {other}"),
    }
}

#[test]
fn defaults_load_and_validate() {
    let s = Settings::from_sources(&[]).expect("defaults load");
    s.validate().expect("defaults are valid");
    assert_eq!(s, Settings::default());
    assert_eq!(s.environment, "development");
    assert_eq!(s.database.url, "postgres://postgres@127.0.0.1:5432/ferry");
    assert_eq!(s.database.max_connections, 16);
    assert_eq!(s.amqp.url, "amqp://guest:guest@127.0.0.1:5672/%2f");
    assert_eq!(s.amqp.queue_prefix, "ferry");
    assert_eq!(s.amqp.prefetch, 8);
    assert_eq!(s.amqp.delivery_limit, 5);
    assert_eq!(s.gateway.bind, "127.0.0.1:8080");
    assert_eq!(s.gateway.ops_bind, "127.0.0.1:9100");
    assert_eq!(s.drive.connect_timeout_secs, 10);
    assert_eq!(s.drive.read_timeout_secs, 60);
    assert_eq!(s.gateway.popup_origin, "http://127.0.0.1:8080");
    assert_eq!(s.gateway.max_upload_bytes, 1024 * 1024 * 1024);
    assert_eq!(s.google.drive_root_url, "http://127.0.0.1:8088/");
    assert_eq!(s.google.client_secret.expose(), "ferry-dev-secret");
    assert_eq!(s.google.scopes.len(), 4);
    assert_eq!(s.storage.backend, StorageBackend::Local);
    assert_eq!(s.storage.root, "./data/blobs");
    assert_eq!(s.crypto.token_key_id, "dev-1");
    assert!(s.crypto.uses_dev_only_key());
    assert_eq!(s.importer.ops_bind, "127.0.0.1:9101");
    assert_eq!(s.exporter.ops_bind, "127.0.0.1:9102");
    assert_eq!(s.exporter.concurrency, 4);
    assert_eq!(s.telemetry.log_format, LogFormat::Json);
    assert_eq!(s.telemetry.log_filter, "info");
}

#[test]
fn repository_default_toml_matches_built_in_defaults() {
    let from_file = Settings::loader().config_dir(repo_config_dir()).load().expect("config/default.toml loads");
    assert_eq!(from_file, Settings::default());
}

#[test]
fn overrides_win_and_are_typed() {
    let s = Settings::from_sources(&[
        ("database.url", "postgres://u@db:5432/other"),
        ("database.max_connections", "3"),
        ("google.scopes", "openid, email"),
        ("telemetry.log_format", "pretty"),
    ])
    .expect("overrides load");
    assert_eq!(s.database.url, "postgres://u@db:5432/other");
    assert_eq!(s.database.max_connections, 3);
    assert_eq!(s.google.scopes, vec!["openid", "email"]);
    assert_eq!(s.telemetry.log_format, LogFormat::Pretty);
    // untouched keys keep their defaults
    assert_eq!(s.amqp.prefetch, 8);
}

#[test]
fn environment_variables_use_double_underscore_paths() {
    let s = Settings::loader()
        .env_vars([
            ("FERRY__DATABASE__URL", "postgres://postgres@10.0.0.5:5432/ferry"),
            ("FERRY__AMQP__DELIVERY_LIMIT", "9"),
            ("FERRY__EXPORTER__CONCURRENCY", "7"),
            ("FERRY__GOOGLE__SCOPES", "openid email"),
            ("FERRY__GOOGLE__CLIENT_SECRET", "s3cret"),
            ("FERRY_TEST_DATABASE_URL", "ignored: single underscore"),
            ("OTHER__DATABASE__URL", "ignored: other prefix"),
        ])
        .load()
        .expect("env loads");
    s.validate().expect("valid");
    assert_eq!(s.database.url, "postgres://postgres@10.0.0.5:5432/ferry");
    assert_eq!(s.amqp.delivery_limit, 9);
    assert_eq!(s.exporter.concurrency, 7);
    assert_eq!(s.google.scopes, vec!["openid", "email"]);
    assert_eq!(s.google.client_secret.expose(), "s3cret");
}

#[test]
fn layers_apply_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("default.toml"),
        "[database]\nmax_connections = 4\nurl = \"postgres://postgres@file-default/ferry\"\n[amqp]\nprefetch = 2\n",
    )
    .expect("write default.toml");
    std::fs::write(dir.path().join("staging.toml"), "[database]\nmax_connections = 5\n").expect("write staging.toml");

    let s = Settings::loader()
        .config_dir(dir.path())
        .environment("staging")
        .env_vars([("FERRY__AMQP__PREFETCH", "3")])
        .overrides(&[("gateway.bind", "0.0.0.0:9999")])
        .load()
        .expect("layers load");
    assert_eq!(s.environment, "staging");
    assert_eq!(s.database.url, "postgres://postgres@file-default/ferry"); // default.toml
    assert_eq!(s.database.max_connections, 5); // staging.toml beats default.toml
    assert_eq!(s.amqp.prefetch, 3); // env beats files
    assert_eq!(s.gateway.bind, "0.0.0.0:9999"); // override beats everything
}

#[test]
fn missing_config_files_are_fine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Settings::loader()
        .config_dir(dir.path().join("does-not-exist"))
        .environment("nowhere")
        .load()
        .expect("optional files");
    assert_eq!(s.database, Settings::default().database);
}

#[test]
fn type_errors_name_the_key() {
    let err = Settings::from_sources(&[("database.max_connections", "many")]).expect_err("not a number");
    let msg = err.to_string();
    assert!(msg.contains("database.max_connections"), "{msg}");
}

#[test]
fn unknown_keys_are_rejected() {
    let err = Settings::loader()
        .env_vars([("FERRY__DATABASE__ULR", "postgres://typo")])
        .load()
        .expect_err("typo is an error");
    let msg = err.to_string();
    assert!(msg.contains("ulr"), "{msg}");
}

#[test]
fn unknown_enum_values_are_rejected() {
    let err = Settings::from_sources(&[("storage.backend", "floppy")]).expect_err("unknown");
    assert!(err.to_string().contains("floppy"), "{err}");
}

#[test]
fn validation_lists_every_problem_clearly() {
    let s = Settings::from_sources(&[
        ("database.url", "mysql://nope"),
        ("exporter.concurrency", "0"),
        ("crypto.token_key", "c2hvcnQ="),
        ("google.drive_root_url", "http://127.0.0.1:8088"),
        ("gateway.popup_origin", "http://127.0.0.1:8080/popup"),
        ("importer.ops_bind", "nowhere"),
        ("amqp.prefetch", "0"),
        ("drive.read_timeout_secs", "0"),
        ("gateway.ops_bind", "127.0.0.1:8080"),
    ])
    .expect("loads");
    let problems = problems(s.validate().expect_err("invalid"));
    let all = problems.join("\n");
    for key in [
        "database.url",
        "exporter.concurrency",
        "crypto.token_key",
        "google.drive_root_url",
        "gateway.popup_origin",
        "importer.ops_bind",
        "amqp.prefetch",
        "drive.read_timeout_secs",
        "gateway.ops_bind",
    ] {
        assert!(problems.iter().any(|p| p.starts_with(key)), "no problem for {key} in:\n{all}");
    }
    assert!(all.contains("exporter.concurrency: must be at least 1"), "{all}");
    assert!(all.contains("exactly 32 bytes, got 5 bytes"), "{all}");
    let display = ConfigError::Invalid { problems }.to_string();
    assert!(display.starts_with("invalid configuration:\n  - "), "{display}");
}

#[test]
fn production_rejects_the_dev_key() {
    let s = Settings::loader().environment("production").load().expect("loads");
    let problems = problems(s.validate().expect_err("dev key in production"));
    assert!(problems.iter().any(|p| p.contains("DEV-ONLY")), "{problems:?}");

    let own_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let s =
        Settings::loader().environment("production").overrides(&[("crypto.token_key", own_key)]).load().expect("loads");
    s.validate().expect("own key is fine");
}

#[test]
fn previous_keys_parse_and_validate() {
    let k = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let s = Settings::from_sources(&[("crypto.previous_token_keys", &format!("old-1:{k}, old-2:{k}"))]).expect("loads");
    s.validate().expect("valid");
    let keys = s.crypto.previous_keys().expect("parse");
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].0, "old-1");
    assert_eq!(keys[1].1.expose(), k);

    let s = Settings::from_sources(&[("crypto.previous_token_keys", "old.1:abc")]).expect("loads");
    let problems = problems(s.validate().expect_err("bad id"));
    assert!(problems[0].starts_with("crypto.previous_token_keys"), "{problems:?}");
}

#[test]
fn secrets_never_print() {
    let s = Settings::from_sources(&[
        ("google.client_secret", "top-secret-value"),
        ("database.url", "postgres://user:hunter2@db:5432/ferry"),
        ("amqp.url", "amqp://guest:rabbitpass@mq:5672/%2f"),
    ])
    .expect("loads");
    let debug = format!("{s:?}");
    assert!(!debug.contains("top-secret-value"), "{debug}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(!debug.contains("rabbitpass"), "{debug}");
    assert!(!debug.contains(ferry_config::DEV_ONLY_TOKEN_KEY), "{debug}");
    assert!(debug.contains("[redacted]"));
    let secret = Secret::from("x");
    assert_eq!(format!("{secret}"), "[redacted]");
    assert_eq!(format!("{secret:?}"), "[redacted]");
    assert_eq!(secret.expose(), "x");
}

#[test]
fn s3_storage_loads_from_the_environment_and_keeps_its_secret() {
    let s = Settings::loader()
        .env_vars([
            ("FERRY__STORAGE__BACKEND", "s3"),
            ("FERRY__STORAGE__S3__BUCKET", "ferry-blobs"),
            ("FERRY__STORAGE__S3__ENDPOINT", "http://127.0.0.1:9000"),
            ("FERRY__STORAGE__S3__REGION", "eu-west-1"),
            ("FERRY__STORAGE__S3__ACCESS_KEY_ID", "AKIAEXAMPLE"),
            ("FERRY__STORAGE__S3__SECRET_ACCESS_KEY", "very-secret-value"),
            ("FERRY__STORAGE__S3__ALLOW_HTTP", "true"),
        ])
        .load()
        .expect("loads");
    s.validate().expect("valid");
    assert_eq!(s.storage.backend, StorageBackend::S3);
    assert_eq!(s.storage.s3.bucket, "ferry-blobs");
    assert_eq!(s.storage.s3.endpoint, "http://127.0.0.1:9000");
    assert_eq!(s.storage.s3.region, "eu-west-1");
    assert_eq!(s.storage.s3.access_key_id, "AKIAEXAMPLE");
    assert_eq!(s.storage.s3.secret_access_key.expose(), "very-secret-value");
    assert!(s.storage.s3.allow_http);
    assert!(!format!("{s:?}").contains("very-secret-value"), "the secret never prints");
}

#[test]
fn s3_storage_problems_name_the_key_to_fix() {
    let s = Settings::from_sources(&[
        ("storage.backend", "s3"),
        ("storage.s3.bucket", "Not_A_Bucket"),
        ("storage.s3.endpoint", "http://127.0.0.1:9000"),
        ("storage.s3.region", " "),
        ("storage.s3.secret_access_key", "only-half"),
    ])
    .expect("loads");
    let listed = problems(s.validate().expect_err("invalid"));
    let joined = listed.join("\n");
    assert_eq!(listed.len(), 4, "{joined}");
    assert!(joined.contains("storage.s3.bucket: \"Not_A_Bucket\" must be an S3 bucket name"), "{joined}");
    assert!(joined.contains("storage.s3.region: must not be empty"), "{joined}");
    assert!(joined.contains("storage.s3.endpoint: is plain http: set storage.s3.allow_http = true"), "{joined}");
    assert!(joined.contains("storage.s3.access_key_id: and storage.s3.secret_access_key must be set together"));

    // The local backend ignores the s3 section; s3 ignores the local root.
    let local = Settings::from_sources(&[("storage.s3.bucket", "X")]).expect("loads");
    local.validate().expect("s3 settings are not read by the local backend");
    let s3 = Settings::from_sources(&[
        ("storage.backend", "s3"),
        ("storage.root", ""),
        ("storage.s3.bucket", "ferry-prod"),
        ("storage.s3.endpoint", "ftp://x"),
    ])
    .expect("loads");
    let s3_problems = problems(s3.validate().expect_err("invalid"));
    assert_eq!(s3_problems, vec!["storage.s3.endpoint: scheme \"ftp\" is not one of http, https".to_owned()]);
}

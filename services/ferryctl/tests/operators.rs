//! `ferryctl` for people, against the whole system: real gateway, workers, Postgres, RabbitMQ and the Drive
//! emulator. Watching jobs, revoking keys, rotating the token key, what a database dump holds, pruning.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ferry_testkit::TestEnv;
use ferry_testkit::drive_emulator::seed::filler;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The development key (`crypto.token_key` default) and a second one for rotation.
const DEV_KEY: &str = "ZmVycnktZGV2LW9ubHktdG9rZW4ta2V5LTMyYnl0ZXM=";
const NEW_KEY: &str = "bmV3LWtleS1mb3Itcm90YXRpb24tdGVzdHMtMzJieXQ=";

fn ferryctl(env: &TestEnv, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferryctl"));
    command
        .args(["--database-url", &env.database.url])
        .args(args)
        .env("FERRY__DATABASE__URL", &env.database.url)
        .stdin(Stdio::null());
    for (key, value) in extra_env {
        command.env(key, value);
    }
    command.output().expect("ferryctl runs")
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn connect(env: &TestEnv, email: &str) -> String {
    env.emulator.state().ensure_user(email, "Operator Test");
    let connected = env.connect_drive(email).await.expect("connect");
    connected["connection"]["id"].as_str().expect("connection id").to_owned()
}

async fn import(env: &TestEnv, connection: &str, files: &[(String, String)]) -> String {
    let files: Vec<Value> = files.iter().map(|(id, name)| json!({ "id": id, "name": name })).collect();
    let response = env
        .api(Method::POST, "/cloud-storage/import")
        .json(&json!({ "connection_id": connection, "files": files }))
        .send()
        .await
        .expect("import");
    assert!(response.status().is_success(), "{}", response.status());
    let body: Value = response.json().await.expect("json");
    body["job_id"].as_str().expect("job id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_watch_follows_a_job_to_its_end_and_its_exit_code_says_how_it_ended() {
    let env = TestEnv::start().await.expect("env");
    let email = "watch@example.com";
    let connection = connect(&env, email).await;
    let drive = env.emulator.state();
    let a = drive.create_file(email, None, "a.bin", "application/octet-stream", filler(2 * 1024 * 1024, 1));
    let b = drive.create_file(email, None, "b.bin", "application/octet-stream", filler(300 * 1024, 2));

    // A job that completes: followed from the start, exit 0, a last line with every file done.
    let job = import(&env, &connection, &[(a.clone(), "a.bin".into()), (b.clone(), "b.bin".into())]).await;
    let watched = ferryctl(&env, &["jobs", "watch", &job, "--interval-ms", "200", "--timeout-secs", "120"], &[]);
    let out = text(&watched);
    assert_eq!(watched.status.code(), Some(0), "{out}");
    let stdout = String::from_utf8_lossy(&watched.stdout);
    let last = stdout.lines().last().expect("a line");
    assert!(last.starts_with(&format!("{job} import completed: files 2/2 (completed 2, failed 0")), "{out}");
    assert!(last.contains("bytes 2.3 MiB"), "{out}");
    assert!(!stdout.contains('\x1b'), "no terminal control sequences when stdout is not a terminal: {out}");

    // On a terminal (a pseudo-terminal from util-linux's `script`) the same job is drawn as progress bars.
    let command = format!(
        "{} --database-url {} jobs watch {job} --interval-ms 200 --timeout-secs 60",
        env!("CARGO_BIN_EXE_ferryctl"),
        env.database.url
    );
    let on_tty = Command::new("script").args(["-qefc", &command, "/dev/null"]).stdin(Stdio::null()).output();
    let on_tty = on_tty.expect("script (util-linux) runs");
    let screen = String::from_utf8_lossy(&on_tty.stdout);
    assert_eq!(on_tty.status.code(), Some(0), "{}", text(&on_tty));
    assert!(screen.contains("files [##############################] 2/2"), "{screen}");
    assert!(screen.contains("bytes [##############################] 2.3 MiB / 2.3 MiB"), "{screen}");

    // A job with a file that cannot be imported: the failure is printed with its reason, and the exit code is 2.
    let partial =
        import(&env, &connection, &[(a, "again.bin".into()), ("no-such-file".into(), "gone.bin".into())]).await;
    let watched = ferryctl(&env, &["jobs", "watch", &partial, "--interval-ms", "200", "--timeout-secs", "120"], &[]);
    let out = text(&watched);
    assert_eq!(watched.status.code(), Some(2), "partial: {out}");
    let stdout = String::from_utf8_lossy(&watched.stdout);
    let failed: Vec<&str> = stdout.lines().filter(|l| l.starts_with("failed ")).collect();
    assert_eq!(failed.len(), 1, "each failure once: {out}");
    assert!(failed[0].starts_with("failed #2 gone.bin (drive_not_found)"), "{out}");
    assert!(stdout.lines().last().expect("line").contains("partial"), "{out}");

    // The list shows both, newest first, with their public status words.
    let listed = ferryctl(&env, &["jobs", "list"], &[]);
    let out = text(&listed);
    assert!(listed.status.success(), "{out}");
    let stdout = String::from_utf8_lossy(&listed.stdout);
    let rows: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(rows[0].starts_with(&partial) && rows[0].contains("partial") && rows[0].contains("tenant-a"), "{out}");
    assert!(rows[1].starts_with(&job) && rows[1].contains("completed") && rows[1].contains("2/2"), "{out}");
    let only = ferryctl(&env, &["jobs", "list", "--status", "partial"], &[]);
    assert_eq!(String::from_utf8_lossy(&only.stdout).lines().count(), 2, "{}", text(&only));
    let bad = ferryctl(&env, &["jobs", "list", "--status", "done"], &[]);
    assert!(!bad.status.success() && text(&bad).contains("unknown status \"done\""), "{}", text(&bad));

    let missing = ferryctl(&env, &["jobs", "watch", "job_00000000000000000000000000000000"], &[]);
    assert!(!missing.status.success() && text(&missing).contains("no job"), "{}", text(&missing));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoked_key_is_refused_by_the_gateway_within_seconds() {
    let env = TestEnv::start().await.expect("env");
    let created = ferryctl(&env, &["api-key", "create", "--tenant", "acme"], &[]);
    assert!(created.status.success(), "{}", text(&created));
    let key = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    let other = ferryctl(&env, &["api-key", "create", "--tenant", "acme"], &[]);
    let other_key = String::from_utf8_lossy(&other.stdout).trim().to_owned();
    let status = |key: String| {
        let request = env.api_as(&key, Method::GET, "/cloud-storage/connections");
        async move { request.send().await.expect("request").status() }
    };
    assert_eq!(status(key.clone()).await, StatusCode::OK);

    let listed = ferryctl(&env, &["api-key", "list", "--tenant", "acme"], &[]);
    let stdout = String::from_utf8_lossy(&listed.stdout).into_owned();
    let prefix = &key[..8];
    assert_eq!(stdout.lines().count(), 2, "{}", text(&listed));
    assert!(stdout.lines().any(|l| l.starts_with(prefix) && l.ends_with("active")), "{}", text(&listed));
    assert!(!stdout.contains(&key), "keys are never shown again");

    let revoked = ferryctl(&env, &["api-key", "revoke", prefix], &[]);
    assert!(revoked.status.success(), "{}", text(&revoked));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let now = status(key.clone()).await;
        if now == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the revoked key still answers {now} after 5 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status(other_key).await, StatusCode::OK, "only that key is revoked");

    let listed = ferryctl(&env, &["api-key", "list", "--tenant", "acme"], &[]);
    let stdout = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(stdout.lines().any(|l| l.starts_with(prefix) && l.contains("\trevoked ")), "{stdout}");
    let again = ferryctl(&env, &["api-key", "revoke", prefix], &[]);
    assert!(!again.status.success() && text(&again).contains("no active key matches"), "{}", text(&again));
    let nonsense = ferryctl(&env, &["api-key", "revoke", "abcd"], &[]);
    assert!(!nonsense.status.success() && text(&nonsense).contains("is not a key prefix"), "{}", text(&nonsense));
    env.shutdown().await;
}

/// Every sealed value in a plain-SQL dump of the test database, and the dump itself.
fn dump(env: &TestEnv) -> String {
    let output = Command::new("pg_dump")
        .args(["--data-only", "--no-owner", &env.database.url])
        .output()
        .expect("pg_dump runs (apt-get install postgresql-client)");
    assert!(output.status.success(), "pg_dump: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8 dump")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_rotate_reseals_everything_and_then_the_old_key_can_be_removed() {
    let mut env = TestEnv::start().await.expect("env");
    let email = "rotate@example.com";
    let connection = connect(&env, email).await;
    let drive = env.emulator.state();
    let file = drive.create_file(email, None, "r.bin", "application/octet-stream", filler(100 * 1024, 3));
    let job = import(&env, &connection, &[(file.clone(), "r.bin".into())]).await;
    assert_eq!(env.wait_for_job(&job, Duration::from_secs(60)).await.expect("job")["status"], "completed");
    // A pending OAuth flow: its PKCE verifier is sealed too.
    let started = env
        .api(Method::POST, "/cloud-storage/auth/google_drive")
        .json(&json!({ "provider": "google_drive" }))
        .send()
        .await
        .expect("start");
    assert!(started.status().is_success());
    let before = dump(&env);
    assert!(before.contains("v1.dev-1."), "values are sealed with the development key");

    let rotation = [
        ("FERRY__CRYPTO__TOKEN_KEY_ID", "prod-2"),
        ("FERRY__CRYPTO__TOKEN_KEY", NEW_KEY),
        ("FERRY__CRYPTO__PREVIOUS_TOKEN_KEYS", &format!("dev-1:{DEV_KEY}")),
    ];
    let first = ferryctl(&env, &["keys", "rotate"], &rotation);
    assert!(first.status.success(), "{}", text(&first));
    // The connection's access and refresh token, and the PKCE verifiers of two OAuth states (the consumed one
    // that made the connection and the pending one).
    assert_eq!(String::from_utf8_lossy(&first.stdout).trim(), "4", "{}", text(&first));
    let second = ferryctl(&env, &["keys", "rotate"], &rotation);
    assert!(second.status.success(), "{}", text(&second));
    assert_eq!(String::from_utf8_lossy(&second.stdout).trim(), "0", "safe to run twice: {}", text(&second));
    let after = dump(&env);
    assert!(!after.contains("v1.dev-1."), "nothing is left under the old key");
    assert!(after.contains("v1.prod-2."));

    // Without the old key a rotation cannot open anything it would need, but there is nothing left to open.
    let without_old = [("FERRY__CRYPTO__TOKEN_KEY_ID", "prod-2"), ("FERRY__CRYPTO__TOKEN_KEY", NEW_KEY)];
    let third = ferryctl(&env, &["keys", "rotate"], &without_old);
    assert!(third.status.success() && String::from_utf8_lossy(&third.stdout).trim() == "0", "{}", text(&third));

    // The services run with only the new key: browsing opens the stored token, and a new import works.
    env.restart_services(&[("crypto.token_key_id", "prod-2"), ("crypto.token_key", NEW_KEY)]).await.expect("restart");
    let browse =
        env.api(Method::GET, &format!("/cloud-storage/connections/{connection}/browse")).send().await.expect("browse");
    assert_eq!(browse.status(), StatusCode::OK);
    let job = import(&env, &connection, &[(file, "again.bin".into())]).await;
    assert_eq!(env.wait_for_job(&job, Duration::from_secs(60)).await.expect("job")["status"], "completed");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_dump_holds_no_plaintext_token_key_or_session() {
    let env = TestEnv::start().await.expect("env");
    let email = "dump@example.com";
    let connection = connect(&env, email).await;
    let drive = env.emulator.state();
    let file = drive.create_file(email, None, "d.bin", "application/octet-stream", filler(600 * 1024, 4));
    let job = import(&env, &connection, &[(file, "d.bin".into())]).await;
    let finished = env.wait_for_job(&job, Duration::from_secs(60)).await.expect("import");
    assert_eq!(finished["status"], "completed");
    let files: Value = env.api(Method::GET, "/files").send().await.expect("files").json().await.expect("json");
    let image = files["items"][0]["id"].as_str().or_else(|| files["files"][0]["id"].as_str()).expect("a file id");
    let exported = env.export_and_wait(&connection, &[image], "Out").await.expect("export");
    assert_eq!(exported["status"], "completed");

    let secrets = env.emulator.state().known_secrets();
    assert!(secrets.len() >= 2, "the emulator issued an access and a refresh token: {}", secrets.len());
    let dumped = dump(&env);
    assert!(dumped.contains("v1.dev-1."), "the dump has the sealed columns");
    for secret in secrets.iter().chain([&env.api_key]) {
        assert!(!dumped.contains(secret.as_str()), "a secret is in the dump in plaintext: {}…", &secret[..8]);
    }
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prune_removes_only_what_is_older_than_the_retention() {
    let env = TestEnv::start().await.expect("env");
    let email = "prune@example.com";
    let connection = connect(&env, email).await;
    let drive = env.emulator.state();
    let file = drive.create_file(email, None, "p.bin", "application/octet-stream", filler(10 * 1024, 5));
    let job = import(&env, &connection, &[(file, "p.bin".into())]).await;
    env.wait_for_job(&job, Duration::from_secs(60)).await.expect("job");
    // A picker session and an OAuth state that expire at once, and a live OAuth flow.
    let db = &env.database.db;
    let past = chrono::Utc::now() - chrono::Duration::seconds(5);
    let tenant = db.tenant(env.tenant_id);
    tenant
        .create_picker_session("session-hash", ferry_core::ConnectionId::parse(&connection).expect("id"), past)
        .await
        .expect("picker session");
    tenant
        .insert_oauth_state(ferry_db::oauth_states::NewOAuthState {
            state: "expired-state",
            provider: "google_drive",
            pkce_verifier_sealed: "sealed",
            redirect_uri: None,
            expires_at: past,
        })
        .await
        .expect("state");
    let live = env
        .api(Method::POST, "/cloud-storage/auth/google_drive")
        .json(&json!({ "provider": "google_drive" }))
        .send()
        .await
        .expect("start");
    assert!(live.status().is_success());

    // Within the default retention (a week) nothing is old enough.
    let kept = ferryctl(&env, &["prune"], &[]);
    assert!(kept.status.success(), "{}", text(&kept));
    assert_eq!(String::from_utf8_lossy(&kept.stdout).trim(), "outbox_rows=0 oauth_states=0 picker_sessions=0");

    let pruned = ferryctl(&env, &["prune", "--retention-hours", "0"], &[]);
    assert!(pruned.status.success(), "{}", text(&pruned));
    assert_eq!(
        String::from_utf8_lossy(&pruned.stdout).trim(),
        "outbox_rows=1 oauth_states=2 picker_sessions=1",
        "the published import message, the state consumed by the connection, the expired state and session; \
         not the live state"
    );
    assert_eq!(db.outbox_backlog().await.expect("backlog").0, 0);
    // The live OAuth flow still completes.
    let body: Value = live.json().await.expect("json");
    let (code, state) = env.authorize(body["authorization_url"].as_str().expect("url")).await.expect("authorize");
    let callback = env
        .api(Method::POST, "/cloud-storage/auth/google_drive/callback")
        .json(&json!({ "code": code, "state": state }))
        .send()
        .await
        .expect("callback");
    assert_eq!(callback.status(), StatusCode::OK);
    let again = ferryctl(&env, &["prune", "--retention-hours", "0"], &[]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("picker_sessions=0"), "{}", text(&again));
    env.shutdown().await;
}

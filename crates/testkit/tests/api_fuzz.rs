//! The API against its own document: schemathesis (pinned in `scripts/bootstrap.sh`, installed into the project
//! venv) generates valid and invalid requests for every operation from the served OpenAPI document, runs every
//! check (status codes, response schemas, content types, `405` with `Allow`, negative-data rejection, auth) and
//! the stateful phase that chains operations through their links. Any finding fails the test.
//!
//! `tests/fuzz/schemathesis.toml` turns one check off for one operation (why is written there) and
//! `tests/fuzz/ferry_fuzz_hooks.py` states the one request rule JSON Schema cannot (an import's Drive ids are
//! unique by `id`).
//!
//! The gateway runs with both workers, a tenant and one connected emulator account that has files and a folder,
//! so imports, exports and browsing reach real code paths rather than stopping at "no such connection".

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use ferry_testkit::{TestEnv, Workers};

/// Generous: the run takes about a minute on an idle 2-core machine.
const RUN_DEADLINE: Duration = Duration::from_secs(600);

const FUZZ_USER: &str = "fuzz@example.com";

/// `st` next to the venv's python that `scripts/bootstrap.sh` creates (or `$FERRY_TEST_PYTHON`'s venv).
fn schemathesis() -> PathBuf {
    ferry_storage::testing::test_python().with_file_name("st")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schemathesis_finds_nothing_in_the_served_document() {
    let env = TestEnv::start_with(Workers::ALL, &[]).await.expect("start");
    let drive = env.emulator.state();
    drive.ensure_user(FUZZ_USER, "Fuzz Tester");
    let folder = drive.create_folder(FUZZ_USER, None, "Reports");
    drive.create_file(FUZZ_USER, Some(&folder), "report.pdf", "application/pdf", "%PDF-1.4 fuzz".into());
    drive.create_file(FUZZ_USER, None, "notes.txt", "text/plain", "notes".into());
    env.connect_drive(FUZZ_USER).await.expect("connect");

    let st = schemathesis();
    assert!(
        st.exists(),
        "{} is missing: run scripts/bootstrap.sh (it installs schemathesis into target/emulator-python)",
        st.display()
    );
    // A fixed seed keeps the run repeatable; FERRY_FUZZ_SEED and FERRY_FUZZ_EXAMPLES explore further.
    let seed = std::env::var("FERRY_FUZZ_SEED").unwrap_or_else(|_| "1".to_owned());
    let examples = std::env::var("FERRY_FUZZ_EXAMPLES").unwrap_or_else(|_| "30".to_owned());
    let report = tempfile::tempdir().expect("report dir");
    let mut command = tokio::process::Command::new(&st);
    command
        .arg("--config-file")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz/schemathesis.toml"))
        .arg("run")
        .arg(env.url("/api/v2/openapi.json"))
        .args(["--url", &env.url("")])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--max-examples", &examples, "--seed", &seed, "--workers", "1"])
        .args(["--request-timeout", "30"])
        .args(["--header", &format!("Authorization: Bearer {}", env.api_key)])
        .arg("--report-dir")
        .arg(report.path())
        .env("NO_COLOR", "1")
        .env("FERRY_FUZZ_COMPANY", env.tenant_id.0.to_string())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONPATH", concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz"))
        .env("SCHEMATHESIS_HOOKS", "ferry_fuzz_hooks")
        // Anything schemathesis writes lands in the temporary directory, not in the checkout.
        .current_dir(report.path())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(RUN_DEADLINE, command.output())
        .await
        .expect("schemathesis did not finish within its deadline")
        .expect("running schemathesis");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    env.shutdown().await;
    println!("{stdout}");
    assert!(output.status.success(), "schemathesis reported findings ({}):\n{stdout}\n{stderr}", output.status);
}

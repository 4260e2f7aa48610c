//! Fidelity: Google's google-api-python-client, unmodified, against an emulator on 127.0.0.1:0.
//!
//! Runs `tests/python/fidelity.py`. The interpreter is `$FERRY_EMULATOR_PYTHON`, else the venv that
//! `scripts/bootstrap.sh` creates (`target/emulator-python`), else `python3`. A missing interpreter or
//! library fails the test (it is part of `make test`), saying how to install them.

use std::path::{Path, PathBuf};
use std::process::Output;

use drive_emulator::EmulatorConfig;

const HOW_TO_FIX: &str = "run scripts/bootstrap.sh (it installs google-api-python-client and google-auth into \
                          target/emulator-python), or point FERRY_EMULATOR_PYTHON at a python3 that has them";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("FERRY_EMULATOR_PYTHON") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace_root().join("target"), PathBuf::from);
    let venv = target.join("emulator-python/bin/python");
    if venv.exists() { venv } else { PathBuf::from("python3") }
}

async fn run(python: &Path, args: &[&str]) -> Output {
    match tokio::process::Command::new(python).args(args).kill_on_drop(true).output().await {
        Ok(out) => out,
        Err(e) => panic!("cannot run {}: {e}; {HOW_TO_FIX}", python.display()),
    }
}

fn show(out: &Output) -> String {
    format!(
        "exit status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn google_api_python_client_runs_unmodified() {
    let python = python();
    let probe =
        run(&python, &["-c", "import googleapiclient.discovery, googleapiclient.http, google.oauth2.credentials"])
            .await;
    assert!(
        probe.status.success(),
        "{} lacks google-api-python-client / google-auth: {HOW_TO_FIX}\n{}",
        python.display(),
        show(&probe)
    );

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let emu = drive_emulator::spawn(EmulatorConfig::default(), listener).await.expect("spawn");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/fidelity.py");
    let script = script.to_str().expect("utf-8 path");
    let out = run(&python, &[script, emu.base_url(), "python-fidelity@ferry.test"]).await;
    assert!(out.status.success(), "fidelity.py failed\n{}", show(&out));

    // What the library did, seen from the emulator's side.
    let counters = emu.state().counters();
    let user = &counters.users["python-fidelity@ferry.test"];
    for endpoint in ["about.get", "files.create", "upload.multipart.create", "upload.resumable.chunk", "files.list"] {
        assert!(user.endpoints.get(endpoint).is_some_and(|n| *n > 0), "{endpoint} not called: {counters:?}");
    }
    // The 429 and the 403 the library retried past.
    assert_eq!(counters.injected.get("rate_limit_429"), Some(&1), "{counters:?}");
    assert_eq!(counters.injected.get("user_rate_limit_403"), Some(&1), "{counters:?}");
    // One code exchange, the first refresh (no access token given), the refresh after expiry.
    assert!(counters.endpoints.get("oauth.token").is_some_and(|n| *n >= 3), "{counters:?}");
    emu.stop().await;
}

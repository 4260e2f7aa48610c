//! A real S3-compatible server for tests: moto's server (`moto[server]` from PyPI, installed by
//! `scripts/bootstrap.sh` into the project venv), started per test on a free port, with a fresh bucket
//! per test. Stopped when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ferry_config::{S3Settings, Secret};

/// How long moto may take to start (it imports Flask and boto; about a second when idle).
const START_TIMEOUT: Duration = Duration::from_secs(60);

const HOW_TO_FIX: &str = "run scripts/bootstrap.sh (it installs moto[server] into target/emulator-python), or point \
                          FERRY_TEST_PYTHON at a python3 that has moto[server]";

/// The Python that has moto: `$FERRY_TEST_PYTHON`, else the venv `scripts/bootstrap.sh` creates under the
/// cargo target directory, else `python3`.
pub fn test_python() -> PathBuf {
    if let Some(python) = std::env::var_os("FERRY_TEST_PYTHON") {
        return PathBuf::from(python);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), PathBuf::from);
    let venv = target.join("emulator-python/bin/python");
    if venv.exists() { venv } else { PathBuf::from("python3") }
}

/// A running moto S3 server.
pub struct S3TestServer {
    child: Child,
    endpoint: String,
}

impl S3TestServer {
    /// Starts moto on `127.0.0.1:0` and waits until it reports its port.
    pub fn start() -> Result<Self, String> {
        let python = test_python();
        let mut child = Command::new(&python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}; {HOW_TO_FIX}", python.display()))?;
        let Some(stderr) = child.stderr.take() else {
            let _ = child.kill();
            return Err("moto's stderr was not captured".to_owned());
        };
        // The reader keeps draining stderr (moto logs every request there) so the pipe never fills.
        let (port_tx, port_rx) = mpsc::channel::<Result<u16, String>>();
        std::thread::spawn(move || {
            let mut port_tx = Some(port_tx);
            let mut seen = Vec::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(tx) = port_tx.as_ref() {
                    if let Some(port) = running_port(&line) {
                        let _ = tx.send(Ok(port));
                        port_tx = None;
                    } else if seen.len() < 50 {
                        seen.push(line);
                    }
                }
            }
            if let Some(tx) = port_tx {
                let _ = tx.send(Err(format!("moto exited before listening; {HOW_TO_FIX}\n{}", seen.join("\n"))));
            }
        });
        match port_rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(port)) => Ok(Self { child, endpoint: format!("http://127.0.0.1:{port}") }),
            Ok(Err(message)) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(message)
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("moto did not start within {START_TIMEOUT:?}"))
            }
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Creates a bucket with a fresh name and returns that name.
    pub async fn create_bucket(&self) -> Result<String, String> {
        let bucket = format!("ferry-test-{}", uuid::Uuid::new_v4().simple());
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("building an HTTP client: {e}"))?;
        let response = client
            .put(format!("{}/{bucket}", self.endpoint))
            .send()
            .await
            .map_err(|e| format!("creating bucket {bucket}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("creating bucket {bucket}: moto answered {}", response.status()));
        }
        Ok(bucket)
    }

    /// Settings of the `s3` backend for `bucket` on this server (moto accepts any credentials).
    pub fn settings(&self, bucket: &str) -> S3Settings {
        S3Settings {
            bucket: bucket.to_owned(),
            endpoint: self.endpoint.clone(),
            region: "us-east-1".to_owned(),
            access_key_id: "ferry-test".to_owned(),
            secret_access_key: Secret::from("ferry-test-secret"),
            allow_http: true,
        }
    }

    /// The same settings as `(key, value)` overrides for `Settings::from_sources`.
    pub fn overrides(&self, bucket: &str) -> Vec<(String, String)> {
        let s = self.settings(bucket);
        vec![
            ("storage.backend".to_owned(), "s3".to_owned()),
            ("storage.s3.bucket".to_owned(), s.bucket),
            ("storage.s3.endpoint".to_owned(), s.endpoint),
            ("storage.s3.region".to_owned(), s.region),
            ("storage.s3.access_key_id".to_owned(), s.access_key_id),
            ("storage.s3.secret_access_key".to_owned(), s.secret_access_key.expose().clone()),
            ("storage.s3.allow_http".to_owned(), "true".to_owned()),
        ]
    }
}

impl Drop for S3TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port in werkzeug's ` * Running on http://127.0.0.1:PORT` line.
fn running_port(line: &str) -> Option<u16> {
    let rest = line.split("Running on http://127.0.0.1:").nth(1)?;
    rest.trim().split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

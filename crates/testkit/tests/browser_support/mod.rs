//! Shared by the console's browser tests: headless Chromium driven through chromedriver (WebDriver over
//! loopback HTTP), with waits on page conditions and screenshots written under the target directory.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::wd::WindowHandle;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Generous: the suite runs on a loaded 2-core machine.
pub const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);

const BOOTSTRAP_HINT: &str =
    "run scripts/bootstrap.sh (or `make test`), which installs Debian's chromium and chromium-driver";

/// Chromium's switches for this machine: without them it stalls reaching for the (closed) network.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
];

fn find_program(env_var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env_var).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).flat_map(|dir| names.iter().map(move |n| dir.join(n))).find(|p| p.is_file())
}

/// Where screenshots go: `<target>/console-screenshots/<test>/`.
pub fn screenshot_dir(test: &str) -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("console-screenshots").join(test)
}

pub struct Browser {
    pub client: Client,
    driver: tokio::process::Child,
    _profile: tempfile::TempDir,
    shots: PathBuf,
    step: u32,
}

impl Browser {
    /// Starts chromedriver and a fresh headless Chromium profile. Fails (never skips) when either is missing.
    pub async fn start(test: &str) -> Browser {
        let chromium = find_program("FERRY_CHROMIUM", &["chromium", "chromium-browser", "google-chrome"])
            .unwrap_or_else(|| panic!("Chromium is not installed, so the console cannot be tested: {BOOTSTRAP_HINT}"));
        let chromedriver = find_program("FERRY_CHROMEDRIVER", &["chromedriver"]).unwrap_or_else(|| {
            panic!("chromedriver is not installed, so the console cannot be tested: {BOOTSTRAP_HINT}")
        });
        let mut driver = tokio::process::Command::new(&chromedriver)
            .arg("--port=0")
            // Its own process group, which Chromium joins: a failed test kills the whole group (see Drop).
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}; {BOOTSTRAP_HINT}", chromedriver.display()));
        let stdout = driver.stdout.take().expect("chromedriver stdout is piped");
        let port = tokio::time::timeout(WAIT, async {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(port) = line.split("started successfully on port ").nth(1) {
                    return port.trim().trim_end_matches('.').parse::<u16>().ok();
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .expect("chromedriver did not report its port");

        let profile = tempfile::tempdir().expect("profile directory");
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| (*a).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        // An alert must stay open so the hostile-content test can see it.
        capabilities.insert("unhandledPromptBehavior".into(), json!("ignore"));
        capabilities.insert("timeouts".into(), json!({ "pageLoad": 60_000, "script": 30_000, "implicit": 0 }));
        capabilities.insert("goog:chromeOptions".into(), json!({ "binary": chromium, "args": args }));
        let client = tokio::time::timeout(
            WAIT,
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(capabilities)
                .connect(&format!("http://127.0.0.1:{port}")),
        )
        .await
        .expect("Chromium started within the time limit")
        .unwrap_or_else(|err| panic!("Chromium did not start through chromedriver: {err}; {BOOTSTRAP_HINT}"));

        let shots = screenshot_dir(test);
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).expect("screenshot directory");
        Browser { client, driver, _profile: profile, shots, step: 0 }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|err| panic!("opening {url}: {err}"));
    }

    /// Runs `body` (a function body using `arguments`) in the page.
    pub async fn js(&self, body: &str, args: Vec<Value>) -> Value {
        self.client.execute(body, args).await.unwrap_or_else(|err| panic!("script failed: {err}\n{body}"))
    }

    /// Waits until `expression` (evaluated in the page) is truthy and returns its value. On timeout, saves a
    /// screenshot and fails with `what`.
    pub async fn wait_for(&mut self, what: &str, expression: &str) -> Value {
        self.wait_for_with(what, expression, vec![]).await
    }

    pub async fn wait_for_with(&mut self, what: &str, expression: &str, args: Vec<Value>) -> Value {
        let script = format!("try {{ return ({expression}) || null; }} catch (e) {{ return null; }}");
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match self.client.execute(&script, args.clone()).await {
                Ok(value) if !value.is_null() && value != json!(false) => return value,
                Ok(_) => {}
                // The window may be navigating (or closing, for a popup): try again.
                Err(err) if err.is_no_such_window() => {}
                Err(err) if err.is_javascript_error() || err.is_unknown_error() => {}
                Err(err) => panic!("waiting for {what}: {err}"),
            }
            if tokio::time::Instant::now() > deadline {
                self.shot(&format!("timeout-{}", what.replace(|c: char| !c.is_ascii_alphanumeric(), "-"))).await;
                let page = self.client.execute("return document.body ? document.body.innerText : ''", vec![]).await;
                panic!("timed out after {WAIT:?} waiting for {what}; the page said:\n{}", page.unwrap_or_default());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Scrolls the element to the middle of the window (clear of sticky bars), then clicks it as a user would.
    pub async fn click(&self, css: &str) {
        let element = self.client.find(Locator::Css(css)).await.unwrap_or_else(|err| panic!("finding {css}: {err}"));
        self.client
            .execute("arguments[0].scrollIntoView({block: 'center'});", vec![json!(element)])
            .await
            .unwrap_or_else(|err| panic!("scrolling to {css}: {err}"));
        element.click().await.unwrap_or_else(|err| panic!("clicking {css}: {err}"));
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.client.find(Locator::Css(css)).await.unwrap_or_else(|err| panic!("finding {css}: {err}"));
        element.send_keys(text).await.unwrap_or_else(|err| panic!("typing into {css}: {err}"));
    }

    /// Marks the first element matching `css` whose `data-name` equals `name` (names may hold anything, so
    /// they never go into a selector) and clicks `inner` inside it.
    pub async fn click_in_named(&self, css: &str, name: &str, inner: &str) {
        let found = self
            .js(
                "document.querySelectorAll('[data-target]').forEach(e => e.removeAttribute('data-target'));
                 const el = [...document.querySelectorAll(arguments[0])].find(e => e.dataset.name === arguments[1]);
                 if (!el) return false;
                 el.setAttribute('data-target', '1');
                 return true;",
                vec![json!(css), json!(name)],
            )
            .await;
        assert_eq!(found, json!(true), "no {css} named {name:?}");
        self.click(&format!("[data-target] {inner}")).await;
    }

    pub async fn window(&self) -> WindowHandle {
        self.client.window().await.expect("current window")
    }

    /// Waits for a second window (the OAuth popup) and switches to it.
    pub async fn switch_to_popup(&mut self, main: &WindowHandle) -> WindowHandle {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let windows = self.client.windows().await.expect("window handles");
            if let Some(popup) = windows.into_iter().find(|w| w != main) {
                self.client.switch_to_window(popup.clone()).await.expect("switching to the popup");
                return popup;
            }
            assert!(tokio::time::Instant::now() < deadline, "no popup window opened within {WAIT:?}");
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `window` is gone (the callback page closes itself).
    pub async fn wait_window_closed(&self, window: &WindowHandle) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.client.windows().await.expect("window handles").contains(window) {
            assert!(tokio::time::Instant::now() < deadline, "the popup did not close within {WAIT:?}");
            tokio::time::sleep(POLL).await;
        }
    }

    pub async fn switch_to(&self, window: &WindowHandle) {
        self.client.switch_to_window(window.clone()).await.expect("switching windows");
    }

    pub async fn resize(&self, width: u32, height: u32) {
        self.client.set_window_size(width, height).await.expect("resizing the window");
    }

    /// Saves `NN-name.png` for people to look at, and returns its path.
    pub async fn shot(&mut self, name: &str) -> PathBuf {
        self.step += 1;
        let path = self.shots.join(format!("{:02}-{name}.png", self.step));
        match self.client.screenshot().await {
            Ok(png) => {
                if let Err(err) = std::fs::write(&path, png) {
                    eprintln!("could not write {}: {err}", path.display());
                }
            }
            Err(err) => eprintln!("no screenshot for {name}: {err}"),
        }
        path
    }

    /// Records Content-Security-Policy violations in `window.__cspViolations` (checked by [`Self::csp_violations`]).
    pub async fn record_csp_violations(&self) {
        self.js(
            "window.__cspViolations = [];
             document.addEventListener('securitypolicyviolation',
               e => window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sample || '')));",
            vec![],
        )
        .await;
    }

    pub async fn csp_violations(&self) -> Vec<String> {
        serde_json::from_value(self.js("return window.__cspViolations || [];", vec![]).await).unwrap_or_default()
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
        // Drop kills chromedriver and whatever Chromium left behind.
    }
}

impl Drop for Browser {
    /// Also runs when a test panics before [`Browser::close`]: without it Chromium would outlive the test.
    fn drop(&mut self) {
        if let Some(pid) = self.driver.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.driver.start_kill();
    }
}

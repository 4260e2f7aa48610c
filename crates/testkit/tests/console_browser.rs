//! The web console in a real browser (headless Chromium over chromedriver), against the whole system started
//! in process: the popup OAuth flow, browsing, importing with live progress, the store, exporting, hostile
//! names and messages shown as text, and the callback page's refusal to talk to other origins.
//! Screenshots of each step land in `<target>/console-screenshots/<test>/`.

mod browser_support;

use std::time::Duration;

use browser_support::Browser;
use ferry_testkit::drive_emulator::seed::filler;
use ferry_testkit::{TestEnv, Workers};
use md5::{Digest, Md5};
use reqwest::Method;
use serde_json::{Value, json};

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// Signs in with the environment's key and waits for the signed-in view.
async fn sign_in(browser: &mut Browser, env: &TestEnv) {
    browser.goto(&env.url("/console")).await;
    browser.wait_for("the sign-in form", "document.querySelector('[data-testid=api-key]')").await;
    browser.record_csp_violations().await;
    browser.shot("sign-in").await;
    browser.type_into("[data-testid=api-key]", &env.api_key).await;
    browser.click("[data-testid=sign-in]").await;
    browser.wait_for("the signed-in view", "!document.querySelector('#app-view').hidden").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_connects_browses_imports_and_exports() {
    let env = TestEnv::start().await.expect("test environment");
    let drive = env.emulator.state();
    let email = "ada@example.com";
    drive.ensure_user(email, "Ada Example");
    // The consent page (rather than an instant approval) makes the popup a real page to click through.
    drive.set_auto_approve(false);
    let photos = drive.create_folder(email, None, "Photos");
    let contents = [
        ("harbour.jpg", "image/jpeg", filler(180 * 1024, 11)),
        ("lighthouse.png", "image/png", filler(420 * 1024 + 3, 12)),
        ("manifest.pdf", "application/pdf", filler(64 * 1024 + 9, 13)),
        ("left-behind.txt", "text/plain", filler(1000, 14)),
    ];
    for (name, mime, bytes) in &contents {
        drive.create_file(email, Some(&photos), name, mime, bytes.clone());
    }

    let mut browser = Browser::start("whole-flow").await;
    let main = browser.window().await;
    sign_in(&mut browser, &env).await;
    browser.wait_for("the empty connections hint", "document.querySelector('#connections-state.empty')").await;
    browser.shot("signed-in").await;

    // Connect through the popup: the console opens it, the emulator's consent page asks, the callback answers.
    browser.type_into("#login-hint", email).await;
    browser.click("[data-testid=connect-drive]").await;
    let popup = browser.switch_to_popup(&main).await;
    browser.wait_for("the consent page", "document.querySelector('#allow')").await;
    let prefilled = browser.js("return document.querySelector('#email').value", vec![]).await;
    assert_eq!(prefilled, json!(email), "the console passes the account as login_hint");
    browser.shot("consent-popup").await;
    browser.click("#allow").await;
    browser.switch_to(&main).await;
    browser.wait_window_closed(&popup).await;
    let connection = browser
        .wait_for(
            "the new connection",
            "(() => { const c = document.querySelector('[data-testid=connection]'); return c && c.textContent; })()",
        )
        .await;
    assert!(connection.as_str().is_some_and(|t| t.contains("Ada Example") && t.contains(email)), "{connection}");
    let connections: Value =
        env.api(Method::GET, "/cloud-storage/connections").send().await.expect("list").json().await.expect("json");
    assert_eq!(connections["total_count"], 1, "{connections}");

    // Browse into the folder and pick three of its four files.
    browser
        .wait_for(
            "the Photos folder",
            "[...document.querySelectorAll('[data-testid=browse-entry]')].some(e => e.dataset.name === 'Photos')",
        )
        .await;
    browser.shot("connected").await;
    browser.click_in_named("[data-testid=browse-entry]", "Photos", "button").await;
    browser
        .wait_for(
            "the folder's files",
            "document.querySelectorAll('[data-testid=browse-entry] [data-testid=pick]').length === 4",
        )
        .await;
    let crumb = browser.js("return document.querySelector('#breadcrumbs .current').textContent", vec![]).await;
    assert_eq!(crumb, json!("Photos"));
    for (name, _, _) in &contents[..3] {
        browser.click_in_named("[data-testid=browse-entry]", name, "[data-testid=pick]").await;
    }
    let count = browser.js("return document.querySelector('#import-count').textContent", vec![]).await;
    assert_eq!(count, json!("3 files selected"));
    browser.shot("three-picked").await;

    // Import and watch the progress arrive over the job's event stream.
    browser.click("[data-testid=import-selected]").await;
    browser
        .wait_for(
            "the import to reach 3/3",
            "document.querySelector('[data-testid=job][data-type=import][data-status=completed] \
             [data-testid=job-progress][data-completed=\"3\"][data-total=\"3\"]')",
        )
        .await;
    let streamed = browser
        .js("return performance.getEntriesByType('resource').some(e => /\\/cloud-storage\\/jobs\\/job_[^/]+\\/events$/.test(e.name))", vec![])
        .await;
    assert_eq!(streamed, json!(true), "progress came from the job's /events stream");
    // The whole page from the top: this shot is the one in the README (docs/console.png).
    browser.js("window.scrollTo(0, 0);", vec![]).await;
    browser.shot("imported").await;

    // The files are in the store, with their bytes.
    let files: Value =
        env.api(Method::GET, "/files?folder_id=root").send().await.expect("files").json().await.expect("json");
    let mut stored: Vec<(String, String)> = files["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|f| {
            (f["name"].as_str().unwrap_or_default().to_owned(), f["status"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    stored.sort();
    assert_eq!(
        stored,
        vec![
            ("harbour.jpg".to_owned(), "ready".to_owned()),
            ("lighthouse.png".to_owned(), "ready".to_owned()),
            ("manifest.pdf".to_owned(), "ready".to_owned()),
        ]
    );
    browser.click("#tab-store").await;
    browser
        .wait_for(
            "three ready files in the store",
            "document.querySelectorAll('[data-testid=file-entry][data-status=ready]').length === 3",
        )
        .await;
    browser.shot("store").await;

    // Search by name, and download what it finds.
    browser.type_into("#search", "LIGHT").await;
    browser.click("#search-form button[type=submit]").await;
    browser
        .wait_for(
            "one search result",
            "document.querySelector('#store-crumbs .current').textContent === 'Search results' &&
             document.querySelectorAll('[data-testid=file-entry]').length === 1 &&
             document.querySelector('[data-testid=file-entry]').dataset.name === 'lighthouse.png'",
        )
        .await;
    browser.shot("search").await;
    browser.click("[data-testid=file-entry] button").await;
    browser
        .wait_for(
            "the download",
            "performance.getEntriesByType('resource').some(e => /\\/files\\/img_[^/]+\\/content$/.test(e.name))",
        )
        .await;
    browser.click("#clear-search").await;
    browser
        .wait_for("the whole store again", "document.querySelectorAll('[data-testid=file-entry]').length === 3")
        .await;

    // Export two of them to a new Drive folder.
    for name in ["harbour.jpg", "manifest.pdf"] {
        browser.click_in_named("[data-testid=file-entry]", name, "[data-testid=pick]").await;
    }
    browser.type_into("[data-testid=export-folder-name]", "From the console").await;
    let destination = browser.js("return document.querySelector('#export-destination').textContent", vec![]).await;
    assert_eq!(destination, json!("Destination: a new folder From the console in My Drive."));
    browser.shot("export-form").await;
    browser.click("[data-testid=export-selected]").await;
    browser
        .wait_for(
            "the export to reach 2/2",
            "document.querySelector('[data-testid=job][data-type=export][data-status=completed] \
             [data-testid=job-progress][data-completed=\"2\"][data-total=\"2\"]')",
        )
        .await;
    browser.shot("exported").await;

    // The emulator holds them, byte for byte, in the new folder.
    let root = drive.root_folder_id(email);
    let folders: Vec<_> = drive.children(&root).into_iter().filter(|f| f.name == "From the console").collect();
    assert_eq!(folders.len(), 1, "one export folder");
    let mut exported: Vec<(String, Option<String>)> =
        drive.children(&folders[0].id).into_iter().map(|f| (f.name, f.md5)).collect();
    exported.sort();
    assert_eq!(
        exported,
        vec![
            ("harbour.jpg".to_owned(), Some(md5_hex(&contents[0].2))),
            ("manifest.pdf".to_owned(), Some(md5_hex(&contents[2].2))),
        ]
    );

    // The same console at phone width.
    browser.resize(390, 844).await;
    browser.click("#tab-drive").await;
    browser.wait_for("the phone layout", "window.innerWidth <= 400").await;
    browser.shot("phone").await;

    assert_eq!(browser.csp_violations().await, Vec::<String>::new(), "the console stays inside its policy");
    browser.close().await;
    env.shutdown().await;
}

/// Clicks "Load more" until the folder is listed whole; returns how many entries it shows.
async fn list_every_page(browser: &mut Browser) -> Value {
    loop {
        let state = browser
            .wait_for(
                "a listed page",
                "(() => { if (document.querySelector('#entries[aria-busy]')) return null;
                   return { more: !document.querySelector('#browse-more').hidden,
                            count: document.querySelectorAll('[data-testid=browse-entry]').length }; })()",
            )
            .await;
        if state["more"] != json!(true) {
            return state["count"].clone();
        }
        browser.click("#browse-more").await;
        browser
            .wait_for_with(
                "the next page",
                "document.querySelectorAll('[data-testid=browse-entry]').length > arguments[0]",
                vec![state["count"].clone()],
            )
            .await;
    }
}

/// Waits until the Drive listing shows an entry named `name`.
async fn wait_for_entry(browser: &mut Browser, name: &str) {
    browser
        .wait_for_with(
            &format!("the entry {name}"),
            "[...document.querySelectorAll('[data-testid=browse-entry]')].some(e => e.dataset.name === arguments[0])",
            vec![json!(name)],
        )
        .await;
}

/// Markup and script in every shape that has broken web pages; each one, if it ran, would set
/// `window.__ferryPwned` or open a dialog.
const HOSTILE: &[&str] = &[
    "<script>window.__ferryPwned=1</script>",
    "<img src=x onerror=\"window.__ferryPwned=1\">",
    "<svg onload=window.__ferryPwned=1>",
    "\"><script>window.__ferryPwned=1</script>",
    "'><img src=x onerror=alert(1)>",
    "</title><script>alert(1)</script>",
    "</textarea><script>alert(1)</script>",
    "<iframe src=\"javascript:parent.__ferryPwned=1\"></iframe>",
    "<iframe srcdoc=\"<script>parent.__ferryPwned=1</script>\"></iframe>",
    "javascript:window.__ferryPwned=1",
    "<a href=\"javascript:window.__ferryPwned=1\">click me</a>",
    "<body onload=window.__ferryPwned=1>",
    "<details open ontoggle=window.__ferryPwned=1>",
    "<input autofocus onfocus=window.__ferryPwned=1>",
    "<select autofocus onfocus=alert(1)>",
    "<video><source onerror=\"window.__ferryPwned=1\"></video>",
    "<audio src=x onerror=alert(1)>",
    "<object data=\"javascript:window.__ferryPwned=1\"></object>",
    "<embed src=\"javascript:window.__ferryPwned=1\">",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<svg><animate onbegin=window.__ferryPwned=1 attributeName=x dur=1s>",
    "<marquee onstart=window.__ferryPwned=1>",
    "<style>@import 'http://127.0.0.1:9/x.css';</style>",
    "<base href=\"http://127.0.0.1:9/\">",
    "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">",
    "<form action=\"javascript:alert(1)\"><button>go</button></form>",
    "<div style=\"background:url(javascript:alert(1))\">styled</div>",
    "\" onmouseover=\"window.__ferryPwned=1\" x=\"",
    "' autofocus onfocus='window.__ferryPwned=1' x='",
    "{{constructor.constructor('window.__ferryPwned=1')()}}",
    "${window.__ferryPwned=1}",
    "&lt;script&gt;window.__ferryPwned=1&lt;/script&gt;",
    "%3Cscript%3Ewindow.__ferryPwned%3D1%3C%2Fscript%3E",
    "<!--<script>window.__ferryPwned=1</script>-->",
    "]]><script>alert(1)</script>",
    "<x contenteditable onblur=alert(1)>tab away</x>",
    "\u{202e}gpj.exe<script>alert(1)</script>",
];

/// Elements none of the console's own markup uses inside the signed-in view: any of them would mean a
/// remote string became markup.
const FOREIGN_ELEMENTS: &str = "#app-view img, #app-view svg, #app-view iframe, #app-view script, #app-view object, \
     #app-view embed, #app-view video, #app-view audio, #app-view math, #app-view marquee, #app-view details, \
     #app-view style, #app-view base, #app-view meta, #app-view textarea, #app-view x, #app-view [onerror], \
     #app-view [onload], #app-view [onfocus], #app-view a[href^=javascript]";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_names_errors_and_callback_text_are_shown_as_text() {
    assert!(HOSTILE.len() >= 30);
    let env = TestEnv::start_with(Workers { importer: true, exporter: false }, &[]).await.expect("test environment");
    let drive = env.emulator.state();
    let email = "mallory@example.com";
    drive.ensure_user(email, "<b>Mallory</b><img src=x onerror=alert(1)>");
    let payloads = drive.create_folder(email, None, "Payloads");
    let mut file_ids = Vec::new();
    for (i, name) in HOSTILE.iter().enumerate() {
        drive.create_folder(email, Some(&payloads), name);
        file_ids.push(drive.create_file(email, Some(&payloads), name, "text/plain", filler(100, i as u64)));
    }
    env.connect_drive(email).await.expect("connect");

    let mut browser = Browser::start("hostile-content").await;
    let main = browser.window().await;
    sign_in(&mut browser, &env).await;

    // Every folder and file name shows as itself, across both pages of the listing.
    browser
        .wait_for(
            "the Payloads folder",
            "[...document.querySelectorAll('[data-testid=browse-entry]')].some(e => e.dataset.name === 'Payloads')",
        )
        .await;
    browser.click_in_named("[data-testid=browse-entry]", "Payloads", "button").await;
    let listed = list_every_page(&mut browser).await;
    assert_eq!(listed, json!(2 * HOSTILE.len()), "every entry listed");
    let shown = browser
        .js(
            "return [...document.querySelectorAll('[data-testid=browse-entry]')].map(e =>
               [e.dataset.name, e.querySelector('.name').textContent, e.dataset.folder]);",
            vec![],
        )
        .await;
    for name in HOSTILE {
        for folder in ["true", "false"] {
            let row = json!([name, name, folder]);
            assert!(shown.as_array().expect("rows").contains(&row), "{name:?} ({folder}) is not shown as text");
        }
    }
    browser.shot("hostile-names").await;

    // A hostile folder's name in the breadcrumbs.
    browser.click_in_named("[data-testid=browse-entry][data-folder=true]", HOSTILE[1], "button").await;
    let crumb = browser
        .wait_for_with(
            "the hostile breadcrumb",
            "(() => { const c = document.querySelector('#breadcrumbs .current'); return c && c.textContent === arguments[0] && c.textContent; })()",
            vec![json!(HOSTILE[1])],
        )
        .await;
    assert_eq!(crumb, json!(HOSTILE[1]));
    browser.wait_for("the empty folder hint", "document.querySelector('#browse-state.empty')").await;
    browser.shot("hostile-breadcrumb").await;
    browser.click("#breadcrumbs button:last-of-type").await;
    browser
        .wait_for("Payloads again", "document.querySelector('#breadcrumbs .current').textContent === 'Payloads' && !document.querySelector('#entries[aria-busy]')")
        .await;
    assert_eq!(list_every_page(&mut browser).await, json!(2 * HOSTILE.len()));

    // Import every file after trashing them in Drive: each fails with an error message quoting its name.
    browser.click("#pick-all").await;
    let count = browser.js("return document.querySelector('#import-count').textContent", vec![]).await;
    assert_eq!(count, json!(format!("{} files selected", HOSTILE.len())));
    for id in &file_ids {
        assert!(drive.set_trashed(id, true));
    }
    browser.click("[data-testid=import-selected]").await;
    browser
        .wait_for_with(
            "every item failed and listed",
            "document.querySelector('[data-testid=job][data-status=failed]') &&
             document.querySelectorAll('[data-testid=job-item][data-status=failed]').length === arguments[0]",
            vec![json!(HOSTILE.len())],
        )
        .await;
    let items = browser
        .js(
            "return [...document.querySelectorAll('[data-testid=job-item]')].map(e =>
               [e.querySelector('.item-name').textContent, e.querySelector('.item-error').textContent]);",
            vec![],
        )
        .await;
    for name in HOSTILE {
        let shown = items.as_array().expect("items").iter().any(|row| {
            row[0] == json!(name)
                && row[1].as_str().is_some_and(|error| error.contains(&format!("`{name}` is in the trash")))
        });
        assert!(shown, "the error for {name:?} is not shown as text: {items}");
    }
    browser.shot("hostile-errors").await;

    // The store lists the failed placeholders by their names.
    browser.click("#tab-store").await;
    browser
        .wait_for_with(
            "the failed files in the store",
            "document.querySelectorAll('[data-testid=file-entry][data-status=failed]').length === arguments[0]",
            vec![json!(HOSTILE.len())],
        )
        .await;
    let stored = browser
        .js("return [...document.querySelectorAll('[data-testid=file-entry]')].map(e => e.querySelector('.name').textContent)", vec![])
        .await;
    for name in HOSTILE {
        assert!(stored.as_array().expect("names").contains(&json!(name)), "{name:?} missing from the store view");
    }
    browser.shot("hostile-store").await;
    browser.click("#tab-drive").await;

    // The callback's error_description, as a provider could send it, reaches the console only as text.
    drive.set_auto_approve(false);
    browser.click("[data-testid=connect-drive]").await;
    let popup = browser.switch_to_popup(&main).await;
    browser.wait_for("the consent page", "document.querySelector('#allow')").await;
    let description = HOSTILE.join(" | ");
    let mut callback = url::Url::parse(&env.url("/api/v2/cloud-storage/auth/google_drive/callback")).expect("url");
    callback.query_pairs_mut().append_pair("error", "access_denied").append_pair("error_description", &description);
    browser.goto(callback.as_str()).await;
    browser.switch_to(&main).await;
    browser.wait_window_closed(&popup).await;
    let reported = browser
        .wait_for(
            "the callback's error description",
            "(() => { const d = document.querySelector('[data-testid=oauth-error-description]'); return d && d.textContent; })()",
        )
        .await;
    assert_eq!(reported, json!(description));
    let error = browser.js("return document.querySelector('[data-testid=oauth-error]').textContent", vec![]).await;
    assert_eq!(error, json!("User denied access"));
    browser.shot("hostile-callback").await;

    // Nothing ran: no dialog, no marker, no foreign element, no policy violation.
    assert!(browser.client.get_alert_text().await.is_err_and(|e| e.is_no_such_alert()), "a dialog opened");
    let marker = browser.js("return typeof window.__ferryPwned", vec![]).await;
    assert_eq!(marker, json!("undefined"), "a payload's script ran");
    let foreign = browser.js(&format!("return document.querySelectorAll('{FOREIGN_ELEMENTS}').length"), vec![]).await;
    assert_eq!(foreign, json!(0), "a payload became markup");
    assert_eq!(browser.csp_violations().await, Vec::<String>::new());

    browser.close().await;
    env.shutdown().await;
}

/// Starts the popup flow through the API and lets the emulator approve it: the URL of a callback that
/// completes a real connection.
async fn approved_callback_url(env: &TestEnv, email: &str) -> String {
    let redirect_uri = env.url("/api/v2/cloud-storage/auth/google_drive/callback");
    let started: Value = env
        .api(Method::POST, "/cloud-storage/auth/google_drive")
        .json(&json!({ "provider": "google_drive", "login_hint": email, "redirect_uri": redirect_uri }))
        .send()
        .await
        .expect("start")
        .json()
        .await
        .expect("json");
    let (code, state) = env.authorize(started["authorization_url"].as_str().expect("url")).await.expect("authorize");
    let mut url = url::Url::parse(&redirect_uri).expect("url");
    url.query_pairs_mut().append_pair("code", &code).append_pair("state", &state);
    url.to_string()
}

/// In the current page: listen for messages, open `url` as a popup, wait for the popup to close itself.
async fn open_callback_from_page(browser: &mut Browser, url: &str) {
    browser
        .js(
            "window.__received = [];
             window.addEventListener('message', e => window.__received.push({ origin: e.origin, data: e.data }));
             window.__popup = window.open(arguments[0], 'callback');
             return true;",
            vec![json!(url)],
        )
        .await;
    browser.wait_for("the callback page to close itself", "window.__popup && window.__popup.closed").await;
}

async fn connection_count(env: &TestEnv) -> i64 {
    let body: Value =
        env.api(Method::GET, "/cloud-storage/connections").send().await.expect("list").json().await.expect("json");
    body["total_count"].as_i64().expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_callback_page_tells_no_other_origin() {
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("test environment");
    env.emulator.state().ensure_user("eve@example.com", "Eve");
    let mut browser = Browser::start("other-origin").await;

    // A page of another origin (the emulator's) opens a callback that really connects an account.
    let url = approved_callback_url(&env, "eve@example.com").await;
    browser.goto(&format!("{}/.well-known/openid-configuration", env.emulator.base_url())).await;
    open_callback_from_page(&mut browser, &url).await;
    assert_eq!(connection_count(&env).await, 1, "the callback did complete the flow");
    // The callback posted before closing; give a stray message every chance to arrive, then check none did.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < deadline {
        let received = browser.js("return window.__received.length", vec![]).await;
        assert_eq!(received, json!(0), "a page of another origin received the callback's message");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.shot("other-origin-received-nothing").await;

    // The same, from a page of the gateway's own origin, is delivered: the check above is not vacuous.
    let url = approved_callback_url(&env, "eve@example.com").await;
    browser.goto(&env.url("/console/")).await;
    open_callback_from_page(&mut browser, &url).await;
    let received = browser.wait_for("the message on the gateway's origin", "window.__received[0]").await;
    assert_eq!(received["origin"], json!(env.gateway_url));
    assert_eq!(received["data"]["type"], json!("oauth-complete"));
    assert_eq!(received["data"]["success"], json!(true));
    assert_eq!(received["data"]["connection"]["provider_email"], json!("eve@example.com"));

    browser.close().await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shared_drives_cancel_reload_and_disconnect() {
    // No workers: the import waits, so there is time to cancel it.
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("test environment");
    let drive = env.emulator.state();
    let email = "carl@example.com";
    drive.ensure_user(email, "Carl");
    drive.create_file(email, None, "waiting.bin", "application/octet-stream", filler(2048, 7));
    let team = drive.create_shared_drive("Team drive", &[email]);
    drive.create_file(email, Some(&team), "plan.txt", "text/plain", filler(300, 8));
    env.connect_drive(email).await.expect("connect");

    let mut browser = Browser::start("cancel").await;
    sign_in(&mut browser, &env).await;
    wait_for_entry(&mut browser, "waiting.bin").await;

    // The root also offers "Shared with me" and the shared drive, both browsable.
    browser.click_in_named("[data-testid=browse-entry]", "Shared with me", "button").await;
    browser.wait_for("the empty shared-with-me hint", "document.querySelector('#browse-state.empty')").await;
    let hint = browser.js("return document.querySelector('#browse-state').textContent", vec![]).await;
    assert_eq!(hint, json!("Nothing has been shared with this account."));
    browser.click("#breadcrumbs button").await;
    wait_for_entry(&mut browser, "Team drive").await;
    browser.click_in_named("[data-testid=browse-entry]", "Team drive", "button").await;
    wait_for_entry(&mut browser, "plan.txt").await;
    browser.shot("shared-drive").await;
    browser.click("#breadcrumbs button").await;
    wait_for_entry(&mut browser, "waiting.bin").await;
    browser.click_in_named("[data-testid=browse-entry]", "waiting.bin", "[data-testid=pick]").await;
    browser.click("[data-testid=import-selected]").await;
    browser
        .wait_for(
            "the waiting job",
            "document.querySelector('[data-testid=job][data-status=pending] button.ghost:not([hidden])')",
        )
        .await;
    browser.click("[data-testid=job] button.ghost").await;
    browser
        .wait_for(
            "the cancelled job",
            "document.querySelector('[data-testid=job][data-status=cancelled] [data-testid=job-progress][data-total=\"1\"]')",
        )
        .await;
    let notice = browser.js("return document.querySelector('[data-testid=job] .state').textContent", vec![]).await;
    assert_eq!(notice, json!("Cancelled 1 pending file(s)"));
    browser.shot("cancelled").await;

    // After a reload the session is kept (sessionStorage) and the job is among the recent ones.
    browser.goto(&env.url("/console/")).await;
    browser
        .wait_for("the recent cancelled job", "document.querySelector('[data-testid=job][data-status=cancelled]')")
        .await;
    let key_in_url = browser.js("return location.href.includes('fry_')", vec![]).await;
    assert_eq!(key_in_url, json!(false));
    browser.shot("after-reload").await;

    // Disconnect, confirming in place.
    browser.wait_for("the connection", "document.querySelector('[data-testid=connection]')").await;
    browser.click("[data-testid=connection] button.ghost").await;
    browser.click("[data-testid=connection] button.danger").await;
    browser.wait_for("no connection left", "document.querySelector('#connections-state.empty')").await;
    let active: Value =
        env.api(Method::GET, "/cloud-storage/connections").send().await.expect("list").json().await.expect("json");
    assert_eq!(active["total_count"], 0, "{active}");
    browser.shot("disconnected").await;
    browser.close().await;
    env.shutdown().await;
}

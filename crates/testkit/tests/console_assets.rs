//! The console's files as the gateway serves them: where they live, their content types, the
//! Content-Security-Policy, revalidation with ETags, and a scan of the code for HTML-string sinks and `eval`.

use ferry_testkit::{TestEnv, Workers};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION};

const FILES: &[(&str, &str)] = &[
    ("/console/", "text/html; charset=utf-8"),
    ("/console/app.js", "text/javascript; charset=utf-8"),
    ("/console/api.js", "text/javascript; charset=utf-8"),
    ("/console/auth.js", "text/javascript; charset=utf-8"),
    ("/console/dom.js", "text/javascript; charset=utf-8"),
    ("/console/drive.js", "text/javascript; charset=utf-8"),
    ("/console/format.js", "text/javascript; charset=utf-8"),
    ("/console/jobs.js", "text/javascript; charset=utf-8"),
    ("/console/store.js", "text/javascript; charset=utf-8"),
    ("/console/console.css", "text/css; charset=utf-8"),
    ("/console/icon.svg", "image/svg+xml"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_with_a_strict_policy_and_revalidates() {
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("test environment");

    let bare = env.http.get(env.url("/console")).send().await.expect("GET /console");
    assert_eq!(bare.status(), StatusCode::FOUND);
    assert_eq!(bare.headers()[LOCATION], "/console/");

    for (path, content_type) in FILES {
        let response = env.http.get(env.url(path)).send().await.expect("GET");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers[CONTENT_TYPE], *content_type, "{path}");
        assert_eq!(headers[CACHE_CONTROL], "no-cache", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        let policy = headers["content-security-policy"].to_str().expect("ascii policy");
        assert!(policy.starts_with("default-src 'self'"), "{path}: {policy}");
        for forbidden in ["unsafe-inline", "unsafe-eval", "*", "data:", "http:"] {
            assert!(!policy.contains(forbidden), "{path}: the policy allows {forbidden}: {policy}");
        }
        assert!(policy.contains("require-trusted-types-for 'script'"), "{path}: {policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{path}: {policy}");
        let body = response.text().await.expect("body");
        scan(path, &body);

        // A reload costs a 304 without a body.
        let etag = headers[ETAG].clone();
        let again = env.http.get(env.url(path)).header(IF_NONE_MATCH, etag.clone()).send().await.expect("GET again");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(again.headers()[ETAG], etag);
        assert!(again.text().await.expect("body").is_empty());
    }

    let missing = env.http.get(env.url("/console/nope.js")).send().await.expect("GET");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = missing.json().await.expect("json");
    assert_eq!(body["error"]["code"], "NOT_FOUND");
    env.shutdown().await;
}

/// No inline code in the page, and no code path that turns strings into markup or code.
fn scan(path: &str, body: &str) {
    if path.ends_with('/') {
        for script in body.split("<script").skip(1) {
            let tag = script.split('>').next().unwrap_or_default();
            assert!(tag.contains("src="), "{path}: inline <script{tag}>");
        }
        assert!(!body.contains(" style="), "{path}: inline style attribute");
        assert!(!body.contains("<style"), "{path}: inline <style>");
        assert!(!has_event_attribute(body), "{path}: inline event handler attribute");
        assert!(!body.contains("http://") && !body.contains("https://"), "{path}: a remote URL");
    }
    if path.ends_with(".js") {
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
            "setAttribute('on",
        ] {
            assert!(!body.contains(sink), "{path} uses {sink}");
        }
        assert!(!body.contains("http://") && !body.contains("https://"), "{path}: a remote URL");
    }
}

/// ` onclick=`-style attributes: " on", letters, "=".
fn has_event_attribute(html: &str) -> bool {
    html.match_indices(" on").any(|(at, _)| {
        let rest = &html[at + 3..];
        let letters = rest.chars().take_while(char::is_ascii_alphabetic).count();
        letters > 0 && rest[letters..].starts_with('=')
    })
}

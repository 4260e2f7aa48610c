//! Checks the operator files (docker-compose.yml, deploy/k8s/*.yaml) parse and agree with the
//! settings loader: expected services and kinds exist, and every Ferry setting in them is a
//! `FERRY__SECTION__KEY` name that `Settings` actually accepts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ferry_config::Settings;
use serde::Deserialize;
use serde_yaml_ng::Value;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn documents(path: &Path) -> Vec<Value> {
    let text = read(path);
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| {
            let mut value = Value::deserialize(doc).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
            value.apply_merge().unwrap_or_else(|e| panic!("merge keys in {}: {e}", path.display()));
            value
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn str_of<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut current = value;
    for key in path {
        current = current.get(*key)?;
    }
    current.as_str()
}

/// Env names that configure Ferry must be `FERRY__...` (or `FERRY_ENV`), and must load.
fn check_ferry_env(origin: &str, vars: &BTreeMap<String, String>) {
    let mut ferry_vars = Vec::new();
    for (name, value) in vars {
        let upper = name.to_ascii_uppercase();
        if upper == "FERRY_ENV" {
            continue;
        }
        assert!(
            !upper.starts_with("FERRY") || upper.starts_with("FERRY__"),
            "{origin}: {name} must use the FERRY__SECTION__KEY form"
        );
        if upper.starts_with("FERRY__") {
            assert_eq!(upper.matches("__").count(), 2, "{origin}: {name} must be FERRY__SECTION__KEY");
            ferry_vars.push((name.clone(), value.clone()));
        }
    }
    // Every name must be a real setting (deny_unknown_fields turns typos into errors).
    Settings::loader()
        .env_vars(ferry_vars)
        .load()
        .unwrap_or_else(|e| panic!("{origin}: environment does not load: {e}"));
}

fn env_map(value: Option<&Value>) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    match value {
        Some(Value::Mapping(map)) => {
            for (k, v) in map {
                let key = k.as_str().expect("env names are strings").to_owned();
                let value = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    Value::Null => String::new(),
                    other => panic!("env {key} has a non-scalar value {other:?}"),
                };
                vars.insert(key, value);
            }
        }
        Some(Value::Sequence(items)) => {
            for item in items {
                let entry = item.as_str().expect("env entries are strings");
                let (k, v) = entry.split_once('=').unwrap_or((entry, ""));
                vars.insert(k.to_owned(), v.to_owned());
            }
        }
        Some(Value::Null) | None => {}
        Some(other) => panic!("unexpected environment shape {other:?}"),
    }
    vars
}

#[test]
fn docker_compose_has_the_stack() {
    let path = repo_root().join("docker-compose.yml");
    let docs = documents(&path);
    assert_eq!(docs.len(), 1, "one compose document");
    let compose = &docs[0];
    let services = compose.get("services").and_then(Value::as_mapping).expect("services");
    let names: BTreeSet<&str> = services.keys().filter_map(Value::as_str).collect();
    for expected in ["postgres", "rabbitmq", "drive-emulator", "migrate", "gateway", "importer", "exporter"] {
        assert!(names.contains(expected), "compose lacks service {expected}");
    }

    assert_eq!(str_of(compose, &["services", "postgres", "image"]), Some("postgres:15"));
    assert_eq!(str_of(compose, &["services", "postgres", "environment", "POSTGRES_HOST_AUTH_METHOD"]), Some("trust"));
    assert!(str_of(compose, &["services", "rabbitmq", "image"]).is_some_and(|i| i.starts_with("rabbitmq:3.13")),);

    for name in ["migrate", "gateway", "importer", "exporter"] {
        let service = &services[name];
        let env = env_map(service.get("environment"));
        assert!(env.contains_key("FERRY__DATABASE__URL"), "{name} needs FERRY__DATABASE__URL");
        check_ferry_env(&format!("docker-compose.yml service {name}"), &env);
    }
    // Browsers follow auth_url: it must be reachable from the host, not a compose hostname.
    let gateway_env = env_map(services["gateway"].get("environment"));
    assert!(gateway_env["FERRY__GOOGLE__AUTH_URL"].starts_with("http://localhost:8088/"));
    assert!(gateway_env["FERRY__GOOGLE__TOKEN_URL"].starts_with("http://drive-emulator:8088/"));
    for (name, port) in [("gateway", 8080), ("importer", 9101), ("exporter", 9102)] {
        let test = format!("{:?}", services[name].get("healthcheck"));
        assert!(test.contains(&format!("{port}/readyz")), "{name} healthcheck must probe /readyz: {test}");
    }
}

#[test]
fn kubernetes_manifests_have_the_expected_objects() {
    let dir = repo_root().join("deploy/k8s");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("deploy/k8s")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "yaml" || ext == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());

    let mut objects: BTreeMap<(String, String), Value> = BTreeMap::new();
    for file in &files {
        for doc in documents(file) {
            let kind = str_of(&doc, &["kind"])
                .unwrap_or_else(|| panic!("{}: document without kind", file.display()))
                .to_owned();
            assert!(doc.get("apiVersion").is_some(), "{}: {kind} without apiVersion", file.display());
            if kind == "Kustomization" {
                continue;
            }
            assert!(
                doc.get("metadata").and_then(|m| m.get("namespace")).is_none(),
                "{}: manifests are namespace-less",
                file.display()
            );
            let name = str_of(&doc, &["metadata", "name"])
                .unwrap_or_else(|| panic!("{}: {kind} without a name", file.display()))
                .to_owned();
            assert!(objects.insert((kind.clone(), name.clone()), doc).is_none(), "duplicate {kind}/{name}");
        }
    }
    let has = |kind: &str, name: &str| objects.contains_key(&(kind.to_owned(), name.to_owned()));

    for svc in ["ferry-gateway", "ferry-importer", "ferry-exporter"] {
        assert!(has("Deployment", svc), "missing Deployment {svc}");
        assert!(has("Service", svc), "missing Service {svc}");
        let deployment = &objects[&("Deployment".to_owned(), svc.to_owned())];
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(str_of(container, &["readinessProbe", "httpGet", "path"]), Some("/readyz"), "{svc}");
        assert_eq!(str_of(container, &["livenessProbe", "httpGet", "path"]), Some("/livez"), "{svc}");
        assert!(container.get("resources").is_some(), "{svc} resources");
        let env_from = format!("{:?}", container.get("envFrom"));
        assert!(
            env_from.contains("ferry-config") && env_from.contains("ferry-secrets"),
            "{svc} env from ConfigMap and Secret"
        );
    }
    assert!(has("Job", "ferry-migrate"));
    assert!(has("ConfigMap", "ferry-config"));
    assert!(has("Secret", "ferry-secrets"));

    for (name, queue) in [("ferry-importer", "ferry.import"), ("ferry-exporter", "ferry.export")] {
        let scaled = objects
            .get(&("ScaledObject".to_owned(), name.to_owned()))
            .unwrap_or_else(|| panic!("missing ScaledObject {name}"));
        assert_eq!(str_of(scaled, &["spec", "scaleTargetRef", "name"]), Some(name));
        let trigger = &scaled["spec"]["triggers"][0];
        assert_eq!(str_of(trigger, &["type"]), Some("rabbitmq"));
        assert_eq!(str_of(trigger, &["metadata", "queueName"]), Some(queue));
    }

    // ConfigMap + Secret together are what the services see: names and values must load.
    let mut env = BTreeMap::new();
    env.extend(env_map(objects[&("ConfigMap".to_owned(), "ferry-config".to_owned())].get("data")));
    env.extend(env_map(objects[&("Secret".to_owned(), "ferry-secrets".to_owned())].get("stringData")));
    check_ferry_env("deploy/k8s ConfigMap + Secret", &env);
}

#[test]
fn dockerfile_builds_every_service() {
    let dockerfile = read(&repo_root().join("deploy/docker/Dockerfile"));
    assert!(dockerfile.contains("FROM ${RUST_IMAGE} AS builder"));
    assert!(dockerfile.contains("ARG RUST_IMAGE=rust:1.95-bookworm"));
    assert!(dockerfile.contains("ARG RUNTIME_IMAGE=debian:bookworm-slim"));
    for target in ["gateway", "importer", "exporter", "ferryctl", "drive-emulator"] {
        assert!(dockerfile.contains(&format!("AS {target}\n")), "Dockerfile lacks target {target}");
    }
    assert!(dockerfile.contains("USER 10001"), "runtime runs as non-root");
}

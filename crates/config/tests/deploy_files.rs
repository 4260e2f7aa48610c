//! Checks the operator files (docker-compose.yml, deploy/k8s/*.yaml) parse and agree with the
//! settings loader: expected services and kinds exist, every Ferry setting in them is a
//! `FERRY__SECTION__KEY` name that `Settings` actually accepts, the manifests pass the Kubernetes and KEDA
//! schemas offline (`scripts/validate-k8s.py`), and the database pools fit in Postgres's `max_connections`.

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
            assert!(upper.matches("__").count() >= 2, "{origin}: {name} must be FERRY__SECTION__KEY");
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

type Objects = BTreeMap<(String, String), Value>;

/// Every object in deploy/k8s, by (kind, name).
fn k8s_objects() -> Objects {
    let dir = repo_root().join("deploy/k8s");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("deploy/k8s")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "yaml" || ext == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());

    let mut objects = Objects::new();
    for file in &files {
        for doc in documents(file) {
            let kind = str_of(&doc, &["kind"])
                .unwrap_or_else(|| panic!("{}: document without kind", file.display()))
                .to_owned();
            assert!(doc.get("apiVersion").is_some(), "{}: {kind} without apiVersion", file.display());
            if kind == "Kustomization" {
                objects.insert((kind, String::new()), doc);
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
    objects
}

fn object<'a>(objects: &'a Objects, kind: &str, name: &str) -> &'a Value {
    objects.get(&(kind.to_owned(), name.to_owned())).unwrap_or_else(|| panic!("missing {kind} {name}"))
}

/// The environment one container sees: the ConfigMap and Secret, then its own `env` (which wins).
fn container_env(objects: &Objects, container: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.extend(env_map(object(objects, "ConfigMap", "ferry-config").get("data")));
    env.extend(env_map(object(objects, "Secret", "ferry-secrets").get("stringData")));
    for entry in container.get("env").and_then(Value::as_sequence).into_iter().flatten() {
        let name = str_of(entry, &["name"]).expect("env name").to_owned();
        let value = str_of(entry, &["value"]).expect("env values are literal strings").to_owned();
        env.insert(name, value);
    }
    env
}

const SERVICES: [(&str, u16); 3] = [("ferry-gateway", 9100), ("ferry-importer", 9101), ("ferry-exporter", 9102)];

#[test]
fn kubernetes_manifests_have_the_expected_objects() {
    let objects = k8s_objects();
    let has = |kind: &str, name: &str| objects.contains_key(&(kind.to_owned(), name.to_owned()));

    for (svc, ops_port) in SERVICES {
        assert!(has("Service", svc), "missing Service {svc}");
        assert!(has("PodDisruptionBudget", svc), "missing PodDisruptionBudget {svc}");
        let deployment = object(&objects, "Deployment", svc);
        let pod = &deployment["spec"]["template"]["spec"];
        let container = &pod["containers"][0];

        // Probes on the ops port (named `ops`, serving /livez and /readyz).
        assert_eq!(str_of(container, &["readinessProbe", "httpGet", "path"]), Some("/readyz"), "{svc}");
        assert_eq!(str_of(container, &["livenessProbe", "httpGet", "path"]), Some("/livez"), "{svc}");
        for probe in ["readinessProbe", "livenessProbe"] {
            assert_eq!(str_of(container, &[probe, "httpGet", "port"]), Some("ops"), "{svc} {probe}");
        }
        let ports = container["ports"].as_sequence().expect("ports");
        let ops = ports.iter().find(|p| str_of(p, &["name"]) == Some("ops")).expect("an ops port");
        assert_eq!(ops["containerPort"].as_u64(), Some(u64::from(ops_port)), "{svc} ops port");
        let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
        assert_eq!(str_of(annotations, &["prometheus.io/port"]), Some(ops_port.to_string().as_str()), "{svc}");
        let env = container_env(&objects, container);
        let bind_key = match svc {
            "ferry-gateway" => "FERRY__GATEWAY__OPS_BIND",
            "ferry-importer" => "FERRY__IMPORTER__OPS_BIND",
            _ => "FERRY__EXPORTER__OPS_BIND",
        };
        assert_eq!(env.get(bind_key).map(String::as_str), Some(format!("0.0.0.0:{ops_port}").as_str()), "{svc}");

        // A pause before SIGTERM, inside the grace period.
        let pause = container["lifecycle"]["preStop"]["sleep"]["seconds"].as_u64().expect("preStop sleep");
        let grace = pod["terminationGracePeriodSeconds"].as_u64().expect("terminationGracePeriodSeconds");
        assert!(pause >= 3 && pause + 20 <= grace, "{svc}: preStop {pause}s within a grace period of {grace}s");

        // Requests and limits for CPU and memory.
        for (section, resource) in
            [("requests", "cpu"), ("requests", "memory"), ("limits", "cpu"), ("limits", "memory")]
        {
            assert!(container["resources"][section].get(resource).is_some(), "{svc} resources.{section}.{resource}");
        }

        // Blobs in S3: no shared volume.
        assert_eq!(env.get("FERRY__STORAGE__BACKEND").map(String::as_str), Some("s3"), "{svc}");
        let volumes = format!("{:?}", pod.get("volumes"));
        assert!(!volumes.contains("persistentVolumeClaim"), "{svc} mounts no claim: {volumes}");
        check_ferry_env(&format!("deploy/k8s {svc}"), &env);
    }
    assert!(!has("PersistentVolumeClaim", "ferry-blobs"), "no ReadWriteMany volume with S3");
    assert!(has("Job", "ferry-migrate"));

    for (name, queue) in [("ferry-importer", "ferry.import"), ("ferry-exporter", "ferry.export")] {
        let scaled = object(&objects, "ScaledObject", name);
        assert_eq!(str_of(scaled, &["spec", "scaleTargetRef", "name"]), Some(name));
        let trigger = &scaled["spec"]["triggers"][0];
        assert_eq!(str_of(trigger, &["type"]), Some("rabbitmq"));
        assert_eq!(str_of(trigger, &["metadata", "queueName"]), Some(queue));
        let (min, max) = (scaled["spec"]["minReplicaCount"].as_u64(), scaled["spec"]["maxReplicaCount"].as_u64());
        assert!(min <= max, "{name}: minReplicaCount {min:?} <= maxReplicaCount {max:?}");
    }

    // Images are named without a tag and pinned through kustomize `images`.
    let kustomization = object(&objects, "Kustomization", "");
    let pinned: BTreeMap<&str, &str> = kustomization["images"]
        .as_sequence()
        .expect("images")
        .iter()
        .map(|i| (str_of(i, &["name"]).expect("name"), str_of(i, &["newTag"]).expect("newTag")))
        .collect();
    for ((kind, name), doc) in &objects {
        let Some(pod) = doc.get("spec").and_then(|s| s.get("template")).and_then(|t| t.get("spec")) else { continue };
        for container in pod["containers"].as_sequence().expect("containers") {
            let image = str_of(container, &["image"]).expect("image");
            assert!(!image.contains(':'), "{kind}/{name}: {image} takes its tag from kustomization.yaml");
            let tag = pinned.get(image).unwrap_or_else(|| panic!("{kind}/{name}: {image} is not in kustomize images"));
            assert!(!tag.is_empty() && *tag != "latest", "{image}: pin a release, not {tag:?}");
        }
    }
}

/// Maximum replicas of a Deployment: its HPA's `maxReplicas`, its KEDA `maxReplicaCount`, else `replicas`.
fn max_replicas(objects: &Objects, deployment: &str) -> u64 {
    let hpa = objects.get(&("HorizontalPodAutoscaler".to_owned(), deployment.to_owned()));
    let keda = objects.get(&("ScaledObject".to_owned(), deployment.to_owned()));
    match (hpa, keda) {
        (Some(_), Some(_)) => panic!("{deployment} has both an HPA and a ScaledObject"),
        (Some(hpa), None) => hpa["spec"]["maxReplicas"].as_u64().expect("maxReplicas"),
        (None, Some(scaled)) => scaled["spec"]["maxReplicaCount"].as_u64().expect("maxReplicaCount"),
        (None, None) => object(objects, "Deployment", deployment)["spec"]["replicas"].as_u64().unwrap_or(1),
    }
}

#[test]
fn database_pools_fit_in_postgres_max_connections() {
    let objects = k8s_objects();
    let configmap = object(&objects, "ConfigMap", "ferry-config");
    let budget: u64 = str_of(configmap, &["metadata", "annotations", "ferry/postgres-max-connections"])
        .expect("the ConfigMap states Postgres's max_connections")
        .parse()
        .expect("a number");
    // Postgres keeps superuser_reserved_connections (3 by default) for administrators; the migrate Job holds two
    // (one to create the database, one to migrate), and an operator's ferryctl a couple more.
    let reserved = 3 + 2 + 2;

    let mut used = 0;
    let mut lines = Vec::new();
    for ((kind, name), doc) in &objects {
        if kind != "Deployment" {
            continue;
        }
        let container = &doc["spec"]["template"]["spec"]["containers"][0];
        let env = container_env(&objects, container);
        let settings = Settings::loader()
            .env_vars(env.iter().filter(|(k, _)| k.starts_with("FERRY__")).map(|(k, v)| (k.clone(), v.clone())))
            .load()
            .expect("deployment settings load");
        // The gateway's outbox relay holds one LISTEN connection outside its pool.
        let per_pod = u64::from(settings.database.max_connections) + u64::from(name == "ferry-gateway");
        let replicas = max_replicas(&objects, name);
        used += per_pod * replicas;
        lines.push(format!("{name}: {replicas} replicas x {per_pod} connections"));
    }
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        used + reserved <= budget,
        "{used} pooled + {reserved} reserved connections exceed Postgres max_connections {budget}: {lines:?}. \
         Lower database.max_connections or the maximum replicas, raise max_connections, or put PgBouncer in front"
    );
}

/// The Python that has kubernetes-validate and jsonschema (installed by scripts/bootstrap.sh).
fn test_python() -> PathBuf {
    if let Some(python) = std::env::var_os("FERRY_TEST_PYTHON") {
        return PathBuf::from(python);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo_root().join("target"), PathBuf::from);
    let venv = target.join("emulator-python/bin/python");
    if venv.exists() { venv } else { PathBuf::from("python3") }
}

fn validate_k8s(dir: &Path, render: Option<&str>) -> (bool, String) {
    let mut command = std::process::Command::new(test_python());
    command.arg(repo_root().join("scripts/validate-k8s.py")).arg(dir);
    if let Some(render) = render {
        command.env("FERRY_K8S_RENDER", render);
    }
    let output = command.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {}: {e}; run scripts/bootstrap.sh (it installs kubernetes-validate)",
            test_python().display()
        )
    });
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

#[test]
fn kubernetes_manifests_pass_the_kubernetes_and_keda_schemas_offline() {
    let dir = repo_root().join("deploy/k8s");
    // kubectl's kustomize when it is installed, and always the built-in rendering, so CI without kubectl checks
    // the same thing.
    for render in [None, Some("python")] {
        let (ok, output) = validate_k8s(&dir, render);
        assert!(ok, "{output}");
        assert!(output.contains("16 passed, 0 failed"), "every object is checked: {output}");
        for object in ["ScaledObject/ferry-importer", "Deployment/ferry-gateway", "PodDisruptionBudget/ferry-exporter"]
        {
            assert!(output.contains(&format!("ok   {object}")), "{object}: {output}");
        }
    }
}

#[test]
fn a_manifest_that_breaks_a_schema_fails_the_check() {
    let copy = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(repo_root().join("deploy/k8s")).expect("deploy/k8s") {
        let path = entry.expect("entry").path();
        let text = read(&path);
        let text = match path.file_name().and_then(|n| n.to_str()) {
            Some("importer.yaml") => text.replacen("periodSeconds: 5", "periodSecs: 5", 1),
            Some("keda.yaml") => text.replacen("mode: QueueLength", "mode: Length", 1),
            _ => text,
        };
        std::fs::write(copy.path().join(path.file_name().expect("name")), text).expect("write");
    }
    let (ok, output) = validate_k8s(copy.path(), Some("python"));
    assert!(!ok, "{output}");
    assert!(output.contains("Deployment/ferry-importer: Kubernetes 1.30: spec/template/spec/containers/0/readinessProbe: Additional properties are not allowed ('periodSecs' was unexpected)"), "{output}");
    assert!(output.contains("ScaledObject/ferry-importer: spec/triggers/0/metadata/mode: 'Length' is not one of ['QueueLength', 'MessageRate']"), "{output}");
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

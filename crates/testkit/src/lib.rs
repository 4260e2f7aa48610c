//! Test harness: the whole system in one process on real infrastructure. Each [`TestEnv`] gets its own
//! Postgres database, its own RabbitMQ queue prefix, its own blob store (a directory, or a bucket on its own
//! S3-compatible server) and its own Drive emulator, so tests run in parallel without seeing each other.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use ferry_config::Settings;
use ferry_core::TenantId;
use ferry_db::testing::TestDatabase;
use ferry_queue::{Broker, Topology};
use ferry_storage::BlobStore;
use ferry_storage::testing::S3TestServer;
use ferry_transfer::{WorkerKind, WorkerService};
use serde_json::Value;

pub use drive_emulator;

/// RabbitMQ URL for tests; `FERRY_TEST_AMQP_URL` overrides it.
pub fn test_amqp_url() -> String {
    std::env::var("FERRY_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// Where a [`TestEnv`] keeps blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// A temporary directory (`storage.backend = "local"`).
    Local,
    /// A fresh bucket on a moto S3 server started for this environment (`storage.backend = "s3"`).
    S3,
}

/// Which workers a [`TestEnv`] runs.
#[derive(Debug, Clone, Copy)]
pub struct Workers {
    pub importer: bool,
    pub exporter: bool,
}

impl Workers {
    pub const ALL: Workers = Workers { importer: true, exporter: true };
    pub const NONE: Workers = Workers { importer: false, exporter: false };
}

pub struct TestEnv {
    pub settings: Settings,
    pub database: TestDatabase,
    pub emulator: drive_emulator::RunningEmulator,
    pub gateway_url: String,
    /// The gateway's ops port (`/livez`, `/readyz`, `/metrics`).
    pub ops_url: String,
    pub api_key: String,
    pub tenant_id: TenantId,
    pub http: reqwest::Client,
    gateway: Option<ferry_gateway::RunningGateway>,
    workers: Vec<WorkerService>,
    queue_prefix: String,
    queues_deleted: bool,
    setting_pairs: Vec<(String, String)>,
    worker_set: Workers,
    _blobs: tempfile::TempDir,
    // Declared last: the S3 server outlives the services that use it.
    _s3: Option<S3TestServer>,
}

impl TestEnv {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(Workers::ALL, &[]).await
    }

    /// Starts everything; `overrides` are extra settings (`("reliability.lease_secs", "3")`).
    pub async fn start_with(workers: Workers, overrides: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::start_on(Storage::Local, workers, overrides).await
    }

    /// Like [`TestEnv::start_with`], with blobs in `storage`.
    pub async fn start_on(storage: Storage, workers: Workers, overrides: &[(&str, &str)]) -> anyhow::Result<Self> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        // Logs go to the test's captured output; RUST_LOG widens them.
        let _ = ferry_telemetry::init("test", "pretty", "warn");
        let database = TestDatabase::create().await.context("creating the test database")?;
        let emulator = drive_emulator::spawn(
            drive_emulator::EmulatorConfig::default(),
            std::net::TcpListener::bind("127.0.0.1:0").context("binding the emulator")?,
        )
        .await
        .context("starting the emulator")?;
        let blobs = tempfile::tempdir().context("creating the blob directory")?;
        let gateway_listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding the gateway")?;
        let gateway_url = format!("http://{}", gateway_listener.local_addr()?);
        let queue_prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
        let emulator_url = emulator.base_url().to_owned();

        let mut pairs: Vec<(String, String)> = vec![
            ("database.url".into(), database.url.clone()),
            ("database.max_connections".into(), "8".into()),
            ("amqp.url".into(), test_amqp_url()),
            ("amqp.queue_prefix".into(), queue_prefix.clone()),
            ("storage.root".into(), blobs.path().display().to_string()),
            ("gateway.public_url".into(), gateway_url.clone()),
            ("gateway.ops_bind".into(), "127.0.0.1:0".into()),
            ("gateway.popup_origin".into(), "http://app.example.test".into()),
            ("google.auth_url".into(), format!("{emulator_url}/o/oauth2/v2/auth")),
            ("google.token_url".into(), format!("{emulator_url}/token")),
            ("google.revoke_url".into(), format!("{emulator_url}/revoke")),
            ("google.userinfo_url".into(), format!("{emulator_url}/oauth2/v3/userinfo")),
            ("google.drive_root_url".into(), format!("{emulator_url}/")),
            ("google.redirect_uri".into(), format!("{gateway_url}/api/v2/cloud-storage/auth/google_drive/callback")),
            ("telemetry.log_format".into(), "pretty".into()),
            // The relay must be woken by LISTEN/NOTIFY: a job that waited for this poll would time out.
            ("gateway.outbox_poll_interval_secs".into(), "3600".into()),
            // Likewise job event streams: progress that waited for this poll would never arrive in a test.
            ("gateway.event_poll_interval_secs".into(), "3600".into()),
        ];
        let s3 = match storage {
            Storage::Local => None,
            Storage::S3 => {
                let server = S3TestServer::start().map_err(|e| anyhow!("starting the S3 server: {e}"))?;
                let bucket = server.create_bucket().await.map_err(|e| anyhow!("creating the bucket: {e}"))?;
                pairs.extend(server.overrides(&bucket));
                Some(server)
            }
        };
        for (key, value) in overrides {
            pairs.retain(|(k, _)| k != key);
            pairs.push(((*key).to_owned(), (*value).to_owned()));
        }
        let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let settings = Settings::from_sources(&borrowed).context("building test settings")?;

        let gateway = ferry_gateway::start(settings.clone(), gateway_listener).context("starting the gateway")?;
        let ops_url = gateway.ops_url();
        let mut running = Vec::new();
        if workers.importer {
            running.push(WorkerService::start(&settings, WorkerKind::Importer)?);
        }
        if workers.exporter {
            running.push(WorkerService::start(&settings, WorkerKind::Exporter)?);
        }

        let tenant = database.db.ensure_tenant("tenant-a").await?;
        let api_key = create_api_key(&database.db, "tenant-a").await?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()?;
        let env = TestEnv {
            settings,
            database,
            emulator,
            gateway_url,
            ops_url,
            api_key,
            tenant_id: TenantId(tenant.id),
            http,
            gateway: Some(gateway),
            workers: running,
            queue_prefix,
            queues_deleted: false,
            setting_pairs: pairs,
            worker_set: workers,
            _blobs: blobs,
            _s3: s3,
        };
        env.wait_until_ready().await?;
        Ok(env)
    }

    /// Starts one more worker of `kind` on the same settings: to Postgres, RabbitMQ and Drive another process (its
    /// own pools, broker connections, worker id and pacer). [`TestEnv::restart_services`] does not restart it.
    pub fn start_another_worker(&mut self, kind: WorkerKind) -> anyhow::Result<()> {
        self.workers.push(WorkerService::start(&self.settings, kind)?);
        Ok(())
    }

    /// Stops the gateway and workers and starts them again on the same database, queues, blob store and
    /// emulator with `overrides` applied to the settings (a configuration change, such as a new token key).
    pub async fn restart_services(&mut self, overrides: &[(&str, &str)]) -> anyhow::Result<()> {
        for worker in self.workers.drain(..) {
            worker.stop(Duration::from_secs(10)).await;
        }
        if let Some(gateway) = self.gateway.take() {
            gateway.stop().await;
        }
        let gateway_listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding the gateway")?;
        self.gateway_url = format!("http://{}", gateway_listener.local_addr()?);
        let mut pairs = self.setting_pairs.clone();
        let redirect = format!("{}/api/v2/cloud-storage/auth/google_drive/callback", self.gateway_url);
        for (key, value) in [("gateway.public_url", self.gateway_url.as_str()), ("google.redirect_uri", &redirect)]
            .into_iter()
            .chain(overrides.iter().copied())
        {
            pairs.retain(|(k, _)| k != key);
            pairs.push((key.to_owned(), value.to_owned()));
        }
        let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let settings = Settings::from_sources(&borrowed).context("building test settings")?;
        settings.validate().context("restarted settings")?;
        let gateway = ferry_gateway::start(settings.clone(), gateway_listener).context("starting the gateway")?;
        self.ops_url = gateway.ops_url();
        self.gateway = Some(gateway);
        if self.worker_set.importer {
            self.workers.push(WorkerService::start(&settings, WorkerKind::Importer)?);
        }
        if self.worker_set.exporter {
            self.workers.push(WorkerService::start(&settings, WorkerKind::Exporter)?);
        }
        self.settings = settings;
        self.setting_pairs = pairs;
        self.wait_until_ready().await
    }

    /// Waits until the gateway reports ready (database reachable, relay connected to RabbitMQ).
    pub async fn wait_until_ready(&self) -> anyhow::Result<()> {
        for _ in 0..200 {
            if let Ok(response) = self.http.get(format!("{}/readyz", self.gateway_url)).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("gateway did not become ready within 10 s")
    }

    /// The blob store the services use, opened from the same settings.
    pub fn blob_store(&self) -> anyhow::Result<BlobStore> {
        BlobStore::from_settings(&self.settings.storage).context("opening the test blob store")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.gateway_url, path)
    }

    /// A request to the API with this environment's key.
    pub fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.api_as(&self.api_key, method, path)
    }

    pub fn api_as(&self, key: &str, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(&format!("/api/v2{path}"))).bearer_auth(key)
    }

    /// Creates another tenant and returns its key.
    pub async fn second_tenant_key(&self, name: &str) -> anyhow::Result<String> {
        create_api_key(&self.database.db, name).await
    }

    /// A key of this environment's tenant limited to `scopes`.
    pub async fn scoped_key(&self, scopes: &[ferry_core::Scope]) -> anyhow::Result<String> {
        let key = ferry_crypto::generate_api_key();
        self.database
            .db
            .insert_scoped_api_key(
                self.tenant_id,
                &ferry_crypto::hash_api_key(&key),
                &ferry_crypto::api_key_display_prefix(&key),
                Some(scopes),
            )
            .await?;
        Ok(key)
    }

    /// Runs the OAuth flow against the emulator as `email` and returns the callback's JSON body.
    pub async fn connect_drive(&self, email: &str) -> anyhow::Result<Value> {
        let started: Value = self
            .api(reqwest::Method::POST, "/cloud-storage/auth/google_drive")
            .json(&serde_json::json!({ "provider": "google_drive", "login_hint": email }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let authorization_url =
            started["authorization_url"].as_str().ok_or_else(|| anyhow!("no authorization_url in {started}"))?;
        let (code, state) = self.authorize(authorization_url).await?;
        let response = self
            .api(reqwest::Method::POST, "/cloud-storage/auth/google_drive/callback")
            .json(&serde_json::json!({ "code": code, "state": state }))
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if !status.is_success() {
            bail!("callback failed with {status}: {body}");
        }
        Ok(body)
    }

    /// Follows the authorization URL like a browser would and returns the `code` and `state` it redirects with.
    pub async fn authorize(&self, authorization_url: &str) -> anyhow::Result<(String, String)> {
        let response = self.http.get(authorization_url).send().await?;
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| anyhow!("authorize answered {} without a redirect", response.status()))?;
        let redirect = url::Url::parse(location)?;
        let param = |name: &str| redirect.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
        Ok((param("code").ok_or_else(|| anyhow!("no code in {location}"))?, param("state").unwrap_or_default()))
    }

    /// Exports stored files into a new Drive folder and waits (up to a minute) for the job to end; returns the
    /// final `job` object.
    pub async fn export_and_wait(
        &self,
        connection_id: &str,
        image_ids: &[&str],
        folder_name: &str,
    ) -> anyhow::Result<Value> {
        let body: Value = self
            .api(reqwest::Method::POST, "/cloud-storage/export")
            .json(&serde_json::json!({
                "connection_id": connection_id, "image_ids": image_ids, "folder_name": folder_name
            }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let job_id = body["job_id"].as_str().ok_or_else(|| anyhow::anyhow!("no job_id in {body}"))?;
        self.wait_for_job(job_id, Duration::from_secs(60)).await
    }

    /// Polls a job until it reaches a terminal status, returning the last `job` object.
    pub async fn wait_for_job(&self, job_id: &str, timeout: Duration) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let body: Value = self
                .api(reqwest::Method::GET, &format!("/cloud-storage/jobs/{job_id}"))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let status = body["job"]["status"].as_str().unwrap_or_default().to_owned();
            if matches!(status.as_str(), "completed" | "partial" | "failed" | "cancelled") {
                return Ok(body["job"].clone());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("job {job_id} still {status} after {timeout:?}: {body}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the services and removes this environment's queues.
    pub async fn shutdown(mut self) {
        for worker in self.workers.drain(..) {
            worker.stop(Duration::from_secs(10)).await;
        }
        if let Some(gateway) = self.gateway.take() {
            gateway.stop().await;
        }
        delete_queues(&self.queue_prefix, self.settings.amqp.delivery_limit).await;
        self.queues_deleted = true;
    }
}

impl Drop for TestEnv {
    /// A test that panicked never reached [`TestEnv::shutdown`]: its queues are removed here instead, on a
    /// short-lived thread with its own runtime (the test's runtime cannot be blocked on from `drop`).
    fn drop(&mut self) {
        if self.queues_deleted {
            return;
        }
        let (prefix, limit) = (self.queue_prefix.clone(), self.settings.amqp.delivery_limit);
        let cleanup = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                runtime.block_on(delete_queues(&prefix, limit));
            }
        });
        let _ = cleanup.join();
    }
}

async fn delete_queues(prefix: &str, delivery_limit: u32) {
    if let Ok(broker) = Broker::connect(&test_amqp_url(), "testkit-cleanup").await {
        let _ = Topology::new(prefix.to_owned(), delivery_limit).delete(&broker).await;
        broker.close().await;
    }
}

async fn create_api_key(db: &ferry_db::Db, tenant: &str) -> anyhow::Result<String> {
    let tenant = db.ensure_tenant(tenant).await?;
    let key = ferry_crypto::generate_api_key();
    db.insert_api_key(
        TenantId(tenant.id),
        &ferry_crypto::hash_api_key(&key),
        &ferry_crypto::api_key_display_prefix(&key),
    )
    .await?;
    Ok(key)
}

//! The chaos harness: private Postgres and RabbitMQ servers (so restarting them never disturbs anything else on
//! the machine), and per-scenario stacks of real service processes with their own database, queue prefix, blob
//! directory and Drive emulator. `make bench` (crates/bench) runs the same stacks on the machine's own servers
//! with the release binaries and the default reliability settings ([`Purpose::Bench`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use ferry_core::{ItemStatus, JobId, JobStatus, TenantId};
use serde_json::{Value, json};

/// A free TCP port on 127.0.0.1 (bound, then released; good enough for a private server started right after).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0").unwrap_or(false)
}

fn run_checked(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let output = command.output().with_context(|| format!("running {what}"))?;
    if !output.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// A throwaway Postgres cluster in a temporary directory, on its own port. Stopped when dropped.
pub struct PrivatePostgres {
    pub port: u16,
    data: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    _dir: tempfile::TempDir,
}

impl PrivatePostgres {
    pub fn start() -> anyhow::Result<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .context("looking for Postgres binaries in /usr/lib/postgresql")?
            .filter_map(Result::ok)
            .map(|entry| entry.path().join("bin"))
            .find(|path| path.join("initdb").exists())
            .ok_or_else(|| anyhow!("no initdb under /usr/lib/postgresql/*/bin"))?;
        // The pid in the name lets scripts/chaos/run.sh find and stop it if this process is killed.
        let dir = tempfile::Builder::new().prefix(&format!("ferry-chaos-pg-{}-", std::process::id())).tempdir()?;
        let as_postgres = is_root();
        if as_postgres {
            run_checked(Command::new("chown").args(["postgres"]).arg(dir.path()), "chown")?;
        }
        let data = dir.path().join("data");
        let port = free_port()?;
        let pg = PrivatePostgres { port, data, bin, as_postgres, _dir: dir };
        let mut initdb = pg.command("initdb");
        initdb.arg("-D").arg(&pg.data).args(["-A", "trust", "-U", "postgres"]);
        run_checked(&mut initdb, "initdb")?;
        pg.start_server()?;
        Ok(pg)
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    pub fn start_server(&self) -> anyhow::Result<()> {
        let socket_dir = self.data.parent().unwrap_or(Path::new("/tmp")).display().to_string();
        let options = format!("-p {} -k {socket_dir} -c listen_addresses=127.0.0.1 -c max_connections=300", self.port);
        let log = self.data.parent().unwrap_or(Path::new("/tmp")).join("postgres.log");
        let mut start = self.command("pg_ctl");
        start.arg("-D").arg(&self.data).args(["-o", &options, "-l"]).arg(log).args(["-w", "start"]);
        run_checked(&mut start, "pg_ctl start")
    }

    pub fn stop_server(&self) -> anyhow::Result<()> {
        let mut stop = self.command("pg_ctl");
        stop.arg("-D").arg(&self.data).args(["-m", "fast", "-w", "stop"]);
        run_checked(&mut stop, "pg_ctl stop")
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.stop_server();
    }
}

/// A throwaway RabbitMQ node (its own node name, ports and data directory). Shut down when dropped.
pub struct PrivateRabbit {
    pub port: u16,
    node: String,
    dir: tempfile::TempDir,
}

impl PrivateRabbit {
    pub fn start() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("ferry-chaos-rmq").tempdir()?;
        let port = free_port()?;
        let dist_port = free_port()?;
        let node = format!("ferrychaos{}@localhost", std::process::id());
        std::fs::write(dir.path().join("enabled_plugins"), "[].\n")?;
        std::fs::write(
            dir.path().join("rabbitmq.conf"),
            format!("listeners.tcp.1 = 127.0.0.1:{port}\nloopback_users = none\n"),
        )?;
        // The server drops to the rabbitmq user when started as root: let it write here.
        run_checked(Command::new("chmod").args(["-R", "777"]).arg(dir.path()), "chmod")?;
        let rabbit = PrivateRabbit { port, node, dir };
        let path = |name: &str| rabbit.dir.path().join(name).display().to_string();
        let status = Command::new("rabbitmq-server")
            .arg("-detached")
            .env("RABBITMQ_NODENAME", &rabbit.node)
            .env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("RABBITMQ_CONFIG_FILE", path("rabbitmq.conf"))
            .env("RABBITMQ_MNESIA_BASE", path("mnesia"))
            .env("RABBITMQ_LOG_BASE", path("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", path("enabled_plugins"))
            .env("RABBITMQ_PID_FILE", path("pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("starting rabbitmq-server")?;
        if !status.success() {
            bail!("rabbitmq-server -detached failed: {status}");
        }
        std::thread::sleep(Duration::from_millis(500));
        run_checked(
            Command::new("rabbitmqctl").args(["-n", &rabbit.node, "wait", &path("pid"), "--timeout", "120"]),
            "rabbitmqctl wait",
        )?;
        Ok(rabbit)
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    pub fn stop_app(&self) -> anyhow::Result<()> {
        run_checked(Command::new("rabbitmqctl").args(["-n", &self.node, "stop_app"]), "rabbitmqctl stop_app")
    }

    pub fn start_app(&self) -> anyhow::Result<()> {
        run_checked(Command::new("rabbitmqctl").args(["-n", &self.node, "start_app"]), "rabbitmqctl start_app")
    }

    /// Raises (or clears) the node's memory alarm by moving its high watermark below (or back above) what it
    /// uses: while it is raised the broker blocks every publishing connection.
    pub fn memory_alarm(&self, raised: bool) -> anyhow::Result<()> {
        let mut command = Command::new("rabbitmqctl");
        command.args(["-n", &self.node, "set_vm_memory_high_watermark"]);
        if raised {
            command.args(["absolute", "1"]);
        } else {
            command.arg("0.4");
        }
        run_checked(&mut command, "rabbitmqctl set_vm_memory_high_watermark")
    }
}

impl Drop for PrivateRabbit {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["-n", &self.node, "shutdown"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Which service binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Gateway,
    Importer,
    Exporter,
}

impl Service {
    fn binary(self) -> &'static str {
        match self {
            Service::Gateway => "ferry-gateway",
            Service::Importer => "ferry-importer",
            Service::Exporter => "ferry-exporter",
        }
    }
}

/// One running service process.
pub struct Proc {
    pub service: Service,
    pub child: Child,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGSTOP: the process freezes (its leases run out, its connections stay open) until [`Proc::resume`].
    pub fn freeze(&self) -> anyhow::Result<()> {
        run_checked(Command::new("kill").args(["-STOP", &self.pid().to_string()]), "kill -STOP")
    }

    /// SIGCONT after [`Proc::freeze`].
    pub fn resume(&self) -> anyhow::Result<()> {
        run_checked(Command::new("kill").args(["-CONT", &self.pid().to_string()]), "kill -CONT")
    }

    /// SIGTERM, then waits up to `limit` for the exit; returns how long it took (None if it had to be killed).
    pub fn terminate(&mut self, limit: Duration) -> Option<Duration> {
        let started = Instant::now();
        let _ = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status();
        while started.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill9();
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// What a scenario measured. Printed as one line; `lost > 0`, `duplicated > 0` or `stuck > 0` fail it.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub scenario: String,
    pub files: usize,
    pub lost: usize,
    pub duplicated: usize,
    pub stuck: usize,
    pub recover_secs: f64,
    pub total_secs: f64,
    pub notes: Vec<String>,
}

impl Figures {
    pub fn ok(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.stuck == 0
    }

    pub fn line(&self) -> String {
        format!(
            "{:<18} files={:<4} lost={} duplicated={} stuck={} recover={:.1}s total={:.1}s {}",
            self.scenario,
            self.files,
            self.lost,
            self.duplicated,
            self.stuck,
            self.recover_secs,
            self.total_secs,
            self.notes.join(" ")
        )
    }
}

/// One scenario's system: database, queue prefix, blobs, emulator, and the service processes.
pub struct Stack {
    pub name: String,
    pub purpose: Purpose,
    pub db: ferry_db::Db,
    pub db_url: String,
    admin_url: String,
    pub amqp_url: String,
    pub prefix: String,
    pub emulator: drive_emulator::RunningEmulator,
    pub gateway_url: String,
    gateway_bind: String,
    pub http: reqwest::Client,
    pub api_key: String,
    pub tenant_id: TenantId,
    pub email: String,
    pub connection_id: String,
    env: Vec<(String, String)>,
    bin_dir: PathBuf,
    pub log_dir: PathBuf,
    pub gateway: Option<Proc>,
    pub importers: Vec<Proc>,
    pub exporters: Vec<Proc>,
    spawned: usize,
    _blobs: tempfile::TempDir,
}

/// What a stack is for. It names the stack's database (`ferry_{word}_…`), queue prefix, tenant, log directory
/// (`{word}-logs/` beside the binaries) and `FERRY_ENV`; chaos stacks also shorten the reliability timings
/// (lease, reaper, shutdown) so faults recover within a scenario, while bench stacks keep the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Chaos,
    Bench,
}

impl Purpose {
    pub fn word(self) -> &'static str {
        match self {
            Purpose::Chaos => "chaos",
            Purpose::Bench => "bench",
        }
    }
}

impl Stack {
    /// Starts the emulator, a gateway, and connects a Drive account. `extra` are more `FERRY__…` settings.
    pub async fn start(
        name: &str,
        pg_url: &str,
        amqp_url: &str,
        faults: drive_emulator::Faults,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Stack> {
        Self::start_for(Purpose::Chaos, name, pg_url, amqp_url, faults, extra).await
    }

    /// [`Stack::start`] for a [`Purpose`]. If anything fails after the database was created, the database and
    /// any queues the gateway declared are removed again (the processes started so far are killed on drop).
    pub async fn start_for(
        purpose: Purpose,
        name: &str,
        pg_url: &str,
        amqp_url: &str,
        faults: drive_emulator::Faults,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Stack> {
        let word = purpose.word();
        let db_name = format!("ferry_{word}_{}_{}", name.replace('-', "_"), uuid::Uuid::new_v4().simple());
        let db_url = format!("{pg_url}/{db_name}");
        let prefix = format!("{word}-{name}-{}", uuid::Uuid::new_v4().simple());
        ferry_db::create_database_if_missing(&db_url).await.context("creating the run database")?;
        match Self::assemble(purpose, name, &db_url, &prefix, pg_url, amqp_url, faults, extra).await {
            Ok(stack) => Ok(stack),
            Err(err) => {
                if let Ok(broker) = ferry_queue::Broker::connect(amqp_url, "stack-cleanup").await {
                    let _ = ferry_queue::Topology::new(prefix.clone(), 5).delete(&broker).await;
                    broker.close().await;
                }
                let _ = ferry_db::drop_database(&db_url).await;
                Err(err)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn assemble(
        purpose: Purpose,
        name: &str,
        db_url: &str,
        prefix: &str,
        pg_url: &str,
        amqp_url: &str,
        faults: drive_emulator::Faults,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Stack> {
        let (db_url, prefix) = (db_url.to_owned(), prefix.to_owned());
        ferry_db::run_migrations(&db_url).await.context("migrating")?;
        let db = ferry_db::Db::connect(&db_url, 4)?;
        let emulator = drive_emulator::spawn(
            drive_emulator::EmulatorConfig { faults, ..drive_emulator::EmulatorConfig::default() },
            std::net::TcpListener::bind("127.0.0.1:0")?,
        )
        .await
        .context("starting the emulator")?;
        let blobs = tempfile::Builder::new().prefix("ferry-chaos-blobs").tempdir()?;
        let gateway_bind = format!("127.0.0.1:{}", free_port()?);
        let gateway_url = format!("http://{gateway_bind}");
        let emu = emulator.base_url().to_owned();
        let mut env: Vec<(String, String)> = vec![
            ("FERRY__DATABASE__URL".into(), db_url.clone()),
            ("FERRY__DATABASE__MAX_CONNECTIONS".into(), "10".into()),
            ("FERRY__AMQP__URL".into(), amqp_url.to_owned()),
            ("FERRY__AMQP__QUEUE_PREFIX".into(), prefix.clone()),
            ("FERRY__STORAGE__ROOT".into(), blobs.path().display().to_string()),
            ("FERRY__GATEWAY__PUBLIC_URL".into(), gateway_url.clone()),
            ("FERRY__GOOGLE__AUTH_URL".into(), format!("{emu}/o/oauth2/v2/auth")),
            ("FERRY__GOOGLE__TOKEN_URL".into(), format!("{emu}/token")),
            ("FERRY__GOOGLE__REVOKE_URL".into(), format!("{emu}/revoke")),
            ("FERRY__GOOGLE__USERINFO_URL".into(), format!("{emu}/oauth2/v3/userinfo")),
            ("FERRY__GOOGLE__DRIVE_ROOT_URL".into(), format!("{emu}/")),
            (
                "FERRY__GOOGLE__REDIRECT_URI".into(),
                format!("{gateway_url}/api/v2/cloud-storage/auth/google_drive/callback"),
            ),
            ("FERRY__GATEWAY__OPS_BIND".into(), "127.0.0.1:0".into()),
            ("FERRY__IMPORTER__OPS_BIND".into(), "127.0.0.1:0".into()),
            ("FERRY__EXPORTER__OPS_BIND".into(), "127.0.0.1:0".into()),
            ("FERRY__TELEMETRY__LOG_FORMAT".into(), "json".into()),
        ];
        if purpose == Purpose::Chaos {
            env.extend([
                ("FERRY__RELIABILITY__LEASE_SECS".into(), "6".into()),
                ("FERRY__RELIABILITY__REAPER_INTERVAL_SECS".into(), "1".into()),
                ("FERRY__RELIABILITY__STALE_PENDING_SECS".into(), "40".into()),
                ("FERRY__RELIABILITY__SHUTDOWN_DEADLINE_SECS".into(), "5".into()),
                ("FERRY__GATEWAY__OUTBOX_POLL_INTERVAL_SECS".into(), "2".into()),
            ]);
        }
        for (key, value) in extra {
            env.retain(|(k, _)| k != key);
            env.push(((*key).to_owned(), (*value).to_owned()));
        }
        let bin_dir = std::env::current_exe()?.parent().map(Path::to_path_buf).unwrap_or_default();
        let log_dir = bin_dir.join(format!("{}-logs", purpose.word())).join(name);
        let _ = std::fs::remove_dir_all(&log_dir);
        std::fs::create_dir_all(&log_dir)?;
        let tenant = db.ensure_tenant(purpose.word()).await?;
        let api_key = ferry_crypto::generate_api_key();
        db.insert_api_key(
            TenantId(tenant.id),
            &ferry_crypto::hash_api_key(&api_key),
            &ferry_crypto::api_key_display_prefix(&api_key),
        )
        .await?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()?;
        let email = format!("{name}@example.com");
        emulator.state().ensure_user(&email, name);
        let mut stack = Stack {
            name: name.to_owned(),
            purpose,
            db,
            db_url,
            admin_url: pg_url.to_owned(),
            amqp_url: amqp_url.to_owned(),
            prefix,
            emulator,
            gateway_url,
            gateway_bind,
            http,
            api_key,
            tenant_id: TenantId(tenant.id),
            email,
            connection_id: String::new(),
            env,
            bin_dir,
            log_dir,
            gateway: None,
            importers: Vec::new(),
            exporters: Vec::new(),
            spawned: 0,
            _blobs: blobs,
        };
        stack.start_gateway()?;
        stack.wait_ready(Duration::from_secs(60)).await?;
        stack.connection_id = stack.connect_drive(&stack.email).await?;
        Ok(stack)
    }

    /// Starts a process of `service` with the stack's settings; its output goes to `log_dir`.
    pub fn spawn(&mut self, service: Service) -> anyhow::Result<Proc> {
        self.spawned += 1;
        let log = self.log_dir.join(format!("{}-{}.log", service.binary(), self.spawned));
        let out = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let child = Command::new(self.bin_dir.join(service.binary()))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("FERRY__GATEWAY__BIND", &self.gateway_bind)
            .env("FERRY_ENV", self.purpose.word())
            .current_dir(&self.log_dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {} (build it first: cargo build --bins)", service.binary()))?;
        Ok(Proc { service, child, log })
    }

    pub fn start_gateway(&mut self) -> anyhow::Result<()> {
        let proc = self.spawn(Service::Gateway)?;
        self.gateway = Some(proc);
        Ok(())
    }

    pub fn start_importer(&mut self) -> anyhow::Result<()> {
        let proc = self.spawn(Service::Importer)?;
        self.importers.push(proc);
        Ok(())
    }

    pub fn start_exporter(&mut self) -> anyhow::Result<()> {
        let proc = self.spawn(Service::Exporter)?;
        self.exporters.push(proc);
        Ok(())
    }

    /// Waits until the gateway's /readyz answers 200.
    pub async fn wait_ready(&self, limit: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Ok(response) = self.http.get(format!("{}/readyz", self.gateway_url)).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("gateway not ready after {limit:?} (logs in {})", self.log_dir.display())
    }

    pub fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}/api/v2{path}", self.gateway_url)).bearer_auth(&self.api_key)
    }

    /// Connects another Drive user (created in the emulator if new) to the stack's tenant; returns the
    /// connection id.
    pub async fn connect_user(&self, email: &str) -> anyhow::Result<String> {
        self.emulator.state().ensure_user(email, email.split('@').next().unwrap_or(email));
        self.connect_drive(email).await
    }

    async fn connect_drive(&self, email: &str) -> anyhow::Result<String> {
        let started: Value = self
            .api(reqwest::Method::POST, "/cloud-storage/auth/google_drive")
            .json(&json!({ "provider": "google_drive", "login_hint": email }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let authorization_url =
            started["authorization_url"].as_str().ok_or_else(|| anyhow!("no authorization_url in {started}"))?;
        let response = self.http.get(authorization_url).send().await?;
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| anyhow!("authorize answered {} without a redirect", response.status()))?;
        let redirect = url::Url::parse(location)?;
        let param = |name: &str| redirect.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
        let body: Value = self
            .api(reqwest::Method::POST, "/cloud-storage/auth/google_drive/callback")
            .json(&json!({ "code": param("code"), "state": param("state") }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(body["connection"]["id"].as_str().ok_or_else(|| anyhow!("no connection id in {body}"))?.to_owned())
    }

    /// Seeds `count` files in the emulator (sizes from `size`), returning (drive id, name, bytes).
    pub fn seed_files(&self, count: usize, size: impl Fn(usize) -> usize) -> Vec<(String, String, Bytes)> {
        let drive = self.emulator.state();
        (0..count)
            .map(|n| {
                let name = format!("{}-{n:04}.bin", self.name);
                let bytes = crate::test_bytes(size(n), n as u64 + 1);
                (drive.create_file(&self.email, None, &name, "application/octet-stream", bytes.clone()), name, bytes)
            })
            .collect()
    }

    /// Starts an import of the seeded files; returns (job id, image ids in file order).
    pub async fn start_import(&self, files: &[(String, String, Bytes)]) -> anyhow::Result<(String, Vec<String>)> {
        let list: Vec<Value> = files.iter().map(|(id, name, _)| json!({ "id": id, "name": name })).collect();
        let response = self
            .api(reqwest::Method::POST, "/cloud-storage/import")
            .json(&json!({ "connection_id": self.connection_id, "files": list }))
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if status != 200 {
            bail!("import answered {status}: {body}");
        }
        let ids = body["image_ids"].as_array().ok_or_else(|| anyhow!("no image_ids"))?;
        Ok((
            body["job_id"].as_str().ok_or_else(|| anyhow!("no job_id"))?.to_owned(),
            ids.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        ))
    }

    /// Starts an export of stored files into a new Drive folder `folder`.
    pub async fn start_export(&self, image_ids: &[String], folder: &str) -> anyhow::Result<String> {
        let response = self
            .api(reqwest::Method::POST, "/cloud-storage/export")
            .json(&json!({ "connection_id": self.connection_id, "image_ids": image_ids, "folder_name": folder }))
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if status != 200 {
            bail!("export answered {status}: {body}");
        }
        Ok(body["job_id"].as_str().ok_or_else(|| anyhow!("no job_id"))?.to_owned())
    }

    /// What a stuck job looks like from the outside: its unfinished items (status, attempts, lease owner, last
    /// error), the outbox backlog and parked rows, and the ready messages of both work queues.
    async fn diagnose_unfinished(&self, job_id: JobId) -> String {
        let items = match self.db.list_job_items(self.tenant_id, job_id).await {
            Ok(items) => items
                .into_iter()
                .filter(|item| !item.status.is_terminal())
                .map(|item| {
                    format!(
                        "{} {} attempts={} owner={:?} error={:?}",
                        item.item_id(),
                        item.status,
                        item.attempts,
                        item.lease_owner,
                        item.error_code
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
            Err(err) => format!("cannot list items: {err}"),
        };
        let backlog = self.db.outbox_backlog().await.map(|(rows, age)| format!("{rows} rows, oldest {age:.1}s"));
        let parked = self.db.parked_outbox_rows(20).await.map(|rows| rows.len());
        let queued = match ferry_queue::Broker::connect(&self.amqp_url, "chaos-diagnosis").await {
            Ok(broker) => {
                let import = self.queued(&broker, ferry_queue::CommandKind::ImportItem).await;
                let export = self.queued(&broker, ferry_queue::CommandKind::ExportItem).await;
                broker.close().await;
                format!("import={import:?} export={export:?}")
            }
            Err(err) => format!("broker unreachable: {err}"),
        };
        format!("unfinished [{items}]; outbox backlog {backlog:?}, parked {parked:?}; queued {queued}")
    }

    /// Ready messages of `command` in the broker: its work queue plus every delay tier.
    pub async fn queued(&self, broker: &ferry_queue::Broker, command: ferry_queue::CommandKind) -> anyhow::Result<i64> {
        let topology = ferry_queue::Topology::new(self.prefix.clone(), 5);
        let mut queues = vec![topology.queue(command)];
        queues.extend(topology.retry_queues(command).into_iter().map(|(_, queue)| queue));
        let mut total = 0;
        for queue in queues {
            total += i64::from(ferry_queue::queue_depth(broker, &queue).await?);
        }
        Ok(total)
    }

    /// Log lines of every process of `service` so far that contain `needle`.
    pub fn count_log_lines(&self, service: Service, needle: &str) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.log_dir) else { return 0 };
        entries
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().starts_with(service.binary()))
            .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
            .map(|text| text.lines().filter(|line| line.contains(needle)).count())
            .sum()
    }

    /// Item counts per status, straight from Postgres.
    pub async fn item_counts(&self, job_id: &str) -> anyhow::Result<std::collections::HashMap<ItemStatus, i64>> {
        let id = JobId::parse(job_id).map_err(|err| anyhow!("{err}"))?;
        Ok(self.db.item_status_counts(id).await?.into_iter().collect())
    }

    /// Waits until the job is terminal in Postgres (reading the database directly, so API outages do not
    /// matter). Returns the job row.
    pub async fn wait_job(&self, job_id: &str, limit: Duration) -> anyhow::Result<ferry_db::jobs::Job> {
        let id = JobId::parse(job_id).map_err(|err| anyhow!("{err}"))?;
        let started = Instant::now();
        loop {
            if let Ok(Some(job)) = self.db.get_job(self.tenant_id, id).await
                && job.status.is_terminal()
            {
                return Ok(job);
            }
            if started.elapsed() > limit {
                let counts = self.item_counts(job_id).await.unwrap_or_default();
                let diagnosis = self.diagnose_unfinished(id).await;
                bail!(
                    "job {job_id} not finished after {limit:?}: items {counts:?}; {diagnosis} (logs in {})",
                    self.log_dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Checks an import: every file `ready` with identical bytes (read from the blob store through the API), the
    /// job's counters exact, and no item left unfinished. Fills lost / duplicated / stuck.
    pub async fn check_import(
        &self,
        job_id: &str,
        image_ids: &[String],
        files: &[(String, String, Bytes)],
        figures: &mut Figures,
    ) -> anyhow::Result<()> {
        let id = JobId::parse(job_id).map_err(|err| anyhow!("{err}"))?;
        let job = self.db.get_job(self.tenant_id, id).await?.ok_or_else(|| anyhow!("job vanished"))?;
        let counts = self.item_counts(job_id).await?;
        let terminal: i64 = counts.iter().filter(|(status, _)| status.is_terminal()).map(|(_, n)| n).sum();
        figures.stuck = usize::try_from(counts.values().sum::<i64>() - terminal).unwrap_or(0);
        // A counter bumped twice for one item would be a duplicate completion.
        let counted = i64::from(job.completed_files + job.failed_files + job.cancelled_files);
        figures.duplicated += usize::try_from(counted - terminal).unwrap_or(0);
        for (image_id, (_, name, bytes)) in image_ids.iter().zip(files) {
            let response = self.api(reqwest::Method::GET, &format!("/files/{image_id}/content")).send().await?;
            let ok = response.status() == 200 && response.bytes().await.map(|body| body == *bytes).unwrap_or(false);
            if !ok {
                figures.lost += 1;
                figures.notes.push(format!("missing-or-different:{name}"));
            }
        }
        if job.status != JobStatus::Completed {
            figures.notes.push(format!("job-status={}", job.status));
            figures.lost = figures.lost.max(usize::try_from(job.failed_files).unwrap_or(0));
        }
        Ok(())
    }

    /// Checks an export into `folder`: every file exactly once by name, md5 identical, nothing extra.
    pub async fn check_export(
        &self,
        job_id: &str,
        folder: &str,
        files: &[(String, String, Bytes)],
        figures: &mut Figures,
    ) -> anyhow::Result<()> {
        use md5::Digest;
        let drive = self.emulator.state();
        let root = drive.root_folder_id(&self.email);
        let folders: Vec<_> = drive.children(&root).into_iter().filter(|f| f.name == folder).collect();
        if folders.len() != 1 {
            figures.duplicated += folders.len().saturating_sub(1);
            figures.notes.push(format!("export-folders={}", folders.len()));
        }
        let mut exported = Vec::new();
        for folder in &folders {
            exported.extend(drive.children(&folder.id));
        }
        for (_, name, bytes) in files {
            let copies: Vec<_> = exported.iter().filter(|f| f.name == *name).collect();
            let md5 = hex::encode(md5::Md5::digest(bytes));
            match copies.len() {
                0 => figures.lost += 1,
                1 if copies[0].md5.as_deref() == Some(md5.as_str()) => {}
                1 => {
                    figures.lost += 1;
                    figures.notes.push(format!("md5-differs:{name}"));
                }
                n => figures.duplicated += n - 1,
            }
        }
        figures.duplicated += exported.len().saturating_sub(files.len()).saturating_sub(figures.duplicated);
        let counts = self.item_counts(job_id).await?;
        let terminal: i64 = counts.iter().filter(|(status, _)| status.is_terminal()).map(|(_, n)| n).sum();
        figures.stuck = usize::try_from(counts.values().sum::<i64>() - terminal).unwrap_or(0);
        Ok(())
    }

    /// Stops every process and drops the database and queues.
    pub async fn teardown(mut self) {
        if let Some(mut gateway) = self.gateway.take() {
            gateway.kill9();
        }
        for mut proc in self.importers.drain(..).chain(self.exporters.drain(..)) {
            proc.kill9();
        }
        if let Ok(broker) = ferry_queue::Broker::connect(&self.amqp_url, "chaos-cleanup").await {
            let _ = ferry_queue::Topology::new(self.prefix.clone(), 5).delete(&broker).await;
            broker.close().await;
        }
        let _ = &self.admin_url;
        let _ = ferry_db::drop_database(&self.db_url).await;
    }
}

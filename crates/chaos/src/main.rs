//! `ferry-chaos [SCENARIO…]`: runs the chaos scenarios (all by default) one after another against real service
//! processes, a private Postgres and a private RabbitMQ node, printing lost / duplicated / stuck / time to
//! recover for each. Exits non-zero if any scenario lost, duplicated or stranded a file, or failed to run.

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use ferry_chaos::harness::{Figures, PrivatePostgres, PrivateRabbit, Service, Stack};
use ferry_core::ItemStatus;
use ferry_messages::Message;
use md5::Digest;
use rand::Rng;

const SCENARIOS: [&str; 14] = [
    "kill-importer",
    "kill-exporter",
    "rabbitmq-restart",
    "postgres-restart",
    "drive-errors",
    "poison",
    "sigterm",
    "kill-relay",
    "drive-stall",
    "stale-worker",
    "backlog",
    "broker-alarm",
    "missing-file",
    "sync-kill",
];

struct Infra {
    pg: PrivatePostgres,
    rabbit: PrivateRabbit,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let _telemetry = ferry_telemetry::init("chaos", "pretty", "error");
    let requested: Vec<String> = std::env::args().skip(1).collect();
    let chosen: Vec<&str> = if requested.is_empty() || requested.iter().any(|r| r == "all") {
        SCENARIOS.to_vec()
    } else {
        for name in &requested {
            if !SCENARIOS.contains(&name.as_str()) {
                bail!("unknown scenario {name:?}; choose from {SCENARIOS:?} or all");
            }
        }
        SCENARIOS.iter().copied().filter(|s| requested.iter().any(|r| r == s)).collect()
    };

    let started = Instant::now();
    println!("chaos: starting a private Postgres and RabbitMQ (the machine's own servers are not touched)");
    let infra = Infra {
        pg: PrivatePostgres::start().context("starting the private Postgres")?,
        rabbit: PrivateRabbit::start().context("starting the private RabbitMQ")?,
    };
    println!(
        "chaos: postgres 127.0.0.1:{}, rabbitmq 127.0.0.1:{} ({:.1}s)",
        infra.pg.port,
        infra.rabbit.port,
        started.elapsed().as_secs_f64()
    );

    let mut results = Vec::new();
    for name in chosen {
        let scenario_start = Instant::now();
        println!("chaos: {name} ...");
        let outcome = tokio::time::timeout(Duration::from_secs(300), run(name, &infra)).await;
        let mut figures = match outcome {
            Ok(Ok(figures)) => figures,
            Ok(Err(err)) => Figures {
                scenario: name.into(),
                notes: vec![format!("ERROR: {err:#}")],
                lost: usize::MAX,
                ..Figures::default()
            },
            Err(_) => Figures {
                scenario: name.into(),
                notes: vec!["ERROR: timed out after 300 s".into()],
                lost: usize::MAX,
                ..Figures::default()
            },
        };
        figures.scenario = name.into();
        figures.total_secs = scenario_start.elapsed().as_secs_f64();
        println!("chaos: {}", figures.line());
        results.push(figures);
    }
    println!("\nchaos summary ({:.0}s):", started.elapsed().as_secs_f64());
    for figures in &results {
        println!("  {} {}", if figures.ok() { "PASS" } else { "FAIL" }, figures.line());
    }
    drop(infra);
    if results.iter().all(Figures::ok) {
        Ok(())
    } else {
        bail!("chaos: some scenarios lost, duplicated or stranded files")
    }
}

async fn run(name: &str, infra: &Infra) -> anyhow::Result<Figures> {
    match name {
        "kill-importer" => kill_importer(infra).await,
        "kill-exporter" => kill_exporter(infra).await,
        "rabbitmq-restart" => rabbitmq_restart(infra).await,
        "postgres-restart" => postgres_restart(infra).await,
        "drive-errors" => drive_errors(infra).await,
        "poison" => poison(infra).await,
        "sigterm" => sigterm(infra).await,
        "kill-relay" => kill_relay(infra).await,
        "drive-stall" => drive_stall(infra).await,
        "stale-worker" => stale_worker(infra).await,
        "backlog" => backlog(infra).await,
        "broker-alarm" => broker_alarm(infra).await,
        "missing-file" => missing_file(infra).await,
        "sync-kill" => sync_kill(infra).await,
        other => bail!("unknown scenario {other}"),
    }
}

fn latency() -> drive_emulator::Faults {
    drive_emulator::Faults { latency_ms: 20, jitter_ms: 30, ..drive_emulator::Faults::default() }
}

async fn stack(
    name: &str,
    infra: &Infra,
    faults: drive_emulator::Faults,
    extra: &[(&str, &str)],
) -> anyhow::Result<Stack> {
    Stack::start(name, &infra.pg.url(), &infra.rabbit.url(), faults, extra).await
}

fn random_pause(min_ms: u64, max_ms: u64) -> Duration {
    Duration::from_millis(rand::rng().random_range(min_ms..max_ms))
}

/// 1. kill -9 the importer at random moments, 10 times, during a 300-file import with emulator latency.
async fn kill_importer(infra: &Infra) -> anyhow::Result<Figures> {
    let mut stack = stack("kill-importer", infra, latency(), &[("FERRY__IMPORTER__CONCURRENCY", "8")]).await?;
    let files = stack.seed_files(300, |n| 4096 + (n * 7919) % 300_000);
    stack.start_importer()?;
    let (job_id, image_ids) = stack.start_import(&files).await?;
    for _ in 0..10 {
        tokio::time::sleep(random_pause(300, 1200)).await;
        if let Some(mut importer) = stack.importers.pop() {
            importer.kill9();
        }
        stack.start_importer()?;
    }
    let last_fault = Instant::now();
    stack.wait_job(&job_id, Duration::from_secs(180)).await?;
    let mut figures =
        Figures { files: files.len(), recover_secs: last_fault.elapsed().as_secs_f64(), ..Figures::default() };
    stack.check_import(&job_id, &image_ids, &files, &mut figures).await?;
    figures.notes.push("kills=10".into());
    stack.teardown().await;
    Ok(figures)
}

/// 2. The same for the exporter: 200 files including 30 MiB ones, each one streaming upload resumed after a kill.
async fn kill_exporter(infra: &Infra) -> anyhow::Result<Figures> {
    let extra = [("FERRY__EXPORTER__CONCURRENCY", "8"), ("FERRY__IMPORTER__CONCURRENCY", "8")];
    let mut stack = stack("kill-exporter", infra, drive_emulator::Faults::default(), &extra).await?;
    let big = 30 * 1024 * 1024;
    let files = stack.seed_files(200, |n| if n % 50 == 0 { big } else { 2048 + (n * 7919) % 200_000 });
    stack.start_importer()?;
    let (import_id, image_ids) = stack.start_import(&files).await?;
    stack.wait_job(&import_id, Duration::from_secs(180)).await?;
    stack.emulator.state().update_faults(|faults| *faults = latency()).map_err(|err| anyhow::anyhow!("{err}"))?;
    stack.start_exporter()?;
    let export_id = stack.start_export(&image_ids, "Chaos Export").await?;
    for _ in 0..10 {
        tokio::time::sleep(random_pause(300, 1500)).await;
        if let Some(mut exporter) = stack.exporters.pop() {
            exporter.kill9();
        }
        stack.start_exporter()?;
    }
    let last_fault = Instant::now();
    stack.wait_job(&export_id, Duration::from_secs(240)).await?;
    let mut figures =
        Figures { files: files.len(), recover_secs: last_fault.elapsed().as_secs_f64(), ..Figures::default() };
    stack.check_export(&export_id, "Chaos Export", &files, &mut figures).await?;
    let uploads = stack.emulator.state().counters().users.get(&stack.email).map_or(0, |u| u.uploaded_bytes);
    let total: usize = files.iter().map(|(_, _, bytes)| bytes.len()).sum();
    figures.notes.push(format!(
        "kills=10 uploaded={:.2}x-of-{}MiB",
        uploads as f64 / total as f64,
        total / (1024 * 1024)
    ));
    stack.teardown().await;
    Ok(figures)
}

/// 3. RabbitMQ restarted 3 times mid-job: the relay and the workers reconnect without being restarted.
async fn rabbitmq_restart(infra: &Infra) -> anyhow::Result<Figures> {
    let mut stack = stack("rabbitmq-restart", infra, latency(), &[("FERRY__IMPORTER__CONCURRENCY", "4")]).await?;
    let files = stack.seed_files(200, |n| 4096 + (n * 7919) % 100_000);
    stack.start_importer()?;
    let (job_id, image_ids) = stack.start_import(&files).await?;
    for _ in 0..3 {
        tokio::time::sleep(random_pause(800, 1500)).await;
        infra.rabbit.stop_app()?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        infra.rabbit.start_app()?;
    }
    let last_fault = Instant::now();
    stack.wait_job(&job_id, Duration::from_secs(180)).await?;
    let mut figures =
        Figures { files: files.len(), recover_secs: last_fault.elapsed().as_secs_f64(), ..Figures::default() };
    stack.check_import(&job_id, &image_ids, &files, &mut figures).await?;
    let restarted = stack.importers.iter_mut().any(|p| !matches!(p.child.try_wait(), Ok(None)))
        || stack.gateway.as_mut().is_some_and(|p| !matches!(p.child.try_wait(), Ok(None)));
    if restarted {
        figures.notes.push("a-process-exited".into());
        figures.stuck += 1;
    }
    figures.notes.push("restarts=3 processes-restarted=0".into());
    stack.teardown().await;
    Ok(figures)
}

/// 4. Postgres restarted mid-job: the gateway answers 503 meanwhile (never 500); the job completes afterwards.
async fn postgres_restart(infra: &Infra) -> anyhow::Result<Figures> {
    let mut stack = stack("postgres-restart", infra, latency(), &[("FERRY__IMPORTER__CONCURRENCY", "4")]).await?;
    let files = stack.seed_files(150, |n| 4096 + (n * 7919) % 100_000);
    stack.start_importer()?;
    let (job_id, image_ids) = stack.start_import(&files).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    infra.pg.stop_server()?;
    let down = Instant::now();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    while down.elapsed() < Duration::from_secs(5) {
        let status = match stack.api(reqwest::Method::GET, &format!("/cloud-storage/jobs/{job_id}")).send().await {
            Ok(response) => response.status().as_u16(),
            Err(_) => 0,
        };
        *statuses.entry(status).or_default() += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    infra.pg.start_server()?;
    // A few more requests right after the restart, when pooled connections are stale.
    for _ in 0..20 {
        if let Ok(response) = stack.api(reqwest::Method::GET, &format!("/cloud-storage/jobs/{job_id}")).send().await {
            *statuses.entry(response.status().as_u16()).or_default() += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let last_fault = Instant::now();
    stack.wait_job(&job_id, Duration::from_secs(180)).await?;
    let mut figures =
        Figures { files: files.len(), recover_secs: last_fault.elapsed().as_secs_f64(), ..Figures::default() };
    stack.check_import(&job_id, &image_ids, &files, &mut figures).await?;
    let errors_500 = statuses.get(&500).copied().unwrap_or(0);
    figures.notes.push(format!("statuses={statuses:?}"));
    if errors_500 > 0 {
        figures.notes.push(format!("FAIL: {errors_500} answers were 500"));
        figures.stuck += errors_500;
    }
    stack.teardown().await;
    Ok(figures)
}

/// 5. 30% of Drive requests fail with 429 / 403 rate limit / 503: the job completes; the counters show backoff.
async fn drive_errors(infra: &Infra) -> anyhow::Result<Figures> {
    let mut faults = latency();
    faults.error_rates.rate_limit_429 = 0.1;
    faults.error_rates.user_rate_limit_403 = 0.05;
    faults.error_rates.rate_limit_403 = 0.05;
    faults.error_rates.backend_error_503 = 0.1;
    let mut stack =
        stack("drive-errors", infra, drive_emulator::Faults::default(), &[("FERRY__IMPORTER__CONCURRENCY", "8")])
            .await?;
    let files = stack.seed_files(150, |n| 4096 + (n * 7919) % 100_000);
    stack.emulator.state().update_faults(|current| *current = faults).map_err(|err| anyhow::anyhow!("{err}"))?;
    stack.emulator.state().reset_counters();
    stack.start_importer()?;
    let started = Instant::now();
    let (job_id, image_ids) = stack.start_import(&files).await?;
    stack.wait_job(&job_id, Duration::from_secs(240)).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let counters = stack.emulator.state().counters();
    let mut figures = Figures { files: files.len(), recover_secs: elapsed, ..Figures::default() };
    stack.check_import(&job_id, &image_ids, &files, &mut figures).await?;
    let injected: u64 = counters.injected.values().sum();
    figures.notes.push(format!(
        "drive-requests={} per-file={:.1} injected={injected} avg-rate={:.0}/s",
        counters.total,
        counters.total as f64 / files.len() as f64,
        counters.total as f64 / elapsed
    ));
    stack.teardown().await;
    Ok(figures)
}

/// 6. Poison messages (undecodable, and for an unknown item) while a job flows: both dead-lettered, the
///    unknown-item one after exactly the delivery limit; the job completes.
async fn poison(infra: &Infra) -> anyhow::Result<Figures> {
    let mut stack = stack("poison", infra, latency(), &[]).await?;
    let files = stack.seed_files(50, |n| 4096 + n * 100);
    stack.start_importer()?;
    let broker = ferry_queue::Broker::connect(&stack.amqp_url, "chaos-poison").await?;
    let topology = ferry_queue::Topology::new(stack.prefix.clone(), 5);
    let publisher = ferry_queue::Publisher::new(&broker, &topology).await?;
    let (job_id, image_ids) = stack.start_import(&files).await?;
    let unknown = ferry_messages::ImportItem {
        job_id: uuid::Uuid::new_v4().to_string(),
        item_id: uuid::Uuid::new_v4().to_string(),
        tenant_id: stack.tenant_id.0.to_string(),
        traceparent: String::new(),
    };
    publisher.publish(ferry_queue::CommandKind::ImportItem, "poison-undecodable", b"\xff\xff\xff\xff").await?;
    publisher.publish(ferry_queue::CommandKind::ImportItem, "poison-unknown-item", &unknown.encode_to_vec()).await?;
    stack.wait_job(&job_id, Duration::from_secs(120)).await?;
    let mut figures = Figures { files: files.len(), ..Figures::default() };
    stack.check_import(&job_id, &image_ids, &files, &mut figures).await?;
    let started = Instant::now();
    let mut dead = Vec::new();
    while started.elapsed() < Duration::from_secs(30) {
        dead = ferry_queue::list_dead_letters(&broker, &topology, ferry_queue::CommandKind::ImportItem, 10).await?;
        if dead.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for letter in &dead {
        figures.notes.push(format!(
            "{}:{}",
            letter.message_id.as_deref().unwrap_or("-"),
            letter.reason.as_deref().unwrap_or("-")
        ));
    }
    let reason = |id: &str| dead.iter().find(|d| d.message_id.as_deref() == Some(id)).and_then(|d| d.reason.clone());
    if reason("poison-undecodable").as_deref() != Some("rejected") {
        figures.notes.push("FAIL: undecodable message not dead-lettered".into());
        figures.stuck += 1;
    }
    // RabbitMQ dead-letters with reason delivery_limit only once a message was delivered limit + 1 times.
    if reason("poison-unknown-item").as_deref() != Some("delivery_limit") {
        figures.notes.push("FAIL: unknown-item message not dead-lettered at the delivery limit".into());
        figures.stuck += 1;
    }
    broker.close().await;
    stack.teardown().await;
    Ok(figures)
}

/// 7. SIGTERM a worker with items in flight: they finish or are handed back; the process exits before the
///    deadline; a new worker finishes the job.
async fn sigterm(infra: &Infra) -> anyhow::Result<Figures> {
    let mut faults = latency();
    faults.latency_ms = 300;
    let mut stack = stack("sigterm", infra, faults, &[("FERRY__IMPORTER__CONCURRENCY", "8")]).await?;
    let files = stack.seed_files(40, |n| 2 * 1024 * 1024 + n * 1000);
    stack.start_importer()?;
    let (job_id, image_ids) = stack.start_import(&files).await?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if stack.item_counts(&job_id).await?.get(&ItemStatus::Running).copied().unwrap_or(0) >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let in_flight = stack.item_counts(&job_id).await?.get(&ItemStatus::Running).copied().unwrap_or(0);
    let mut importer = stack.importers.pop().context("no importer")?;
    // Deadline 5 s (FERRY__RELIABILITY__SHUTDOWN_DEADLINE_SECS) plus up to 5 s to hand items back.
    let exited = importer.terminate(Duration::from_secs(12));
    let running_after = stack.item_counts(&job_id).await?.get(&ItemStatus::Running).copied().unwrap_or(0);
    stack.start_importer()?;
    let last_fault = Instant::now();
    stack.wait_job(&job_id, Duration::from_secs(120)).await?;
    let mut figures =
        Figures { files: files.len(), recover_secs: last_fault.elapsed().as_secs_f64(), ..Figures::default() };
    stack.check_import(&job_id, &image_ids, &files, &mut figures).await?;
    match exited {
        Some(took) => figures
            .notes
            .push(format!("in-flight={in_flight} exit-after={:.1}s left-running={running_after}", took.as_secs_f64())),
        None => {
            figures.notes.push("FAIL: did not exit within 12 s".into());
            figures.stuck += 1;
        }
    }
    // The gateway drains and exits within the same deadline.
    match stack.gateway.take().and_then(|mut gateway| gateway.terminate(Duration::from_secs(12))) {
        Some(took) => figures.notes.push(format!("gateway-exit-after={:.1}s", took.as_secs_f64())),
        None => {
            figures.notes.push("FAIL: gateway did not exit within 12 s".into());
            figures.stuck += 1;
        }
    }
    stack.teardown().await;
    Ok(figures)
}

/// 8. The relay (the gateway) killed between commit and publish, repeatedly: every job still gets its messages,
///    duplicates are absorbed.
async fn kill_relay(infra: &Infra) -> anyhow::Result<Figures> {
    let mut stack = stack("kill-relay", infra, drive_emulator::Faults::default(), &[]).await?;
    let files = stack.seed_files(100, |n| 1024 + n);
    stack.start_importer()?;
    let mut jobs = Vec::new();
    for (round, chunk) in files.chunks(10).enumerate() {
        let (job_id, image_ids) = stack.start_import(chunk).await?;
        // Committed; the relay may or may not have published yet. Kill it within 0-30 ms.
        tokio::time::sleep(random_pause(0, 30)).await;
        if let Some(mut gateway) = stack.gateway.take() {
            gateway.kill9();
        }
        stack.start_gateway()?;
        stack.wait_ready(Duration::from_secs(30)).await.with_context(|| format!("gateway restart {round}"))?;
        jobs.push((job_id, image_ids, chunk.to_vec()));
    }
    // Deterministically between commit and publish: with the broker stopped the relay cannot publish, so the
    // job's rows are committed but unpublished when the gateway dies; the next gateway must publish them.
    let extra = stack.seed_files(30, |n| 2048 + n);
    for chunk in extra.chunks(10) {
        infra.rabbit.stop_app()?;
        let created = stack.start_import(chunk).await;
        if let Some(mut gateway) = stack.gateway.take() {
            gateway.kill9();
        }
        infra.rabbit.start_app()?;
        let (job_id, image_ids) = created?;
        stack.start_gateway()?;
        stack.wait_ready(Duration::from_secs(60)).await.context("gateway restart after a broker-down commit")?;
        jobs.push((job_id, image_ids, chunk.to_vec()));
    }
    let last_fault = Instant::now();
    let mut figures = Figures { files: files.len() + extra.len(), ..Figures::default() };
    check_imports(&stack, &jobs, &mut figures).await?;
    figures.recover_secs = last_fault.elapsed().as_secs_f64();
    let (backlog, _) = stack.db.outbox_backlog().await?;
    figures.notes.push(format!("gateway-kills={} (3 with the broker down) outbox-backlog={backlog}", jobs.len()));
    stack.teardown().await;
    Ok(figures)
}

/// 9. Drive goes silent mid-download and mid-upload (the connection stays open, no bytes move): the progress
///    watchdog aborts those attempts, the items are retried, everything finishes, and no worker slot stays
///    taken (a follow-up job needing every slot completes).
async fn drive_stall(infra: &Infra) -> anyhow::Result<Figures> {
    let extra = [
        ("FERRY__IMPORTER__CONCURRENCY", "4"),
        ("FERRY__EXPORTER__CONCURRENCY", "4"),
        ("FERRY__RELIABILITY__STALL_TIMEOUT_SECS", "3"),
    ];
    let mut stack = stack("drive-stall", infra, drive_emulator::Faults::default(), &extra).await?;
    let files = stack.seed_files(24, |n| 600_000 + n * 1000);
    // Eight downloads stall for good after 200 KB: more than the importer has slots.
    let stalls = drive_emulator::Faults {
        stall_download_after_bytes: Some(200_000),
        stall_times: Some(8),
        ..drive_emulator::Faults::default()
    };
    stack.emulator.state().update_faults(|faults| *faults = stalls).map_err(|err| anyhow!("{err}"))?;
    stack.start_importer()?;
    stack.start_exporter()?;
    let started = Instant::now();
    let (import_id, image_ids) = stack.start_import(&files).await?;
    stack.wait_job(&import_id, Duration::from_secs(120)).await?;
    let mut figures = Figures { files: files.len(), ..Figures::default() };
    stack.check_import(&import_id, &image_ids, &files, &mut figures).await?;

    // Six uploads stall for good after 100 KB.
    let stalls = drive_emulator::Faults {
        stall_upload_after_bytes: Some(100_000),
        stall_times: Some(6),
        ..drive_emulator::Faults::default()
    };
    stack.emulator.state().update_faults(|faults| *faults = stalls).map_err(|err| anyhow!("{err}"))?;
    let export_id = stack.start_export(&image_ids, "Stalled Export").await?;
    stack.wait_job(&export_id, Duration::from_secs(120)).await?;
    let mut export = Figures::default();
    stack.check_export(&export_id, "Stalled Export", &files, &mut export).await?;
    figures.recover_secs = started.elapsed().as_secs_f64();

    // Every slot is free again: a job of twice the concurrency completes with Drive healthy.
    stack
        .emulator
        .state()
        .update_faults(|faults| *faults = drive_emulator::Faults::default())
        .map_err(|err| anyhow!("{err}"))?;
    let more = stack.seed_files(8, |n| 10_000 + n);
    let (follow_up, follow_ids) = stack.start_import(&more).await?;
    stack.wait_job(&follow_up, Duration::from_secs(60)).await?;
    let mut after = Figures::default();
    stack.check_import(&follow_up, &follow_ids, &more, &mut after).await?;
    let injected = stack.emulator.state().counters().injected;
    figures.lost += export.lost + after.lost;
    figures.duplicated += export.duplicated + after.duplicated;
    figures.stuck += export.stuck + after.stuck;
    figures.notes.push(format!(
        "stalled-downloads={} stalled-uploads={} watchdog-aborts={} follow-up-job=ok",
        injected.get("stall_download").copied().unwrap_or(0),
        injected.get("stall_upload").copied().unwrap_or(0),
        stack.count_log_lines(Service::Importer, "transfer_stalled")
            + stack.count_log_lines(Service::Exporter, "transfer_stalled"),
    ));
    stack.teardown().await;
    Ok(figures)
}

/// 10. An importer and an exporter frozen (SIGSTOP) past their leases while others take their items over, then
///     thawed (SIGCONT): the stale workers' writes are refused, nothing is duplicated, counters are exact.
async fn stale_worker(infra: &Infra) -> anyhow::Result<Figures> {
    let mut faults = latency();
    faults.latency_ms = 100;
    let extra = [("FERRY__IMPORTER__CONCURRENCY", "4"), ("FERRY__EXPORTER__CONCURRENCY", "4")];
    let mut stack = stack("stale-worker", infra, faults, &extra).await?;
    let files = stack.seed_files(60, |n| 200_000 + n * 1000);
    stack.start_importer()?;
    let started = Instant::now();
    let (import_id, image_ids) = stack.start_import(&files).await?;
    wait_running(&stack, &import_id, 4).await?;
    freeze_past_lease(&mut stack, Service::Importer).await?;
    stack.wait_job(&import_id, Duration::from_secs(120)).await?;
    let mut figures = Figures { files: files.len(), ..Figures::default() };
    stack.check_import(&import_id, &image_ids, &files, &mut figures).await?;

    stack.start_exporter()?;
    let export_id = stack.start_export(&image_ids, "Stale Export").await?;
    wait_running(&stack, &export_id, 4).await?;
    freeze_past_lease(&mut stack, Service::Exporter).await?;
    stack.wait_job(&export_id, Duration::from_secs(120)).await?;
    let mut export = Figures::default();
    stack.check_export(&export_id, "Stale Export", &files, &mut export).await?;
    figures.lost += export.lost;
    figures.duplicated += export.duplicated;
    figures.stuck += export.stuck;
    figures.recover_secs = started.elapsed().as_secs_f64();
    // Give the thawed workers a moment to try their writes and log the refusals.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let refused =
        stack.count_log_lines(Service::Importer, "lease lost") + stack.count_log_lines(Service::Exporter, "lease lost");
    figures.notes.push(format!("frozen=10s stale-results-dropped={refused}"));
    stack.teardown().await;
    Ok(figures)
}

/// Freezes the newest worker of `service` (SIGSTOP) with items in hand, starts a replacement, and thaws the frozen
/// one after 10 s: with a 6 s lease and the reaper every second, its items belong to the replacement by then.
async fn freeze_past_lease(stack: &mut Stack, service: Service) -> anyhow::Result<()> {
    let workers = match service {
        Service::Exporter => &mut stack.exporters,
        _ => &mut stack.importers,
    };
    let frozen = workers.pop().context("no worker to freeze")?;
    frozen.freeze()?;
    match service {
        Service::Exporter => stack.start_exporter()?,
        _ => stack.start_importer()?,
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    frozen.resume()?;
    match service {
        Service::Exporter => stack.exporters.push(frozen),
        _ => stack.importers.push(frozen),
    }
    Ok(())
}

/// A started import: job id, image ids, and the seeded files (drive id, name, bytes) it imports.
type ImportRun = (String, Vec<String>, Vec<(String, String, bytes::Bytes)>);

/// Waits for each import job and adds its lost / duplicated / stuck files to `figures`.
async fn check_imports(stack: &Stack, jobs: &[ImportRun], figures: &mut Figures) -> anyhow::Result<()> {
    for (job_id, image_ids, chunk) in jobs {
        stack.wait_job(job_id, Duration::from_secs(120)).await?;
        let mut one = Figures::default();
        stack.check_import(job_id, image_ids, chunk, &mut one).await?;
        figures.lost += one.lost;
        figures.duplicated += one.duplicated;
        figures.stuck += one.stuck;
    }
    Ok(())
}

/// Waits until at least `count` items of the job are running.
async fn wait_running(stack: &Stack, job_id: &str, count: i64) -> anyhow::Result<()> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if stack.item_counts(job_id).await?.get(&ItemStatus::Running).copied().unwrap_or(0) >= count {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("fewer than {count} items of {job_id} ever ran at once")
}

/// 11. A long backlog older than `stale_pending_secs` (5 s here): the reaper must not take it for lost
///     messages. Queue depth never exceeds the pending items, and no finished item is delivered again.
async fn backlog(infra: &Infra) -> anyhow::Result<Figures> {
    let mut faults = latency();
    faults.latency_ms = 150;
    faults.jitter_ms = 0;
    let extra = [("FERRY__IMPORTER__CONCURRENCY", "2"), ("FERRY__RELIABILITY__STALE_PENDING_SECS", "5")];
    let mut stack = stack("backlog", infra, faults, &extra).await?;
    let files = stack.seed_files(150, |n| 2048 + n);
    stack.start_importer()?;
    let broker = ferry_queue::Broker::connect(&stack.amqp_url, "chaos-backlog").await?;
    let started = Instant::now();
    let (job_id, image_ids) = stack.start_import(&files).await?;
    let mut worst_excess = i64::MIN;
    let mut samples = 0;
    loop {
        // Pending first, then the queue: the queue only shrinks in between unless someone adds messages.
        let counts = stack.item_counts(&job_id).await?;
        let pending = counts.get(&ItemStatus::Pending).copied().unwrap_or(0);
        let queued = stack.queued(&broker, ferry_queue::CommandKind::ImportItem).await?;
        worst_excess = worst_excess.max(queued - pending);
        samples += 1;
        if counts.keys().all(|status| *status == ItemStatus::Succeeded) {
            break;
        }
        if started.elapsed() > Duration::from_secs(150) {
            bail!("backlog job did not finish: {counts:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut figures =
        Figures { files: files.len(), recover_secs: started.elapsed().as_secs_f64(), ..Figures::default() };
    stack.wait_job(&job_id, Duration::from_secs(30)).await?;
    stack.check_import(&job_id, &image_ids, &files, &mut figures).await?;
    let downloads = stack.emulator.state().counters().endpoints.get("files.get.media").copied().unwrap_or(0);
    let redelivered = stack.count_log_lines(Service::Importer, "duplicate delivery of a finished item");
    figures.duplicated += redelivered + usize::try_from(downloads).unwrap_or(0).saturating_sub(files.len());
    if worst_excess > 0 {
        figures.notes.push(format!("FAIL: the queue held {worst_excess} more messages than pending items"));
        figures.duplicated += usize::try_from(worst_excess).unwrap_or(0);
    }
    figures.notes.push(format!(
        "backlog-lasted={:.0}s samples={samples} max(queued-pending)={worst_excess} downloads={downloads} \
         finished-redelivered={redelivered}",
        started.elapsed().as_secs_f64()
    ));
    broker.close().await;
    stack.teardown().await;
    Ok(figures)
}

/// 12. The private RabbitMQ node raises a memory alarm (publishers blocked) while jobs are created: the API keeps
///     answering 200 (jobs go to the outbox), publishing resumes when the alarm clears, nothing is lost.
async fn broker_alarm(infra: &Infra) -> anyhow::Result<Figures> {
    let extra = [("FERRY__IMPORTER__CONCURRENCY", "4"), ("FERRY__RELIABILITY__CONFIRM_TIMEOUT_SECS", "2")];
    let mut stack = stack("broker-alarm", infra, drive_emulator::Faults::default(), &extra).await?;
    let files = stack.seed_files(100, |n| 4096 + n * 10);
    stack.start_importer()?;
    // One job first, so the relay's connection has published and is subject to the block.
    let (first_id, first_images) = stack.start_import(&files[..10]).await?;
    stack.wait_job(&first_id, Duration::from_secs(60)).await?;
    infra.rabbit.memory_alarm(true)?;
    let alarm = Instant::now();
    let result = async {
        let mut jobs = vec![(first_id, first_images, files[..10].to_vec())];
        let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
        for chunk in files[10..].chunks(10) {
            let created = stack.start_import(chunk).await;
            *statuses.entry(if created.is_ok() { 200 } else { 0 }).or_default() += 1;
            let (job_id, image_ids) = created?;
            let polled = stack.api(reqwest::Method::GET, &format!("/cloud-storage/jobs/{job_id}")).send().await?;
            *statuses.entry(polled.status().as_u16()).or_default() += 1;
            jobs.push((job_id, image_ids, chunk.to_vec()));
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let (backlog, _) = stack.db.outbox_backlog().await?;
        Ok::<_, anyhow::Error>((jobs, statuses, backlog))
    }
    .await;
    tokio::time::sleep(Duration::from_secs(8).saturating_sub(alarm.elapsed())).await;
    infra.rabbit.memory_alarm(false)?;
    let cleared = Instant::now();
    let (jobs, statuses, backlog_during) = result?;
    let mut figures = Figures { files: files.len(), ..Figures::default() };
    check_imports(&stack, &jobs, &mut figures).await?;
    figures.recover_secs = cleared.elapsed().as_secs_f64();
    let non_200: usize = statuses.iter().filter(|(status, _)| **status != 200).map(|(_, n)| n).sum();
    if non_200 > 0 {
        figures.notes.push(format!("FAIL: {non_200} API answers were not 200"));
        figures.stuck += non_200;
    }
    figures.notes.push(format!("alarm=8s statuses={statuses:?} outbox-backlog-during-alarm={backlog_during}"));
    stack.teardown().await;
    Ok(figures)
}

/// 13. File rows deleted under queued items (as a damaged database would have it): those items fail with
///     `file_missing`, the others complete, and the job ends instead of retrying forever.
async fn missing_file(infra: &Infra) -> anyhow::Result<Figures> {
    let mut stack = stack("missing-file", infra, drive_emulator::Faults::default(), &[]).await?;
    let files = stack.seed_files(30, |n| 4096 + n);
    // No importer yet: every item is queued when the rows disappear.
    let (job_id, image_ids) = stack.start_import(&files).await?;
    let missing: Vec<&String> = image_ids.iter().step_by(5).collect();
    for image_id in &missing {
        let file_id = ferry_core::FileId::parse(image_id).map_err(|err| anyhow!("{err}"))?;
        ferry_db::testing::delete_file_row_unchecked(&stack.db, file_id).await?;
    }
    stack.start_importer()?;
    let started = Instant::now();
    let job = stack.wait_job(&job_id, Duration::from_secs(60)).await?;
    let mut figures =
        Figures { files: files.len(), recover_secs: started.elapsed().as_secs_f64(), ..Figures::default() };
    let items = stack
        .db
        .list_job_items(stack.tenant_id, ferry_core::JobId::parse(&job_id).map_err(|e| anyhow!("{e}"))?)
        .await?;
    let failed_missing = items.iter().filter(|item| item.error_code.as_deref() == Some("file_missing")).count();
    let succeeded = items.iter().filter(|item| item.status == ItemStatus::Succeeded).count();
    let unfinished = items.iter().filter(|item| !item.status.is_terminal()).count();
    figures.stuck += unfinished;
    figures.lost += (files.len() - missing.len()).saturating_sub(succeeded);
    if failed_missing != missing.len() {
        figures.notes.push(format!("FAIL: {failed_missing} items failed file_missing, expected {}", missing.len()));
        figures.stuck += missing.len().abs_diff(failed_missing);
    }
    figures.notes.push(format!(
        "rows-deleted={} failed-file_missing={failed_missing} succeeded={succeeded} job-status={}",
        missing.len(),
        job.status
    ));
    stack.teardown().await;
    Ok(figures)
}

/// A request to the gateway's routes outside `/api/v2` (libraries, documents).
fn at(stack: &Stack, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    stack.http.request(method, format!("{}{path}", stack.gateway_url)).bearer_auth(&stack.api_key)
}

async fn json_ok(request: reqwest::RequestBuilder) -> anyhow::Result<serde_json::Value> {
    let response = request.send().await?;
    let status = response.status();
    let body: serde_json::Value = response.json().await?;
    if !status.is_success() {
        bail!("{status}: {body}");
    }
    Ok(body)
}

/// Starts a sync run of `library` that answers at once, kills the importer `kills` times while it runs, and
/// returns the run's result once it ends.
async fn sync_with_kills(
    stack: &mut Stack,
    library: &str,
    progress: &str,
    kills: usize,
) -> anyhow::Result<serde_json::Value> {
    let started = at(stack, reqwest::Method::POST, &format!("/api/libraries/{library}/_sync"))
        .header("Prefer", "respond-async")
        .json(&serde_json::json!({ "progress": progress }));
    json_ok(started).await?;
    for _ in 0..kills {
        tokio::time::sleep(random_pause(200, 900)).await;
        if let Some(mut importer) = stack.importers.pop() {
            importer.kill9();
        }
        stack.start_importer()?;
    }
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let run = json_ok(at(stack, reqwest::Method::GET, &format!("/api/progress/{progress}"))).await?;
        if run["result"].is_object() {
            return Ok(run["result"].clone());
        }
        if Instant::now() > deadline {
            bail!("sync run {progress} did not end: {run}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The library's files (it is flat here): name → md5 of the downloaded bytes.
async fn library_files(stack: &Stack, root_item: &str) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let base = format!("/internal/services/documents/v1/companies/{}", stack.tenant_id.0);
    let listing = json_ok(at(stack, reqwest::Method::GET, &format!("{base}/item/{root_item}"))).await?;
    let mut files = std::collections::BTreeMap::new();
    for child in listing["children"].as_array().ok_or_else(|| anyhow!("no children in {listing}"))? {
        let id = child["id"].as_str().unwrap_or_default();
        let bytes =
            at(stack, reqwest::Method::GET, &format!("{base}/item/{id}/download")).send().await?.bytes().await?;
        let name = child["name"].as_str().unwrap_or_default().to_owned();
        if files.insert(name.clone(), hex::encode(md5::Md5::digest(&bytes))).is_some() {
            files.insert(format!("{name} (duplicate)"), String::new());
        }
    }
    Ok(files)
}

/// Compares the library with what Drive holds and the run's counts with what was done.
async fn check_sync(
    stack: &Stack,
    root_item: &str,
    expected: &std::collections::BTreeMap<String, String>,
    result: &serde_json::Value,
    counts: [i64; 4],
    figures: &mut Figures,
) -> anyhow::Result<()> {
    let actual = library_files(stack, root_item).await?;
    figures.lost += expected.iter().filter(|(name, md5)| actual.get(*name) != Some(*md5)).count();
    figures.duplicated += actual.keys().filter(|name| !expected.contains_key(*name)).count();
    let got = ["syncedFiles", "addedFiles", "updatedFiles", "deletedFiles"].map(|k| result[k].as_i64().unwrap_or(-1));
    if got != counts || result["errors"] != serde_json::json!([]) {
        figures.notes.push(format!("FAIL: counts {got:?} (expected {counts:?}), errors {}", result["errors"]));
        figures.stuck += 1;
    }
    Ok(())
}

/// 14. kill -9 the importer during a 300-file first sync of a library (its planning and its transfers),
///     then during an incremental run (100 edits, 50 new files): the counts are exact and the library equals the
///     folder.
async fn sync_kill(infra: &Infra) -> anyhow::Result<Figures> {
    let mut stack = stack("sync-kill", infra, latency(), &[("FERRY__IMPORTER__CONCURRENCY", "8")]).await?;
    let drive = stack.emulator.state().clone();
    let folder = drive.create_folder(&stack.email, None, "Synced");
    let mut expected = std::collections::BTreeMap::new();
    let mut ids = Vec::new();
    for n in 0..300 {
        let name = format!("sync-{n:04}.bin");
        let bytes = ferry_chaos::test_bytes(4096 + (n * 7919) % 200_000, n as u64 + 1);
        expected.insert(name.clone(), hex::encode(md5::Md5::digest(&bytes)));
        ids.push(drive.create_file(&stack.email, Some(&folder), &name, "application/octet-stream", bytes));
    }
    stack.start_importer()?;
    let library =
        json_ok(at(&stack, reqwest::Method::POST, "/api/libraries").json(&serde_json::json!({ "name": "Synced" })))
            .await?;
    let library_id = library["id"].as_str().ok_or_else(|| anyhow!("no id in {library}"))?.to_owned();
    let root_item = library["rootItemId"].as_str().ok_or_else(|| anyhow!("no rootItemId"))?.to_owned();
    let link = serde_json::json!({ "connectionId": stack.connection_id, "folderId": folder });
    json_ok(at(&stack, reqwest::Method::PUT, &format!("/api/libraries/{library_id}/connection")).json(&link)).await?;

    let first = sync_with_kills(&mut stack, &library_id, "first", 6).await?;
    let mut figures = Figures { files: 350, ..Figures::default() };
    check_sync(&stack, &root_item, &expected, &first, [300, 300, 0, 0], &mut figures).await?;

    for (n, id) in ids.iter().enumerate().take(100) {
        let bytes = ferry_chaos::test_bytes(5000 + n * 13, 10_000 + n as u64);
        expected.insert(format!("sync-{n:04}.bin"), hex::encode(md5::Md5::digest(&bytes)));
        drive.replace_file_content(id, bytes);
    }
    for n in 300..350 {
        let name = format!("sync-{n:04}.bin");
        let bytes = ferry_chaos::test_bytes(4096 + n, n as u64 + 1);
        expected.insert(name.clone(), hex::encode(md5::Md5::digest(&bytes)));
        drive.create_file(&stack.email, Some(&folder), &name, "application/octet-stream", bytes);
    }
    let last_fault = Instant::now();
    let second = sync_with_kills(&mut stack, &library_id, "second", 4).await?;
    figures.recover_secs = last_fault.elapsed().as_secs_f64();
    check_sync(&stack, &root_item, &expected, &second, [350, 50, 100, 0], &mut figures).await?;
    figures.notes.push("kills=6+4 first=300-added second=50-added+100-updated".into());
    stack.teardown().await;
    Ok(figures)
}

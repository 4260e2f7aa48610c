//! The figures. Each group gets its own stack (database, queue prefix, blob directory, emulator, gateway) and
//! starts the worker processes it needs, so one figure's leftovers never slow the next. Ferry's time for a job is
//! from just before `POST /import` (or `/export`) to the job's `completed_at` written by Postgres (same clock);
//! the reference runs against the same emulator, with the same files, in the same group.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, Utc};
use ferry_chaos::harness::{Proc, Stack};
use ferry_core::{JobId, JobStatus};
use serde_json::{Value, json};

use crate::Args;
use crate::report::{Row, Verdict, mib, mib_per_s};
use crate::tools::{self, Transfer};

const MIB: f64 = 1024.0 * 1024.0;

/// A file in the emulated Drive.
#[derive(Debug, Clone)]
pub struct DriveFile {
    pub id: String,
    pub name: String,
}

/// Import and export of `files` files of `size` bytes: Ferry's and the reference's wall times.
#[derive(Debug, Clone)]
pub struct TransferPoint {
    pub size: u64,
    pub files: usize,
    pub import_ferry: f64,
    pub import_reference: f64,
    pub export_ferry: f64,
    pub export_reference: f64,
}

impl TransferPoint {
    pub fn bytes(&self) -> f64 {
        self.size as f64 * self.files as f64
    }

    pub fn rate(&self, secs: f64) -> f64 {
        self.bytes() / MIB / secs
    }
}

/// What one group measured.
#[derive(Default)]
pub struct Measured {
    pub rows: Vec<Row>,
    pub points: Vec<TransferPoint>,
}

/// Everything a group needs besides its stack.
pub struct Ctx<'a> {
    pub args: &'a Args,
    /// Generated files and curl configs go here (removed with it).
    pub scratch: &'a Path,
    /// B1/B3's point, reused by the sweep for the same size.
    pub large_point: Option<TransferPoint>,
}

// ---------------------------------------------------------------------------------------------------------
// Ferry through its API

/// Starts `importers` importers and `exporters` exporters and waits until each one's ops `/readyz` is 200
/// (database and broker connected).
pub async fn start_workers(stack: &mut Stack, importers: usize, exporters: usize) -> anyhow::Result<()> {
    for _ in 0..importers {
        stack.start_importer()?;
    }
    for _ in 0..exporters {
        stack.start_exporter()?;
    }
    let http = stack.http.clone();
    for proc in stack.importers.iter_mut().chain(stack.exporters.iter_mut()) {
        wait_worker_ready(&http, proc, Duration::from_secs(60)).await?;
    }
    Ok(())
}

/// Stops (kill -9) every worker of the stack.
pub fn stop_workers(stack: &mut Stack) {
    for mut proc in stack.importers.drain(..).chain(stack.exporters.drain(..)) {
        proc.kill9();
    }
}

fn ops_address(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text.lines().find(|l| l.contains("worker started"))?;
    let rest = &line[line.find("\"ops\":\"")? + 7..];
    Some(rest[..rest.find('"')?].to_owned())
}

async fn wait_worker_ready(http: &reqwest::Client, proc: &mut Proc, limit: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if let Some(status) = proc.child.try_wait()? {
            bail!("{:?} exited ({status}) before it was ready (log {})", proc.service, proc.log.display());
        }
        if let Some(ops) = ops_address(&proc.log)
            && let Ok(response) = http.get(format!("http://{ops}/readyz")).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        if started.elapsed() > limit {
            bail!("{:?} not ready after {limit:?} (log {})", proc.service, proc.log.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn post_json(stack: &Stack, path: &str, body: Value) -> anyhow::Result<Value> {
    let response =
        stack.api(reqwest::Method::POST, path).json(&body).send().await.with_context(|| format!("POST {path}"))?;
    let status = response.status();
    let body: Value = response.json().await.with_context(|| format!("reading the answer to POST {path}"))?;
    if !status.is_success() {
        bail!("POST {path} answered {status}: {body}");
    }
    Ok(body)
}

/// Starts an import; returns (job id, image ids).
pub async fn post_import(
    stack: &Stack,
    connection: &str,
    files: &[DriveFile],
) -> anyhow::Result<(String, Vec<String>)> {
    let list: Vec<Value> = files.iter().map(|f| json!({ "id": f.id, "name": f.name })).collect();
    let body = post_json(stack, "/cloud-storage/import", json!({ "connection_id": connection, "files": list })).await?;
    let job = body["job_id"].as_str().ok_or_else(|| anyhow!("no job_id in {body}"))?.to_owned();
    let ids = body["image_ids"].as_array().ok_or_else(|| anyhow!("no image_ids in {body}"))?;
    Ok((job, ids.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()))
}

pub async fn post_export(
    stack: &Stack,
    connection: &str,
    image_ids: &[String],
    folder: &str,
) -> anyhow::Result<String> {
    let body = post_json(
        stack,
        "/cloud-storage/export",
        json!({ "connection_id": connection, "image_ids": image_ids, "folder_name": folder }),
    )
    .await?;
    Ok(body["job_id"].as_str().ok_or_else(|| anyhow!("no job_id in {body}"))?.to_owned())
}

/// Waits (polling Postgres every 10 ms, at most `limit`) until the job is terminal; it must have completed.
pub async fn finish(stack: &Stack, job_id: &str, limit: Duration) -> anyhow::Result<ferry_db::jobs::Job> {
    let job = finish_any(stack, job_id, limit).await?;
    if job.status != JobStatus::Completed {
        bail!(
            "job {job_id} ended {} ({} completed, {} failed; logs in {})",
            job.status,
            job.completed_files,
            job.failed_files,
            stack.log_dir.display()
        );
    }
    Ok(job)
}

/// Like [`finish`] but any terminal status will do.
pub async fn finish_any(stack: &Stack, job_id: &str, limit: Duration) -> anyhow::Result<ferry_db::jobs::Job> {
    let id = JobId::parse(job_id).map_err(|err| anyhow!("{err}"))?;
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Ok(Some(job)) = stack.db.get_job(stack.tenant_id, id).await
            && job.status.is_terminal()
        {
            return Ok(job);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // One last look, which also says what is stuck and where.
    stack.wait_job(job_id, Duration::ZERO).await
}

/// Seconds from `started` to the job's `completed_at`.
pub fn job_secs(started: DateTime<Utc>, job: &ferry_db::jobs::Job) -> anyhow::Result<f64> {
    let done = job.completed_at.ok_or_else(|| anyhow!("job {} has no completed_at", job.id))?;
    Ok((done - started).as_seconds_f64())
}

/// A generous bound for moving `bytes`: two minutes plus 10 MiB/s.
fn transfer_limit(bytes: f64) -> Duration {
    Duration::from_secs(120) + Duration::from_secs_f64(bytes / (10.0 * MIB))
}

/// Seeds `count` files of `size` bytes owned by `email` straight into the emulator (small files only: each is
/// generated in memory).
fn seed_small(
    stack: &Stack,
    email: &str,
    tag: &str,
    count: usize,
    size: u64,
    seed: u64,
) -> anyhow::Result<Vec<DriveFile>> {
    let drive = stack.emulator.state();
    (0..count)
        .map(|n| {
            let name = format!("{tag}-{n:05}.bin");
            let bytes = ferry_chaos::test_bytes(size as usize, seed * 1_000_000 + n as u64);
            let id = drive.create_file(email, None, &name, "application/octet-stream", bytes);
            if id.is_empty() {
                bail!("the emulator could not store {name}");
            }
            Ok(DriveFile { id, name })
        })
        .collect()
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

fn download_transfer(emulator: &str, token: &str, id: &str) -> Transfer {
    Transfer {
        url: format!("{emulator}/drive/v3/files/{id}?alt=media"),
        headers: vec![bearer(token)],
        output: PathBuf::from("/dev/null"),
        ..Transfer::default()
    }
}

// ---------------------------------------------------------------------------------------------------------
// Import and export against curl (B1, B3, the sweep)

/// Generates `count` files of `size` bytes, then measures, in this order: the export reference (curl: one POST
/// per file creating a resumable session, then one PUT of the whole file, `parallel` at once; these uploads
/// are also the Drive files imported next), the import reference (curl: `parallel` downloads at once to
/// /dev/null), Ferry's import of the same files, and Ferry's export of what it imported (checked by MD5).
pub async fn transfer_point(
    stack: &Stack,
    ctx: &Ctx<'_>,
    token: &str,
    size: u64,
    count: usize,
    tag: &str,
) -> anyhow::Result<TransferPoint> {
    let emulator = stack.emulator.base_url().to_owned();
    let dir = ctx.scratch.join(tag);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let names: Vec<String> = (0..count).map(|n| format!("{tag}-{n:03}.bin")).collect();
    let paths: Vec<PathBuf> = names.iter().map(|name| dir.join(name)).collect();
    {
        let paths = paths.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            for (n, path) in paths.iter().enumerate() {
                tools::generate_file(path, size, 7919 + n as u64)?;
            }
            Ok(())
        })
        .await
        .context("generating files")??;
    }
    let limit = transfer_limit(size as f64 * count as f64);
    let parallel = ctx.args.parallel;

    // Export reference, which also puts the files in Drive.
    let sessions: Vec<Transfer> = names
        .iter()
        .enumerate()
        .map(|(n, name)| Transfer {
            url: format!("{emulator}/upload/drive/v3/files?uploadType=resumable"),
            headers: vec![
                bearer(token),
                "Content-Type: application/json; charset=UTF-8".into(),
                format!("X-Upload-Content-Length: {size}"),
            ],
            output: PathBuf::from("/dev/null"),
            data: Some(json!({ "name": name }).to_string()),
            dump_header: Some(dir.join(format!("session-{n}.txt"))),
            ..Transfer::default()
        })
        .collect();
    let post = tools::curl_parallel(&sessions, parallel, &dir.join("sessions.cfg"), limit).await?;
    let mut puts = Vec::new();
    for (n, path) in paths.iter().enumerate() {
        let headers = std::fs::read_to_string(dir.join(format!("session-{n}.txt")))?;
        let location = headers
            .lines()
            .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("location")).map(|(_, v)| v.trim()))
            .ok_or_else(|| anyhow!("no Location in the session answer: {headers}"))?;
        puts.push(Transfer {
            url: location.to_owned(),
            output: dir.join(format!("put-{n}.json")),
            upload: Some(path.clone()),
            ..Transfer::default()
        });
    }
    let put = tools::curl_parallel(&puts, parallel, &dir.join("puts.cfg"), limit).await?;
    let export_reference = (post + put).as_secs_f64();
    let mut files = Vec::new();
    for (n, name) in names.iter().enumerate() {
        let answer: Value = serde_json::from_slice(&std::fs::read(dir.join(format!("put-{n}.json")))?)
            .context("reading the upload's answer")?;
        let id = answer["id"].as_str().ok_or_else(|| anyhow!("no id in {answer}"))?;
        files.push(DriveFile { id: id.to_owned(), name: name.clone() });
    }
    // The emulator keeps its own copy; the generated files are not needed any more.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;

    // Import reference.
    let downloads: Vec<Transfer> = files.iter().map(|f| download_transfer(&emulator, token, &f.id)).collect();
    let import_reference =
        tools::curl_parallel(&downloads, parallel, &dir.join("downloads.cfg"), limit).await?.as_secs_f64();

    // Ferry.
    let started = Utc::now();
    let (job, image_ids) = post_import(stack, &stack.connection_id, &files).await?;
    let import_ferry = job_secs(started, &finish(stack, &job, limit).await?)?;
    let folder = format!("export-{tag}");
    let started = Utc::now();
    let job = post_export(stack, &stack.connection_id, &image_ids, &folder).await?;
    let export_ferry = job_secs(started, &finish(stack, &job, limit).await?)?;
    verify_export(stack, &files, &folder)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(TransferPoint { size, files: count, import_ferry, import_reference, export_ferry, export_reference })
}

/// Every source file is in the export folder once, with the same MD5.
fn verify_export(stack: &Stack, sources: &[DriveFile], folder: &str) -> anyhow::Result<()> {
    let drive = stack.emulator.state();
    let root = drive.root_folder_id(&stack.email);
    let folders: Vec<_> = drive.children(&root).into_iter().filter(|f| f.name == folder).collect();
    let [folder_info] = folders.as_slice() else { bail!("{} export folders named {folder}", folders.len()) };
    let mut exported: Vec<Option<String>> = drive.children(&folder_info.id).into_iter().map(|f| f.md5).collect();
    let mut expected: Vec<Option<String>> =
        sources.iter().map(|f| drive.file_info(&f.id).and_then(|info| info.md5)).collect();
    exported.sort();
    expected.sort();
    if exported != expected {
        bail!("the exported files differ from the sources ({} exported, {} sources)", exported.len(), expected.len());
    }
    Ok(())
}

/// A small import that must complete: connections, tokens and the consumer are warm before anything is timed.
async fn warm_up(stack: &Stack, connection: &str, email: &str, tag: &str) -> anyhow::Result<()> {
    let files = seed_small(stack, email, tag, 2, 1024, 99)?;
    let (job, _) = post_import(stack, connection, &files).await?;
    finish(stack, &job, Duration::from_secs(60)).await?;
    Ok(())
}

/// B1 and B3.
pub async fn large(stack: &mut Stack, ctx: &mut Ctx<'_>) -> anyhow::Result<Measured> {
    let args = ctx.args;
    start_workers(stack, 1, 1).await?;
    let token = tools::emulator_token(&stack.http, stack.emulator.base_url(), &stack.email).await?;
    warm_up(stack, &stack.connection_id, &stack.email, "warm").await?;
    let point = transfer_point(stack, ctx, &token, args.large_size, args.large_files, "large").await?;
    let what = format!("{} × {}", point.files, mib(point.size));
    let import_ratio = point.import_reference / point.import_ferry;
    let export_ratio = point.export_reference / point.export_ferry;
    let rows = vec![
        Row::new(
            "B1",
            format!("import {what}"),
            mib_per_s(point.rate(point.import_ferry)),
            format!(
                "{} (curl, {} parallel, to /dev/null)",
                mib_per_s(point.rate(point.import_reference)),
                args.parallel
            ),
            import_ratio,
            "≥ 0.75",
            Verdict::at_least(import_ratio, 0.75),
        ),
        Row::new(
            "B3",
            format!("export {what}"),
            mib_per_s(point.rate(point.export_ferry)),
            format!(
                "{} (curl, session POST + one PUT per file, {} parallel)",
                mib_per_s(point.rate(point.export_reference)),
                args.parallel
            ),
            export_ratio,
            "≥ 0.9",
            Verdict::at_least(export_ratio, 0.9),
        ),
    ];
    // The sweep plots this point at its size; it is not a point of its own here, or it would be plotted twice.
    ctx.large_point = Some(point);
    stop_workers(stack);
    Ok(Measured { rows, points: Vec::new() })
}

/// The plot's points: one [`transfer_point`] per size (B1/B3's own point when it has the same size).
pub async fn sweep(stack: &mut Stack, ctx: &mut Ctx<'_>) -> anyhow::Result<Measured> {
    let args = ctx.args;
    start_workers(stack, 1, 1).await?;
    let token = tools::emulator_token(&stack.http, stack.emulator.base_url(), &stack.email).await?;
    warm_up(stack, &stack.connection_id, &stack.email, "warm").await?;
    let mut points = Vec::new();
    for &size in &args.sweep_sizes {
        if let Some(point) = ctx.large_point.as_ref().filter(|p| p.size == size) {
            println!("bench:   sweep {}: B1/B3's point", mib(size));
            points.push(point.clone());
            continue;
        }
        let files = usize::try_from(args.sweep_bytes / size.max(1))
            .unwrap_or(usize::MAX)
            .clamp(args.parallel.max(1), args.sweep_max_files.max(args.parallel));
        let point = transfer_point(stack, ctx, &token, size, files, &format!("sweep-{size}")).await?;
        println!(
            "bench:   sweep {} × {}: import {} vs {}, export {} vs {}",
            files,
            mib(size),
            mib_per_s(point.rate(point.import_ferry)),
            mib_per_s(point.rate(point.import_reference)),
            mib_per_s(point.rate(point.export_ferry)),
            mib_per_s(point.rate(point.export_reference)),
        );
        points.push(point);
    }
    stop_workers(stack);
    Ok(Measured { rows: Vec::new(), points })
}

// ---------------------------------------------------------------------------------------------------------
// B2: many small files from several users

/// Connects `users` Drive users (the stack's own first) and gives each an emulator token for the references.
async fn users(stack: &Stack, users: usize) -> anyhow::Result<Vec<(String, String, String)>> {
    let mut out = Vec::new();
    for n in 0..users.max(1) {
        let (email, connection) = if n == 0 {
            (stack.email.clone(), stack.connection_id.clone())
        } else {
            let email = format!("user{n}-{}", stack.email);
            let connection = stack.connect_user(&email).await?;
            (email, connection)
        };
        let token = tools::emulator_token(&stack.http, stack.emulator.base_url(), &email).await?;
        out.push((email, connection, token));
    }
    Ok(out)
}

/// Imports `files[i]` through `accounts[i]`'s connection, one job per account, all started at once; returns
/// the seconds until the last job completed.
async fn import_jobs(
    stack: &Stack,
    accounts: &[(String, String, String)],
    files: &[Vec<DriveFile>],
    limit: Duration,
) -> anyhow::Result<f64> {
    let started = Utc::now();
    let mut jobs = Vec::new();
    for ((_, connection, _), files) in accounts.iter().zip(files) {
        jobs.push(post_import(stack, connection, files).await?.0);
    }
    let mut longest: f64 = 0.0;
    for job in &jobs {
        longest = longest.max(job_secs(started, &finish(stack, job, limit).await?)?);
    }
    Ok(longest)
}

pub async fn many_small(stack: &mut Stack, ctx: &mut Ctx<'_>) -> anyhow::Result<Measured> {
    let args = ctx.args;
    let accounts = users(stack, args.small_users).await?;
    let per_user = args.small_files.div_ceil(accounts.len());
    let mut files = Vec::new();
    for (n, (email, _, _)) in accounts.iter().enumerate() {
        files.push(seed_small(stack, email, &format!("small-u{n}"), per_user, args.small_size, n as u64 + 1)?);
    }
    let total: usize = files.iter().map(Vec::len).sum();
    let emulator = stack.emulator.base_url().to_owned();
    let downloads: Vec<Transfer> = accounts
        .iter()
        .zip(&files)
        .flat_map(|((_, _, token), files)| files.iter().map(|f| download_transfer(&emulator, token, &f.id)))
        .collect();
    let reference =
        tools::curl_parallel(&downloads, args.parallel, &ctx.scratch.join("small.cfg"), Duration::from_secs(300))
            .await?
            .as_secs_f64();
    start_workers(stack, 1, 0).await?;
    for (n, (email, connection, _)) in accounts.iter().enumerate() {
        warm_up(stack, connection, email, &format!("warm-u{n}")).await?;
    }
    let ferry = import_jobs(stack, &accounts, &files, Duration::from_secs(400)).await?;
    stop_workers(stack);
    let ratio = reference / ferry;
    let rate = |secs: f64| format!("{:.0} files/s", total as f64 / secs);
    Ok(Measured {
        rows: vec![Row::new(
            "B2",
            format!("import {total} × {} from {} users", mib(args.small_size), accounts.len()),
            rate(ferry),
            format!("{} (curl, {} parallel keep-alive)", rate(reference), args.parallel),
            ratio,
            "≥ 0.5",
            Verdict::at_least(ratio, 0.5),
        )],
        points: Vec::new(),
    })
}

// ---------------------------------------------------------------------------------------------------------
// B4: peak RSS

pub async fn rss(stack: &mut Stack, ctx: &mut Ctx<'_>) -> anyhow::Result<Measured> {
    let args = ctx.args;
    start_workers(stack, 1, 1).await?;
    let token = tools::emulator_token(&stack.http, stack.emulator.base_url(), &stack.email).await?;
    let point = transfer_point(stack, ctx, &token, args.rss_size, args.rss_files, "rss").await?;
    let importer = tools::peak_rss(stack.importers[0].pid())?;
    let exporter = tools::peak_rss(stack.exporters[0].pid())?;
    stop_workers(stack);
    let worst = importer.max(exporter) as f64 / MIB;
    Ok(Measured {
        rows: vec![Row {
            id: "B4".into(),
            figure: format!("peak RSS moving {} × {} at concurrency 4", point.files, mib(point.size)),
            ferry: format!("importer {:.0} MiB / exporter {:.0} MiB", importer as f64 / MIB, exporter as f64 / MIB),
            reference: format!(
                "— (import {}, export {})",
                mib_per_s(point.rate(point.import_ferry)),
                mib_per_s(point.rate(point.export_ferry))
            ),
            ratio: "—".into(),
            target: "≤ 64 MiB".into(),
            verdict: Verdict::at_most(worst, 64.0),
        }],
        points: Vec::new(),
    })
}

// ---------------------------------------------------------------------------------------------------------
// B5: one-file import latency

pub async fn latency(stack: &mut Stack, ctx: &mut Ctx<'_>) -> anyhow::Result<Measured> {
    let args = ctx.args;
    let file = seed_small(stack, &stack.email, "latency", 1, args.latency_size, 5)?;
    let token = tools::emulator_token(&stack.http, stack.emulator.base_url(), &stack.email).await?;
    // The download: curl fetching the same file, a new process and connection each time; the median of 21.
    let url = format!("{}/drive/v3/files/{}?alt=media", stack.emulator.base_url(), file[0].id);
    let mut downloads = Vec::new();
    for _ in 0..21 {
        let mut curl = tokio::process::Command::new("curl");
        curl.args(["--silent", "--show-error", "--fail", "--output", "/dev/null", "--write-out", "%{time_total}"])
            .args(["--header", &bearer(&token)])
            .arg(&url);
        let (_, output) = tools::run_bounded(&mut curl, Duration::from_secs(10), "curl").await?;
        let secs: f64 = String::from_utf8_lossy(&output.stdout).trim().parse().context("curl's time_total")?;
        downloads.push(secs * 1000.0);
    }
    let download_ms = tools::percentile(&downloads, 50.0);
    start_workers(stack, 1, 0).await?;
    warm_up(stack, &stack.connection_id, &stack.email, "warm").await?;
    let mut overheads = Vec::new();
    for _ in 0..args.latency_runs.max(1) {
        let started = Utc::now();
        let (job, _) = post_import(stack, &stack.connection_id, &file).await?;
        let secs = job_secs(started, &finish(stack, &job, Duration::from_secs(30)).await?)?;
        overheads.push(secs * 1000.0 - download_ms);
        // Spaced so that the Drive pacer never delays a run: this is the per-item path alone.
        tokio::time::sleep(Duration::from_millis(args.latency_gap_ms)).await;
    }
    stop_workers(stack);
    let (p50, p99) = (tools::percentile(&overheads, 50.0), tools::percentile(&overheads, 99.0));
    let pass = p50 <= 10.0 && p99 <= 25.0;
    Ok(Measured {
        rows: vec![Row {
            id: "B5".into(),
            figure: format!(
                "one-file import ({}), POST → completed minus the download, {} runs",
                mib(args.latency_size),
                overheads.len()
            ),
            ferry: format!("p50 {p50:.1} ms / p99 {p99:.1} ms"),
            reference: format!("download {download_ms:.2} ms (curl, median of 21)"),
            ratio: "—".into(),
            target: "≤ 10 ms / ≤ 25 ms".into(),
            verdict: if pass { Verdict::Pass } else { Verdict::Miss },
        }],
        points: Vec::new(),
    })
}

// ---------------------------------------------------------------------------------------------------------
// B6: job status

pub async fn status(stack: &mut Stack, ctx: &mut Ctx<'_>, pgbench_db: &str) -> anyhow::Result<Measured> {
    let args = ctx.args;
    start_workers(stack, 1, 0).await?;
    let files = seed_small(stack, &stack.email, "status", 4, 64 * 1024, 6)?;
    let (job, _) = post_import(stack, &stack.connection_id, &files).await?;
    finish(stack, &job, Duration::from_secs(60)).await?;
    // Only the gateway (and Postgres) should be using the CPU now.
    stop_workers(stack);
    let url = format!("{}/api/v2/cloud-storage/jobs/{job}", stack.gateway_url);
    let wrk = tools::wrk(&url, &stack.api_key, args.status_connections, args.status_secs).await?;
    if wrk.non_2xx > 0 {
        bail!("{} of wrk's answers were not 2xx", wrk.non_2xx);
    }
    ferry_db::create_database_if_missing(pgbench_db).await.context("creating the pgbench database")?;
    let tps =
        tools::pgbench_select_only(pgbench_db, args.pgbench_scale, args.status_connections, args.status_secs).await;
    let _ = ferry_db::drop_database(pgbench_db).await;
    let tps = tps?;
    let ratio = wrk.requests_per_sec / tps;
    let errors = wrk.socket_errors.map(|e| format!(", socket errors: {e}")).unwrap_or_default();
    Ok(Measured {
        rows: vec![Row::new(
            "B6",
            format!("GET job status, {} connections, {} s", args.status_connections, args.status_secs),
            format!(
                "{:.0} req/s (wrk; p50 {}, p99 {}{errors})",
                wrk.requests_per_sec, wrk.latency_p50, wrk.latency_p99
            ),
            format!("{tps:.0} tps (pgbench -S, {} clients, scale {})", args.status_connections, args.pgbench_scale),
            ratio,
            "≥ 0.5",
            Verdict::at_least(ratio, 0.5),
        )],
        points: Vec::new(),
    })
}

// ---------------------------------------------------------------------------------------------------------
// B7: two importers against one, under Drive latency

pub async fn scaling(stack: &mut Stack, ctx: &mut Ctx<'_>) -> anyhow::Result<Measured> {
    let args = ctx.args;
    let accounts = users(stack, args.scaling_users).await?;
    let per_user = args.scaling_files.div_ceil(accounts.len());
    let mut files = Vec::new();
    for (n, (email, _, _)) in accounts.iter().enumerate() {
        files.push(seed_small(stack, email, &format!("scale-u{n}"), per_user, args.scaling_size, 70 + n as u64)?);
    }
    let total: usize = files.iter().map(Vec::len).sum();
    stack
        .emulator
        .state()
        .update_faults(|faults| faults.latency_ms = args.scaling_latency_ms)
        .map_err(|err| anyhow!("setting the emulator's latency: {err}"))?;
    let mut secs = Vec::new();
    for importers in [1, 2] {
        start_workers(stack, importers, 0).await?;
        for (n, (email, connection, _)) in accounts.iter().enumerate() {
            warm_up(stack, connection, email, &format!("warm{importers}-u{n}")).await?;
        }
        secs.push(import_jobs(stack, &accounts, &files, Duration::from_secs(300)).await?);
        stop_workers(stack);
    }
    let ratio = secs[0] / secs[1];
    let rate = |secs: f64| format!("{:.1} files/s", total as f64 / secs);
    Ok(Measured {
        rows: vec![Row::new(
            "B7",
            format!(
                "import {total} × {} from {} users, {} ms Drive latency: 2 importers ÷ 1",
                mib(args.scaling_size),
                accounts.len(),
                args.scaling_latency_ms
            ),
            format!("{} with 2", rate(secs[1])),
            format!("{} with 1", rate(secs[0])),
            ratio,
            "≥ 1.8",
            Verdict::at_least(ratio, 1.8),
        )],
        points: Vec::new(),
    })
}

// ---------------------------------------------------------------------------------------------------------
// B8: one user under an emulated per-user quota

pub async fn quota(stack: &mut Stack, ctx: &mut Ctx<'_>) -> anyhow::Result<Measured> {
    let args = ctx.args;
    let email = stack.email.clone();
    let to_import = seed_small(stack, &email, "quota-in", args.quota_import_files, args.quota_size, 80)?;
    let to_export = seed_small(stack, &email, "quota-out", args.quota_export_files, args.quota_size, 81)?;
    // The export's files are imported first, without a quota, and not measured.
    start_workers(stack, 1, 0).await?;
    let (job, image_ids) = post_import(stack, &stack.connection_id, &to_export).await?;
    finish(stack, &job, Duration::from_secs(300)).await?;
    stack.start_importer()?;
    stack.start_exporter()?;
    let http = stack.http.clone();
    for proc in stack.importers.iter_mut().chain(stack.exporters.iter_mut()) {
        wait_worker_ready(&http, proc, Duration::from_secs(60)).await?;
    }
    let drive = stack.emulator.state();
    drive
        .update_faults(|faults| faults.user_requests_per_second = Some(args.quota_rps))
        .map_err(|err| anyhow!("setting the emulator's quota: {err}"))?;
    drive.reset_counters();
    let started = Utc::now();
    let clock = Instant::now();
    let (import_job, _) = post_import(stack, &stack.connection_id, &to_import).await?;
    let export_job = post_export(stack, &stack.connection_id, &image_ids, "quota-export").await?;
    let limit = Duration::from_secs(400);
    let imported = finish_any(stack, &import_job, limit).await?;
    let exported = finish_any(stack, &export_job, limit).await?;
    let counters = drive.counters();
    let wall = clock.elapsed().as_secs_f64().max(job_secs(started, &imported)?.max(job_secs(started, &exported)?));
    stop_workers(stack);
    let user = counters.users.get(&email).cloned().unwrap_or_default();
    let failed = imported.failed_files + exported.failed_files;
    let accepted = user.requests.saturating_sub(user.injected_errors);
    let rate = accepted as f64 / wall;
    let ratio = rate / f64::from(args.quota_rps);
    let refused = if user.requests == 0 { 0.0 } else { user.injected_errors as f64 / user.requests as f64 };
    let pass = (0.9..=1.0).contains(&ratio) && failed == 0 && refused < 0.02;
    Ok(Measured {
        rows: vec![Row {
            id: "B8".into(),
            figure: format!(
                "one user, quota {} req/s, 2 importers + 1 exporter: import {} + export {} × {}",
                args.quota_rps,
                to_import.len(),
                image_ids.len(),
                mib(args.quota_size)
            ),
            ferry: format!(
                "{rate:.1} req/s accepted over {wall:.1} s; {failed} failed; {:.1}% refused ({} of {})",
                refused * 100.0,
                user.injected_errors,
                user.requests
            ),
            reference: format!("quota {} req/s", args.quota_rps),
            ratio: format!("{ratio:.2}"),
            target: "0.9–1.0; 0; < 2%".into(),
            verdict: if pass { Verdict::Pass } else { Verdict::Miss },
        }],
        points: Vec::new(),
    })
}

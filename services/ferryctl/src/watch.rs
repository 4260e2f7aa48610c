//! `ferryctl jobs list` and `ferryctl jobs watch`: a job's progress for people. On a terminal, live bars
//! for files and bytes with each failed file printed above them as it happens; otherwise one plain line
//! per change, so logs and pipes read well.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::Context;
use ferry_core::{JobId, JobStatus};
use ferry_db::Db;
use ferry_db::operator::{FailedItem, JobProgress};

/// Exit codes of `jobs watch` (0 is a completed job).
pub const EXIT_PARTIAL: i32 = 2;
pub const EXIT_FAILED: i32 = 3;
pub const EXIT_CANCELLED: i32 = 4;
pub const EXIT_TIMEOUT: i32 = 5;

pub async fn list(db: &Db, statuses: &[String], limit: i64) -> anyhow::Result<()> {
    let stored: Vec<JobStatus> = statuses
        .iter()
        .map(|s| {
            JobStatus::from_api_name(s.trim()).map_err(|_| {
                anyhow::anyhow!(
                    "unknown status {s:?}; use pending, in_progress, completed, partial, failed or cancelled"
                )
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let jobs = db.list_recent_jobs(&stored, limit).await.context("listing jobs")?;
    println!(
        "{:<36}  {:<16}  {:<6}  {:<11}  {:>13}  {:>6}  CREATED",
        "JOB", "TENANT", "TYPE", "STATUS", "FILES", "FAILED"
    );
    for overview in &jobs {
        let job = &overview.job;
        let status = job.status.api_name();
        println!(
            "{:<36}  {:<16}  {:<6}  {:<11}  {:>13}  {:>6}  {}",
            job.job_id(),
            truncate(&overview.tenant_name, 16),
            job.kind,
            status,
            format!("{}/{}", job.completed_files + job.failed_files + job.cancelled_files, job.total_files),
            job.failed_files,
            job.created_at.format("%Y-%m-%d %H:%M:%SZ"),
        );
    }
    eprintln!("{} job(s)", jobs.len());
    Ok(())
}

/// Follows the job until it finishes (or `timeout`), returning the process exit code.
pub async fn watch(db: &Db, job_id: JobId, interval: Duration, timeout: Duration) -> anyhow::Result<i32> {
    let tty = std::io::stdout().is_terminal();
    let mut out = std::io::stdout().lock();
    let deadline = Instant::now() + timeout;
    let mut reported: BTreeSet<uuid::Uuid> = BTreeSet::new();
    let mut last_line = String::new();
    let mut bars_drawn = 0;
    loop {
        let progress = db.job_progress(job_id).await.context("reading the job")?;
        let Some(progress) = progress else { anyhow::bail!("no job {job_id}") };
        let status = progress.job.status;
        let failures = db.failed_job_items(job_id).await.context("reading the job's failed files")?;
        let new_failures: Vec<&FailedItem> = failures.iter().filter(|f| !reported.contains(&f.item_id)).collect();

        if tty {
            // Clear the bars, print new failures where they were, then draw the bars again below.
            if bars_drawn > 0 {
                write!(out, "\x1b[{bars_drawn}A\x1b[J")?;
            }
            for failure in &new_failures {
                writeln!(out, "\x1b[31mfailed\x1b[0m {}", describe_failure(failure))?;
            }
            let bars = bars(&progress, status);
            for line in &bars {
                writeln!(out, "{line}")?;
            }
            bars_drawn = bars.len();
        } else {
            for failure in &new_failures {
                writeln!(out, "failed {}", describe_failure(failure))?;
            }
            let line = plain_line(&progress, status);
            if line != last_line {
                writeln!(out, "{line}")?;
                last_line = line;
            }
        }
        out.flush()?;
        reported.extend(new_failures.iter().map(|f| f.item_id));

        if status.is_terminal() {
            return Ok(match status {
                JobStatus::Completed => 0,
                JobStatus::CompletedWithErrors => EXIT_PARTIAL,
                JobStatus::Cancelled => EXIT_CANCELLED,
                _ => EXIT_FAILED,
            });
        }
        if Instant::now() >= deadline {
            writeln!(out, "still {} after {}s; stopped watching", status.api_name(), timeout.as_secs())?;
            return Ok(EXIT_TIMEOUT);
        }
        tokio::time::sleep(interval).await;
    }
}

fn describe_failure(failure: &FailedItem) -> String {
    format!(
        "#{} {} ({}): {}",
        failure.position + 1,
        failure.name,
        failure.error_code.as_deref().unwrap_or("error"),
        failure.error_message.as_deref().unwrap_or("no message")
    )
}

fn plain_line(progress: &JobProgress, status: JobStatus) -> String {
    let job = &progress.job;
    let finished = job.completed_files + job.failed_files + job.cancelled_files;
    let bytes = match progress.bytes_total {
        Some(total) => format!("{} of {}", human_bytes(progress.bytes_done), human_bytes(total)),
        None => human_bytes(progress.bytes_done),
    };
    format!(
        "{} {} {}: files {finished}/{} (completed {}, failed {}, cancelled {}), bytes {bytes}",
        job.job_id(),
        job.kind,
        status.api_name(),
        job.total_files,
        job.completed_files,
        job.failed_files,
        job.cancelled_files,
    )
}

fn bars(progress: &JobProgress, status: JobStatus) -> Vec<String> {
    let job = &progress.job;
    let finished = job.completed_files + job.failed_files + job.cancelled_files;
    let files = format!(
        "files [{}] {finished}/{}  ({} failed, {} cancelled)",
        bar(f64::from(finished), f64::from(job.total_files.max(1))),
        job.total_files,
        job.failed_files,
        job.cancelled_files
    );
    let bytes = match progress.bytes_total {
        Some(total) => format!(
            "bytes [{}] {} / {}",
            bar(progress.bytes_done as f64, total.max(1) as f64),
            human_bytes(progress.bytes_done),
            human_bytes(total)
        ),
        None => format!("bytes {} transferred", human_bytes(progress.bytes_done)),
    };
    vec![format!("{} {} {}", job.job_id(), job.kind, status.api_name()), files, bytes]
}

fn bar(done: f64, total: f64) -> String {
    const WIDTH: usize = 30;
    let filled = ((done / total).clamp(0.0, 1.0) * WIDTH as f64).round() as usize;
    format!("{}{}", "#".repeat(filled), "-".repeat(WIDTH - filled))
}

fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width { text.to_owned() } else { text.chars().take(width - 1).chain(['…']).collect() }
}

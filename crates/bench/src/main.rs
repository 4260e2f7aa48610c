//! `ferry-bench [FIGURE…]`: Ferry's performance against the same work done without Ferry (curl, wrk, pgbench),
//! each pair measured side by side in one run on this machine. It runs the release binaries of the gateway,
//! importer and exporter (from the directory it lives in) against the machine's Postgres and RabbitMQ, with a
//! fresh database and queue prefix per group of figures and the Drive emulator inside this process, prints a
//! table of figures with their targets, and, after a full run, writes `docs/benchmarks.md` and the plot
//! `docs/benchmarks.svg`. `make bench` builds everything and runs it; `make bench ARGS="B1 B3"` runs some.

mod figures;
mod report;
mod svg;
mod tools;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Parser;
use ferry_chaos::harness::{Purpose, Stack};

use crate::figures::{Ctx, Measured};
use crate::report::{Report, Row};

/// Parses `64K`, `1M`, `256M`, `4G` or a plain number of bytes.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let n: u64 = digits.parse().map_err(|_| format!("not a size: {text:?} (e.g. 64K, 256M, 4G)"))?;
    let factor: u64 = match unit.trim().to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return Err(format!("unknown unit in {text:?} (K, M or G)")),
    };
    n.checked_mul(factor).filter(|n| *n > 0).ok_or_else(|| format!("size out of range: {text:?}"))
}

/// Ferry's benchmark: each figure beside its reference, measured in the same run.
#[derive(Debug, Clone, Parser)]
#[command(name = "ferry-bench")]
pub struct Args {
    /// Figures to run: B1 … B8 and `sweep` (the plot's points); all of them when none is given.
    pub figures: Vec<String>,
    /// The Postgres server (no database in the path: each group makes its own and drops it).
    #[arg(long, env = "FERRY_BENCH_DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432")]
    pub database_url: String,
    #[arg(long, env = "FERRY_BENCH_AMQP_URL", default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub amqp_url: String,
    /// Transfers at once in the curl references (B1, B2, B3, the sweep).
    #[arg(long, default_value_t = 8)]
    pub parallel: usize,
    /// B1/B3: how many large files.
    #[arg(long, default_value_t = 8)]
    pub large_files: usize,
    /// B1/B3: the size of each.
    #[arg(long, default_value = "256M", value_parser = parse_size)]
    pub large_size: u64,
    /// B2: how many small files in all.
    #[arg(long, default_value_t = 2000)]
    pub small_files: usize,
    #[arg(long, default_value = "64K", value_parser = parse_size)]
    pub small_size: u64,
    /// B2: Drive users the small files are spread over.
    #[arg(long, default_value_t = 8)]
    pub small_users: usize,
    /// B4: files moved at once (the workers' default concurrency is 4).
    #[arg(long, default_value_t = 4)]
    pub rss_files: usize,
    #[arg(long, default_value = "1G", value_parser = parse_size)]
    pub rss_size: u64,
    /// B5: how many one-file imports.
    #[arg(long, default_value_t = 100)]
    pub latency_runs: usize,
    #[arg(long, default_value = "4K", value_parser = parse_size)]
    pub latency_size: u64,
    /// B5: pause between runs.
    #[arg(long, default_value_t = 150)]
    pub latency_gap_ms: u64,
    /// B6: wrk connections and pgbench clients.
    #[arg(long, default_value_t = 32)]
    pub status_connections: u32,
    /// B6: seconds of each of wrk and pgbench.
    #[arg(long, default_value_t = 10)]
    pub status_secs: u64,
    #[arg(long, default_value_t = 10)]
    pub pgbench_scale: u32,
    /// B7: files in all, spread over --scaling-users.
    #[arg(long, default_value_t = 160)]
    pub scaling_files: usize,
    #[arg(long, default_value = "64K", value_parser = parse_size)]
    pub scaling_size: u64,
    #[arg(long, default_value_t = 8)]
    pub scaling_users: usize,
    /// B7: emulated Drive latency on every request.
    #[arg(long, default_value_t = 100)]
    pub scaling_latency_ms: u64,
    /// B8: the emulated per-user quota.
    #[arg(long, default_value_t = 40)]
    pub quota_rps: u32,
    #[arg(long, default_value_t = 300)]
    pub quota_import_files: usize,
    #[arg(long, default_value_t = 100)]
    pub quota_export_files: usize,
    #[arg(long, default_value = "64K", value_parser = parse_size)]
    pub quota_size: u64,
    /// The plot's file sizes.
    #[arg(long, default_value = "64K,1M,16M,256M", value_delimiter = ',', value_parser = parse_size)]
    pub sweep_sizes: Vec<u64>,
    /// The plot: bytes moved per size (files = this ÷ size, within --parallel … --sweep-max-files).
    #[arg(long, default_value = "256M", value_parser = parse_size)]
    pub sweep_bytes: u64,
    #[arg(long, default_value_t = 32)]
    pub sweep_max_files: usize,
    /// Where a full run writes benchmarks.md and benchmarks.svg.
    #[arg(long, default_value = "docs")]
    pub docs_dir: PathBuf,
    /// Where a partial run writes them instead (so the committed figures stay those of a full run).
    #[arg(long, default_value = "target/bench")]
    pub report_dir: PathBuf,
    /// Where generated files go while they are needed (a temporary directory inside it).
    #[arg(long)]
    pub scratch_dir: Option<PathBuf>,
    /// A group of figures that takes longer than this is abandoned (and reported as an error).
    #[arg(long, default_value_t = 420)]
    pub group_timeout_secs: u64,
}

const FIGURES: [&str; 9] = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "sweep"];

/// Groups of figures measured together on one stack, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    Large,
    Sweep,
    Rss,
    ManySmall,
    Latency,
    Status,
    Scaling,
    Quota,
}

impl Group {
    const ALL: [Group; 8] = [
        Group::Large,
        Group::Sweep,
        Group::Rss,
        Group::ManySmall,
        Group::Latency,
        Group::Status,
        Group::Scaling,
        Group::Quota,
    ];

    fn figures(self) -> &'static [&'static str] {
        match self {
            Group::Large => &["B1", "B3"],
            Group::Sweep => &["sweep"],
            Group::Rss => &["B4"],
            Group::ManySmall => &["B2"],
            Group::Latency => &["B5"],
            Group::Status => &["B6"],
            Group::Scaling => &["B7"],
            Group::Quota => &["B8"],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Group::Large => "large",
            Group::Sweep => "sweep",
            Group::Rss => "rss",
            Group::ManySmall => "many-small",
            Group::Latency => "latency",
            Group::Status => "status",
            Group::Scaling => "scaling",
            Group::Quota => "quota",
        }
    }
}

fn chosen(args: &Args) -> anyhow::Result<Vec<String>> {
    if args.figures.is_empty() || args.figures.iter().any(|f| f.eq_ignore_ascii_case("all")) {
        return Ok(FIGURES.iter().map(|f| (*f).to_owned()).collect());
    }
    let mut out = Vec::new();
    for name in &args.figures {
        let figure = FIGURES
            .iter()
            .find(|f| f.eq_ignore_ascii_case(name))
            .ok_or_else(|| anyhow!("unknown figure {name:?}; choose from {FIGURES:?} or all"))?;
        out.push((*figure).to_owned());
    }
    Ok(out)
}

fn check_tools(groups: &[Group]) -> anyhow::Result<()> {
    let mut missing = Vec::new();
    if tools::which("curl").is_none() {
        missing.push("curl");
    }
    if groups.contains(&Group::Status) {
        if tools::which("wrk").is_none() {
            missing.push("wrk");
        }
        if tools::pgbench_binary().is_err() {
            missing.push("pgbench");
        }
    }
    if !missing.is_empty() {
        bail!("missing {} (scripts/bench/run.sh installs them)", missing.join(", "));
    }
    Ok(())
}

async fn run_group(group: Group, stack: &mut Stack, ctx: &mut Ctx<'_>, pgbench_db: &str) -> anyhow::Result<Measured> {
    match group {
        Group::Large => figures::large(stack, ctx).await,
        Group::Sweep => figures::sweep(stack, ctx).await,
        Group::Rss => figures::rss(stack, ctx).await,
        Group::ManySmall => figures::many_small(stack, ctx).await,
        Group::Latency => figures::latency(stack, ctx).await,
        Group::Status => figures::status(stack, ctx, pgbench_db).await,
        Group::Scaling => figures::scaling(stack, ctx).await,
        Group::Quota => figures::quota(stack, ctx).await,
    }
}

/// Resolves when SIGINT or SIGTERM arrives.
async fn interrupted() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for SIGINT"),
        _ = terminate.recv() => Ok(()),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // Errors only: the emulator in this process would otherwise log every request it serves.
    let _telemetry = ferry_telemetry::init("bench", "pretty", "error");
    let args = Args::parse();
    match run(&args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("bench: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the chosen figures; Ok(false) when some group could not be measured.
async fn run(args: &Args) -> anyhow::Result<bool> {
    let figures = chosen(args)?;
    let groups: Vec<Group> =
        Group::ALL.into_iter().filter(|g| g.figures().iter().any(|f| figures.iter().any(|c| c == f))).collect();
    check_tools(&groups)?;
    let scratch = match &args.scratch_dir {
        Some(dir) => tempfile::Builder::new().prefix("ferry-bench-").tempdir_in(dir),
        None => tempfile::Builder::new().prefix("ferry-bench-").tempdir(),
    }
    .context("creating the scratch directory")?;
    let started = Instant::now();
    let machine = report::Machine::read();
    println!("bench: load average {} at the start", machine.load_at_start);
    let mut ctx = Ctx { args, scratch: scratch.path(), large_point: None };
    let mut rows: Vec<Row> = Vec::new();
    let mut points = Vec::new();
    let mut errors = Vec::new();
    let pgbench_db = format!("{}/ferry_bench_pgbench_{}", args.database_url, uuid::Uuid::new_v4().simple());
    let mut stop = std::pin::pin!(interrupted());
    for group in groups {
        let group_started = Instant::now();
        println!("bench: {} ({}) ...", group.name(), group.figures().join(", "));
        let outcome = tokio::select! {
            outcome = measure(group, args, &mut ctx, &pgbench_db) => outcome,
            signal = &mut stop => {
                // The group's future is dropped here: its processes die with it (kill on drop), and the stack's
                // database and queues were removed by `measure`'s guard or are removed below.
                let _ = ferry_db::drop_database(&pgbench_db).await;
                signal?;
                bail!("interrupted");
            }
        };
        match outcome {
            Ok(measured) => {
                for row in &measured.rows {
                    println!(
                        "bench:   {} {}: {} vs {} → {} ({})",
                        row.id,
                        row.figure,
                        row.ferry,
                        row.reference,
                        row.ratio,
                        row.verdict.word()
                    );
                }
                rows.extend(measured.rows);
                points.extend(measured.points);
            }
            Err(err) => {
                let message = format!("{}: {err:#}", group.name());
                eprintln!("bench:   ERROR {message}");
                for figure in group.figures().iter().filter(|f| f.starts_with('B')) {
                    rows.push(Row::error(figure, "error, see below"));
                }
                errors.push(message);
            }
        }
        println!("bench:   {} took {:.0} s", group.name(), group_started.elapsed().as_secs_f64());
    }
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    let total_secs = started.elapsed().as_secs_f64();
    println!("\nbench: results ({total_secs:.0} s)\n");
    print!("{}", report::plain_table(&rows));
    for error in &errors {
        println!("\nerror: {error}");
    }

    let full = figures.len() == FIGURES.len();
    let dir = if full && errors.is_empty() { &args.docs_dir } else { &args.report_dir };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let svg_name = (!points.is_empty()).then(|| "benchmarks.svg".to_owned());
    if let Some(name) = &svg_name {
        let subtitle =
            format!("{} × {} cores, {}; release build; {}", machine.cpu, machine.cores, machine.kernel, date);
        let path = dir.join(name);
        std::fs::write(&path, svg::plot(&points, &subtitle)).with_context(|| format!("writing {}", path.display()))?;
    }
    let report = Report {
        args,
        rows: &rows,
        points: &points,
        errors: &errors,
        machine,
        date,
        commit: report::git_commit(),
        total_secs,
        svg_name,
    };
    let path = dir.join("benchmarks.md");
    report.write(&path)?;
    println!("\nbench: wrote {}{}", path.display(), if full { "" } else { " (a partial run never overwrites docs/)" });
    Ok(errors.is_empty())
}

/// Measures one group on a fresh stack, bounded by `--group-timeout-secs`, and always removes the stack (its
/// processes, database and queues) afterwards, whether the group succeeded, failed or timed out.
async fn measure(group: Group, args: &Args, ctx: &mut Ctx<'_>, pgbench_db: &str) -> anyhow::Result<Measured> {
    let stack = tokio::time::timeout(
        Duration::from_secs(90),
        Stack::start_for(Purpose::Bench, group.name(), &args.database_url, &args.amqp_url, Default::default(), &[]),
    )
    .await
    .map_err(|_| anyhow!("the stack did not start within 90 s"))?
    .context("starting the stack")?;
    let mut guard = StackGuard(Some(stack));
    let limit = Duration::from_secs(args.group_timeout_secs);
    let outcome = match guard.0.as_mut() {
        Some(stack) => tokio::time::timeout(limit, run_group(group, stack, ctx, pgbench_db))
            .await
            .unwrap_or_else(|_| Err(anyhow!("not finished within {limit:?}"))),
        None => Err(anyhow!("no stack")),
    };
    if let Some(stack) = guard.0.take() {
        let log_dir = stack.log_dir.clone();
        tokio::time::timeout(Duration::from_secs(60), stack.teardown()).await.ok();
        if outcome.is_err() {
            eprintln!("bench:   service logs of {} are in {}", group.name(), log_dir.display());
        }
    }
    outcome
}

/// Removes a stack that a dropped (interrupted) group left behind: its processes are killed when it is dropped,
/// and its database and queues are removed on a short-lived runtime of their own.
struct StackGuard(Option<Stack>);

impl Drop for StackGuard {
    fn drop(&mut self) {
        let Some(stack) = self.0.take() else { return };
        // Inside the runtime a nested block_on is not allowed, so a plain thread runs the async teardown.
        let handle = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                runtime.block_on(async {
                    let _ = tokio::time::timeout(Duration::from_secs(30), stack.teardown()).await;
                });
            }
        });
        let _ = handle.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("64K"), Ok(64 * 1024));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("12X").is_err());
        assert!(parse_size("0").is_err());
    }

    #[test]
    fn figures_are_chosen_by_name_in_any_case() {
        let args = Args::parse_from(["ferry-bench", "b1", "B3", "sweep"]);
        assert_eq!(chosen(&args).ok(), Some(vec!["B1".to_owned(), "B3".to_owned(), "sweep".to_owned()]));
        assert!(chosen(&Args::parse_from(["ferry-bench", "B9"])).is_err());
        assert_eq!(chosen(&Args::parse_from(["ferry-bench"])).map(|f| f.len()).ok(), Some(FIGURES.len()));
    }
}

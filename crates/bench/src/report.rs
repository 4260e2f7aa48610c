//! The results: the printed table and `docs/benchmarks.md` (machine, date, commit, parameters, table, how each
//! figure is measured). A hand-written section between the notes markers of an existing file is kept, so the
//! analysis of what bounds a figure survives a new run.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use crate::Args;
use crate::figures::TransferPoint;

pub const NOTES_START: &str = "<!-- bench:notes:start -->";
pub const NOTES_END: &str = "<!-- bench:notes:end -->";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Miss,
    Error,
}

impl Verdict {
    pub fn at_least(value: f64, target: f64) -> Self {
        if value >= target { Verdict::Pass } else { Verdict::Miss }
    }

    pub fn at_most(value: f64, target: f64) -> Self {
        if value <= target { Verdict::Pass } else { Verdict::Miss }
    }

    pub fn word(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Miss => "MISS",
            Verdict::Error => "ERROR",
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: String,
    pub figure: String,
    pub ferry: String,
    pub reference: String,
    pub ratio: String,
    pub target: String,
    pub verdict: Verdict,
}

impl Row {
    pub fn new(
        id: &str,
        figure: String,
        ferry: String,
        reference: String,
        ratio: f64,
        target: &str,
        verdict: Verdict,
    ) -> Self {
        Row { id: id.into(), figure, ferry, reference, ratio: format!("{ratio:.2}"), target: target.into(), verdict }
    }

    pub fn error(id: &str, message: &str) -> Self {
        Row {
            id: id.into(),
            figure: "not measured".into(),
            ferry: message.into(),
            reference: "—".into(),
            ratio: "—".into(),
            target: target_of(id).into(),
            verdict: Verdict::Error,
        }
    }
}

fn target_of(id: &str) -> &'static str {
    match id {
        "B1" => "≥ 0.75",
        "B2" => "≥ 0.5",
        "B3" => "≥ 0.9",
        "B4" => "≤ 64 MiB",
        "B5" => "≤ 10 ms / ≤ 25 ms",
        "B6" => "≥ 0.5",
        "B7" => "≥ 1.8",
        "B8" => "0.9–1.0; 0; < 2%",
        _ => "—",
    }
}

/// A size in the units people use for it: `64 KiB`, `1 MiB`, `4 GiB`.
pub fn mib(bytes: u64) -> String {
    const KIB: u64 = 1024;
    if bytes >= KIB * KIB * KIB && bytes.is_multiple_of(KIB * KIB * KIB) {
        format!("{} GiB", bytes / (KIB * KIB * KIB))
    } else if bytes >= KIB * KIB && bytes.is_multiple_of(KIB * KIB) {
        format!("{} MiB", bytes / (KIB * KIB))
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} B")
    }
}

pub fn mib_per_s(rate: f64) -> String {
    if rate >= 100.0 { format!("{rate:.0} MiB/s") } else { format!("{rate:.2} MiB/s") }
}

/// The table as aligned plain text.
pub fn plain_table(rows: &[Row]) -> String {
    let header = ["#", "figure", "Ferry", "reference", "ratio", "target", "verdict"];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                r.figure.clone(),
                r.ferry.clone(),
                r.reference.clone(),
                r.ratio.clone(),
                r.target.clone(),
                r.verdict.word().to_owned(),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (cell, width) in cells.iter().zip(&widths) {
            let pad = width - cell.chars().count();
            let _ = write!(out, "{cell}{}  ", " ".repeat(pad));
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    out += &line(widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().iter().map(String::as_str).collect());
    for row in &cells {
        out += &line(row.iter().map(String::as_str).collect());
    }
    out
}

fn markdown_cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// What machine this is, read from /proc and uname.
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub ram_gib: f64,
    pub kernel: String,
    /// The 1-minute load average when the run began: anything else using the two cores skews the figures.
    pub load_at_start: String,
}

impl Machine {
    pub fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let ram_kib: f64 = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned();
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            ram_gib: ram_kib / 1024.0 / 1024.0,
            kernel: format!("Linux {kernel}"),
            load_at_start: load_average(),
        }
    }
}

/// The 1-minute load average from /proc/loadavg.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// The checked-out commit, and whether the work tree differs from it; `FERRY_BENCH_COMMIT` outside a git tree.
pub fn git_commit() -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match run(&["rev-parse", "--short=12", "HEAD"]) {
        Some(commit) => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            if dirty { format!("{commit} with uncommitted changes") } else { commit }
        }
        // A tree without git (an exported snapshot) says what it was made from.
        None => std::env::var("FERRY_BENCH_COMMIT").unwrap_or_else(|_| "unknown".into()),
    }
}

/// The parameters, as the command line that repeats the run.
pub fn parameters(args: &Args) -> String {
    let sizes: Vec<String> = args.sweep_sizes.iter().map(|s| size_arg(*s)).collect();
    format!(
        "--parallel {} --large-files {} --large-size {} --small-files {} --small-size {} --small-users {} \
         --rss-files {} --rss-size {} --latency-runs {} --latency-size {} --latency-gap-ms {} \
         --status-connections {} --status-secs {} --pgbench-scale {} --scaling-files {} --scaling-size {} \
         --scaling-users {} --scaling-latency-ms {} --quota-rps {} --quota-import-files {} --quota-export-files {} \
         --quota-size {} --sweep-sizes {} --sweep-bytes {} --sweep-max-files {}",
        args.parallel,
        args.large_files,
        size_arg(args.large_size),
        args.small_files,
        size_arg(args.small_size),
        args.small_users,
        args.rss_files,
        size_arg(args.rss_size),
        args.latency_runs,
        size_arg(args.latency_size),
        args.latency_gap_ms,
        args.status_connections,
        args.status_secs,
        args.pgbench_scale,
        args.scaling_files,
        size_arg(args.scaling_size),
        args.scaling_users,
        args.scaling_latency_ms,
        args.quota_rps,
        args.quota_import_files,
        args.quota_export_files,
        size_arg(args.quota_size),
        sizes.join(","),
        size_arg(args.sweep_bytes),
        args.sweep_max_files,
    )
}

/// A size as the command line takes it (`64K`, `256M`, `1G`).
pub fn size_arg(bytes: u64) -> String {
    mib(bytes).replace(" GiB", "G").replace(" MiB", "M").replace(" KiB", "K").replace(" B", "")
}

/// How each figure is measured, with this run's parameters.
fn how_measured(args: &Args) -> String {
    let p = args.parallel;
    format!(
        "- **B1** — {lf} files of {ls} are uploaded to the emulator first (they are B3's reference uploads). \
Reference: one `curl --parallel --parallel-max {p}` process downloads them (`alt=media`, bearer token of the same \
user) to `/dev/null`. Ferry: `POST /cloud-storage/import` of the same files, one importer at its default \
concurrency, timed from just before the POST to the job's `completed_at` (Postgres `now()`, same clock); Ferry \
also writes every byte to its blob store and hashes it. Ratio = Ferry's MiB/s ÷ curl's.
- **B2** — {sf} files of {ss} spread over {su} Drive users, each connected to Ferry. Reference: one curl process, \
`--parallel --parallel-max {p}` over keep-alive connections, each user's own bearer token, to `/dev/null`. Ferry: one \
import job per user, all posted at once, one importer; time until the last job completed. Ratio of files/s.
- **B3** — Reference: for each of B1's files one `POST …/upload/drive/v3/files?uploadType=resumable` (curl, {p} in \
parallel) and then one `PUT` of the whole file to the session (curl, {p} in parallel); the two runs' wall times \
are added. Ferry: `POST /cloud-storage/export` of the files B1 imported into a new folder, one exporter at its \
default concurrency, to the job's `completed_at`; every exported file's MD5 is checked against the source.
- **B4** — VmHWM from `/proc/PID/status` of a fresh importer and exporter after importing and then exporting \
{rf} files of {rs} (four at once = the default concurrency of 4). The emulator streams contents to and from disk \
(a temporary directory), so file size is not bounded by its memory; `--rss-files 4 --rss-size 4G` moves \
four 4 GiB files (16 GiB of each: emulator, blob store and export on disk).
- **B5** — {lr} imports of one {lz} file, one after another, {gap} ms apart (so the Drive pacer \
never holds a run back: this is the per-item path). Each run: POST → the job's `completed_at`, minus \"the \
download\": the median `time_total` of 21 separate curl processes downloading the same file from the emulator \
(connection set-up included). p50 and p99 (nearest rank) of the differences.
- **B6** — A finished import job; the importer is stopped so only the gateway and Postgres use the CPU. \
`wrk -t2 -c{c} -d{d}s` with the API key against `GET /api/v2/cloud-storage/jobs/{{job_id}}` (every answer must \
be 2xx). Reference: `pgbench -S -c{c} -j2 -T{d}` on a scratch database initialised with `pgbench -i -s {scale}` \
on the same Postgres server (dropped afterwards). Ratio = requests/s ÷ tps.
- **B7** — {kf} files of {ks} over {ku} users (so the per-user pacer does not bound it), emulator latency \
{lat} ms on every request. The same files are imported by one importer, then by two importer processes; each \
configuration first completes a small warm-up job per user. Ratio = time with one ÷ time with two.
- **B8** — one user; {qe} files of {qs} are imported first without a quota. Then the emulator refuses that user's \
Drive requests beyond {q} per second (403 `userRateLimitExceeded`, a fixed one-second window), two importers and \
an exporter run, and an import of {qi} files and an export of the {qe} files start together. From the emulator's \
counters for that user: accepted requests (requests − refused) ÷ wall time until both jobs ended, ÷ the quota; \
failed items of both jobs; refused ÷ requests. Each process runs with the default settings.
- **Plot** — the B1/B3 method at each size of `--sweep-sizes` (files per size: `--sweep-bytes` ÷ size, at least \
{p}, at most `--sweep-max-files`); B1/B3's own point is reused at their size.
",
        lf = args.large_files,
        ls = mib(args.large_size),
        sf = args.small_files,
        ss = mib(args.small_size),
        su = args.small_users,
        rf = args.rss_files,
        rs = mib(args.rss_size),
        lr = args.latency_runs,
        lz = mib(args.latency_size),
        gap = args.latency_gap_ms,
        c = args.status_connections,
        d = args.status_secs,
        scale = args.pgbench_scale,
        kf = args.scaling_files,
        ks = mib(args.scaling_size),
        ku = args.scaling_users,
        lat = args.scaling_latency_ms,
        q = args.quota_rps,
        qi = args.quota_import_files,
        qe = args.quota_export_files,
        qs = mib(args.quota_size),
    )
}

pub struct Report<'a> {
    pub args: &'a Args,
    pub rows: &'a [Row],
    pub points: &'a [TransferPoint],
    pub errors: &'a [String],
    pub machine: Machine,
    pub date: String,
    pub commit: String,
    pub total_secs: f64,
    pub svg_name: Option<String>,
}

impl Report<'_> {
    /// `docs/benchmarks.md`, keeping the notes section of `previous`.
    pub fn markdown(&self, previous: Option<&str>) -> String {
        let m = &self.machine;
        let mut out = String::new();
        out += "# Benchmarks\n\n";
        out += "Written by `make bench` (`crates/bench`, the `ferry-bench` binary); do not edit by hand except between the \
notes markers at the end, which a new run keeps. Every ratio compares Ferry with the same work done without Ferry, \
measured in the same run, on the same machine, against the same Drive emulator and Postgres.\n\n";
        out += "## Run\n\n";
        let _ = writeln!(out, "- Machine: {} × {} cores, {:.1} GiB RAM, {}", m.cpu, m.cores, m.ram_gib, m.kernel);
        let _ = writeln!(out, "- Date: {}", self.date);
        let _ = writeln!(out, "- Commit: {}", self.commit);
        let _ = writeln!(
            out,
            "- Build: release (`cargo build --release`); the gateway, importer and exporter are separate processes with \
their default settings; the Drive emulator runs inside the `ferry-bench` process (its own server threads) and keeps \
contents in a temporary directory on disk; the machine's Postgres and RabbitMQ, a fresh database and queue prefix \
for each group of figures, removed afterwards."
        );
        let _ = writeln!(
            out,
            "- Whole run: {:.0} s; load average (1 min) {} at the start, {} at the end (other work on the machine \
competes for the same two cores and lowers every figure, Ferry's and the references' alike, though not equally)",
            self.total_secs,
            m.load_at_start,
            load_average()
        );
        let _ = writeln!(out, "- Parameters: `ferry-bench {}`\n", parameters(self.args));
        out += "## Results\n\n";
        out += "| # | figure | Ferry | reference | ratio | target | verdict |\n|---|---|---|---|---|---|---|\n";
        for r in self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | **{}** |",
                r.id,
                markdown_cell(&r.figure),
                markdown_cell(&r.ferry),
                markdown_cell(&r.reference),
                r.ratio,
                r.target,
                r.verdict.word()
            );
        }
        for error in self.errors {
            let _ = writeln!(out, "\nError: {}", markdown_cell(error));
        }
        if !self.points.is_empty() {
            out += "\n### Throughput against file size\n\n";
            if let Some(svg) = &self.svg_name {
                let _ = writeln!(out, "![Import and export throughput against file size]({svg})\n");
            }
            out += "| file size | files | import Ferry | import curl | ratio | export Ferry | export curl | ratio |\n";
            out += "|---|---|---|---|---|---|---|---|\n";
            for p in self.points {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {:.2} | {} | {} | {:.2} |",
                    mib(p.size),
                    p.files,
                    mib_per_s(p.rate(p.import_ferry)),
                    mib_per_s(p.rate(p.import_reference)),
                    p.import_reference / p.import_ferry,
                    mib_per_s(p.rate(p.export_ferry)),
                    mib_per_s(p.rate(p.export_reference)),
                    p.export_reference / p.export_ferry,
                );
            }
        }
        out += "\n## How each figure is measured\n\n";
        out += &how_measured(self.args);
        out += "\n";
        let notes = previous
            .and_then(|text| {
                let start = text.find(NOTES_START)?;
                let end = text[start..].find(NOTES_END)? + start + NOTES_END.len();
                Some(text[start..end].to_owned())
            })
            .unwrap_or_else(|| format!("{NOTES_START}\n## What bounds the figures\n\n(Not written yet.)\n{NOTES_END}"));
        out += &notes;
        out += "\n";
        out
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let previous = std::fs::read_to_string(path).ok();
        std::fs::write(path, self.markdown(previous.as_deref())).with_context(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_in_their_unit() {
        assert_eq!(mib(64 * 1024), "64 KiB");
        assert_eq!(mib(256 * 1024 * 1024), "256 MiB");
        assert_eq!(mib(4 << 30), "4 GiB");
        assert_eq!(mib(1000), "1000 B");
        assert_eq!(size_arg(256 * 1024 * 1024), "256M");
    }

    #[test]
    fn the_table_lines_up() {
        let rows =
            vec![Row::new("B1", "import".into(), "1 MiB/s".into(), "2 MiB/s".into(), 0.5, "≥ 0.75", Verdict::Miss)];
        let table = plain_table(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[2].starts_with("B1  import"));
        assert!(lines[2].ends_with("MISS"));
    }
}

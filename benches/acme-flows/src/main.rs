//! `acme-flows`: a load generator for complete ACME (RFC 8555) flows. Each flow creates a
//! new account, orders a certificate for one DNS name, answers its http-01 challenge from
//! the built-in responder, finalizes with a fresh P-256 CSR and downloads the chain; the
//! report gives flows/s and p50/p99 per step and per flow. It is a benchmark client only:
//! it never verifies what it downloads beyond "a PEM certificate came back", and it keeps no
//! keys. `benches/acme-vs-pebble.sh` runs it against Pebble and TrustBox in one run.

#![forbid(unsafe_code)]

mod flow;
mod report;

use anyhow::Context;
use clap::Parser;
use flow::{run_flow, FlowConfig};
use report::{RunInfo, Samples};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use trustbox_acme_bench::http01::{self, Tokens};
use trustbox_acme_bench::transport;

/// How many failures are printed to stderr as they happen.
const ERRORS_SHOWN: usize = 5;

#[derive(Parser)]
#[command(
    name = "acme-flows",
    about = "Benchmark complete ACME flows against one ACME server"
)]
struct Args {
    /// The ACME directory URL.
    #[arg(long)]
    directory: String,
    /// PEM file with the CA(s) that sign the ACME server's HTTPS certificate.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Flows in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Start new flows for this many seconds (default 10 unless --flows is given).
    #[arg(long, conflicts_with = "flows")]
    duration: Option<f64>,
    /// Run exactly this many flows instead of running for a duration.
    #[arg(long)]
    flows: Option<u64>,
    /// Serve http-01 responses on 127.0.0.1:PORT (the port the CA validates on).
    #[arg(long)]
    http_port: u16,
    /// Names are flow-<random>.SUFFIX.
    #[arg(long, default_value = "bench.test")]
    domain_suffix: String,
    /// Interval between order polls, in milliseconds.
    #[arg(long, default_value_t = 10)]
    poll_ms: u64,
    /// Seconds before a poll loop or a single request gives up.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

enum Budget {
    Until(Instant),
    Flows(AtomicU64),
}

impl Budget {
    /// Whether another flow may start (takes one from a flow budget).
    fn take(&self) -> bool {
        match self {
            Self::Until(deadline) => Instant::now() < *deadline,
            Self::Flows(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }
}

/// CPU time (user + system) this process has used, from `/proc/self/stat` (Linux; clock
/// ticks at USER_HZ = 100), so the report can say what the load generator itself cost.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    let ca_pem = match &args.ca_file {
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
        }
        None => None,
    };
    let tokens = Tokens::default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.http_port))
        .await
        .with_context(|| {
            format!(
                "binding the http-01 responder to 127.0.0.1:{}",
                args.http_port
            )
        })?;
    tokio::spawn(http01::serve(listener, tokens.clone()));

    let cfg = Arc::new(FlowConfig {
        directory: args.directory.clone(),
        origin: transport::origin_of(&args.directory)?,
        ca_pem,
        domain_suffix: args.domain_suffix.trim_start_matches('.').to_owned(),
        poll_interval: Duration::from_millis(args.poll_ms),
        timeout: Duration::from_secs(args.timeout),
        tokens: tokens.clone(),
        requests: Arc::new(AtomicU64::new(0)),
    });
    let start = Instant::now();
    let cpu_at_start = process_cpu();
    let budget = Arc::new(match args.flows {
        Some(n) => Budget::Flows(AtomicU64::new(n)),
        None => Budget::Until(start + Duration::from_secs_f64(args.duration.unwrap_or(10.0))),
    });
    let errors_seen = Arc::new(AtomicUsize::new(0));

    let mut workers = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        let (cfg, budget, errors_seen) = (cfg.clone(), budget.clone(), errors_seen.clone());
        workers.push(tokio::spawn(async move {
            let mut samples = Samples::default();
            while budget.take() {
                let t = Instant::now();
                let (times, result) = run_flow(&cfg).await;
                let failed_at = match result {
                    Ok(()) => None,
                    Err(e) => {
                        if errors_seen.fetch_add(1, Ordering::Relaxed) < ERRORS_SHOWN {
                            eprintln!("acme-flows: flow failed at {e}");
                        }
                        Some(e.step)
                    }
                };
                samples.record(&times, t.elapsed(), start.elapsed(), failed_at);
            }
            samples
        }));
    }
    let mut samples = Samples::default();
    for worker in workers {
        samples.merge(worker.await.context("a flow worker panicked")?);
    }
    let info = RunInfo {
        directory: &args.directory,
        concurrency: args.concurrency,
        elapsed: start.elapsed(),
        requests: cfg.requests.load(Ordering::Relaxed),
        http01_served: tokens.served(),
        client_cpu: process_cpu()
            .zip(cpu_at_start)
            .map(|(now, then)| now.saturating_sub(then)),
    };
    let report = report::to_json(&info, &samples);
    if args.json {
        println!("{report}");
    } else {
        print!("{}", report::to_text(&report));
    }
    anyhow::ensure!(!samples.flows.is_empty(), "no flow completed");
    Ok(())
}

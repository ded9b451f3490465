//! `trustbox bench issue`: drive the REST API over HTTPS with pre-generated CSRs and report
//! issuances/s, p50, p99 and errors.

use anyhow::Context;
use clap::Subcommand;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use trustbox_client::Client;

/// Benchmarks.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Issue certificates as fast as the server allows.
    Issue {
        /// Server URL.
        #[arg(long, env = "TRUSTBOX_URL", default_value = "https://127.0.0.1:8443")]
        url: String,
        /// Token with certs:issue (not needed for `--target cfssl`).
        #[arg(long, env = "TRUSTBOX_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Root CA PEM (for https URLs).
        #[arg(long, env = "TRUSTBOX_CA_FILE")]
        ca_file: Option<PathBuf>,
        /// What the URL serves: `trustbox`, or `cfssl` (a `cfssl serve` peer, measured with
        /// the same CSRs and load for comparison).
        #[arg(long, default_value = "trustbox")]
        target: String,
        /// Concurrent connections, each with one request in flight.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Seconds to run (after a one-second warm-up).
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Distinct CSRs to cycle through.
        #[arg(long, default_value_t = 512)]
        csrs: usize,
        /// Print one JSON line instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Figures of one run.
#[derive(Debug, serde::Serialize)]
pub struct Figures {
    /// Successful issuances.
    pub ok: u64,
    /// Failed requests.
    pub errors: u64,
    /// Measured seconds.
    pub seconds: f64,
    /// Issuances per second.
    pub per_second: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Worst latency, ms.
    pub max_ms: f64,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)] as f64 / 1000.0
}

/// Runs a benchmark command.
pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    let BenchCommand::Issue {
        url,
        token,
        ca_file,
        target,
        concurrency,
        duration,
        csrs,
        json,
    } = cmd;
    let ca = match &ca_file {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let (path, ok_status): (&'static str, u16) = match target.as_str() {
        "trustbox" => ("/api/v1/certificates", 201),
        "cfssl" => ("/api/v1/cfssl/sign", 200),
        other => anyhow::bail!("unknown --target {other:?} (trustbox or cfssl)"),
    };
    let cfssl = target == "cfssl";
    eprintln!("generating {csrs} CSRs ...");
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..csrs.max(1))
            .map(|n| {
                let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
                let mut params =
                    rcgen::CertificateParams::new(vec![format!("bench-{n}.example.com")])?;
                params.distinguished_name = rcgen::DistinguishedName::new();
                let pem = params.serialize_request(&key)?.pem()?;
                let body = if cfssl {
                    serde_json::json!({ "certificate_request": pem })
                } else {
                    serde_json::json!({ "csr": pem, "validity_days": 7 })
                };
                Ok(serde_json::to_vec(&body)?)
            })
            .collect::<anyhow::Result<_>>()?,
    );
    let warmup = Duration::from_secs(1);
    let run_for = Duration::from_secs(duration.max(1));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency.max(1) {
        let client =
            Client::new(&url, ca.as_deref(), token.clone())?.with_timeout(Duration::from_secs(30));
        let bodies = bodies.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut n = worker;
            loop {
                let t0 = Instant::now();
                if t0 - start >= warmup + run_for {
                    break;
                }
                let body = bodies[n % bodies.len()].clone();
                n += concurrency;
                let r = client
                    .request("POST", path, Some(("application/json", body)))
                    .await;
                let measured = t0 - start >= warmup;
                match r {
                    Ok(resp) if resp.status == ok_status => {
                        if measured {
                            lat.push(t0.elapsed().as_micros() as u64);
                        }
                    }
                    _ => {
                        if measured {
                            errors += 1;
                        }
                    }
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await?;
        all.extend(lat);
        errors += e;
    }
    all.sort_unstable();
    let seconds = run_for.as_secs_f64();
    let f = Figures {
        ok: all.len() as u64,
        errors,
        seconds,
        per_second: all.len() as f64 / seconds,
        p50_ms: percentile(&all, 0.50),
        p99_ms: percentile(&all, 0.99),
        max_ms: all.last().copied().unwrap_or(0) as f64 / 1000.0,
    };
    if json {
        println!("{}", serde_json::to_string(&f)?);
    } else {
        println!(
            "issued {} in {:.1}s: {:.0} issuances/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, errors {} (concurrency {})",
            f.ok, f.seconds, f.per_second, f.p50_ms, f.p99_ms, f.max_ms, f.errors, concurrency
        );
    }
    Ok(())
}

//! `trustbox bench`: load generators that print the same figures (ok, errors, rate, p50, p99,
//! max) for TrustBox and for a peer measured in the same run. `issue` drives the REST API with
//! pre-generated CSRs; `ocsp` (in `bench_ocsp`) drives any OCSP responder.

use anyhow::Context;
use clap::{Args, Subcommand};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use trustbox_client::Client;

/// Benchmarks.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Issue certificates as fast as the server allows.
    Issue(IssueArgs),
    /// Query an OCSP responder (RFC 6960) as fast as it answers; works against any responder.
    Ocsp(crate::bench_ocsp::OcspArgs),
    /// Revoke many certificates (bulk-inserted) and time one shard CRL holding them all;
    /// runs in-process on a throwaway data directory, no server needed.
    Crl(crate::bench_crl::CrlArgs),
}

/// Arguments of `trustbox bench issue`.
#[derive(Args, Debug)]
pub struct IssueArgs {
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
}

/// Figures of one run.
#[derive(Debug, serde::Serialize)]
pub struct Figures {
    /// Successful requests.
    pub ok: u64,
    /// Failed requests.
    pub errors: u64,
    /// Measured seconds.
    pub seconds: f64,
    /// Successful requests per second.
    pub per_second: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Worst latency, ms.
    pub max_ms: f64,
}

impl Figures {
    /// Figures from the latencies (µs) of the successful requests and the error count of a
    /// run that measured for `seconds`.
    pub fn from_run(mut latencies_us: Vec<u64>, errors: u64, seconds: f64) -> Self {
        latencies_us.sort_unstable();
        let ok = latencies_us.len() as u64;
        Self {
            ok,
            errors,
            seconds,
            per_second: ok as f64 / seconds.max(f64::MIN_POSITIVE),
            p50_ms: percentile(&latencies_us, 0.50),
            p99_ms: percentile(&latencies_us, 0.99),
            max_ms: latencies_us.last().copied().unwrap_or(0) as f64 / 1000.0,
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)] as f64 / 1000.0
}

/// Warm-up before measuring: connections are opened and caches filled, but not counted.
const WARMUP: Duration = Duration::from_secs(1);

/// Runs `concurrency` workers, each with one request in flight, for [`WARMUP`] and then
/// `duration` seconds, and returns the figures of the measured part.
///
/// `worker(i)` builds worker `i`'s step function; `step(n)` sends request number `n` (worker
/// `i` sends `i`, `i + concurrency`, ...) and says whether it succeeded, with a reason if
/// not. Every step is cut off after `request_timeout` (counted as an error), so the whole run
/// ends within warm-up + duration + `request_timeout` plus a second of slack. Fails if no
/// request was measured at all (a responder that never answers); otherwise errors are
/// counted, and the first one seen is printed to stderr.
pub(crate) async fn drive<W, S, Fut>(
    concurrency: usize,
    duration: u64,
    request_timeout: Duration,
    mut worker: W,
) -> anyhow::Result<Figures>
where
    W: FnMut(usize) -> anyhow::Result<S>,
    S: FnMut(usize) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let concurrency = concurrency.max(1);
    let run_for = Duration::from_secs(duration.max(1));
    let start = Instant::now();
    let end = start + WARMUP + run_for;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..concurrency {
        let mut step = worker(i)?;
        tasks.spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut first_error = None;
            let mut n = i;
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                let r = match tokio::time::timeout(request_timeout, step(n)).await {
                    Ok(r) => r,
                    Err(_) => Err(format!("no answer within {request_timeout:?}")),
                };
                n += concurrency;
                let measured = t0 - start >= WARMUP;
                match r {
                    Ok(()) if measured => lat.push(t0.elapsed().as_micros() as u64),
                    Ok(()) => {}
                    Err(e) => {
                        errors += u64::from(measured);
                        first_error.get_or_insert(e);
                    }
                }
            }
            (lat, errors, first_error)
        });
    }
    let collect = async {
        let mut all = Vec::new();
        let mut errors = 0;
        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            let (lat, e, first) = joined?;
            all.extend(lat);
            errors += e;
            if first_error.is_none() {
                first_error = first;
            }
        }
        anyhow::Ok((all, errors, first_error))
    };
    let limit = WARMUP + run_for + request_timeout + Duration::from_secs(1);
    let (all, errors, first_error) = tokio::time::timeout(limit, collect)
        .await
        .map_err(|_| anyhow::anyhow!("workers still busy after {limit:?}"))??;
    if all.is_empty() && errors == 0 {
        anyhow::bail!(
            "no request started in the measured {run_for:?} finished within {request_timeout:?}; first error: {}",
            first_error.as_deref().unwrap_or("none")
        );
    }
    if errors > 0 {
        if let Some(e) = first_error {
            eprintln!("{errors} errors; the first seen: {e}");
        }
    }
    Ok(Figures::from_run(all, errors, run_for.as_secs_f64()))
}

/// Runs a benchmark command.
pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Issue(args) => issue(args).await,
        BenchCommand::Ocsp(args) => crate::bench_ocsp::run(args).await,
        BenchCommand::Crl(args) => crate::bench_crl::run(args).await,
    }
}

/// Runs `trustbox bench issue`.
async fn issue(args: IssueArgs) -> anyhow::Result<()> {
    let IssueArgs {
        url,
        token,
        ca_file,
        target,
        concurrency,
        duration,
        csrs,
        json,
    } = args;
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
    let timeout = Duration::from_secs(30);
    let f = drive(concurrency, duration, timeout, |_| {
        let client =
            Arc::new(Client::new(&url, ca.as_deref(), token.clone())?.with_timeout(timeout));
        let bodies = bodies.clone();
        Ok(move |n: usize| {
            let client = client.clone();
            let body = bodies[n % bodies.len()].clone();
            async move {
                let resp = client
                    .request("POST", path, Some(("application/json", body)))
                    .await
                    .map_err(|e| e.to_string())?;
                if resp.status == ok_status {
                    Ok(())
                } else {
                    Err(format!("HTTP {}", resp.status))
                }
            }
        })
    })
    .await?;
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

//! Latency samples per step and per flow, and the text / JSON report.

use crate::flow::{Step, StepTimes};
use serde_json::{json, Value};
use std::time::Duration;

/// Everything one run measured.
#[derive(Default)]
pub struct Samples {
    /// Per step, indexed like [`Step::ALL`]: every completed step, also of failed flows.
    pub steps: [Vec<Duration>; 6],
    /// Whole successful flows.
    pub flows: Vec<Duration>,
    /// Failed flows per step they failed in.
    pub failed: [u64; 6],
    /// When the last successful flow ended, from the start of the run.
    pub last_ok: Duration,
}

impl Samples {
    /// Adds one flow's outcome; `ended` is when it ended, from the start of the run.
    pub fn record(
        &mut self,
        times: &StepTimes,
        total: Duration,
        ended: Duration,
        failed_at: Option<Step>,
    ) {
        for (samples, time) in self.steps.iter_mut().zip(times) {
            if let Some(t) = time {
                samples.push(*t);
            }
        }
        match failed_at {
            None => {
                self.flows.push(total);
                self.last_ok = self.last_ok.max(ended);
            }
            Some(step) => self.failed[step_index(step)] += 1,
        }
    }

    /// Merges another worker's samples.
    pub fn merge(&mut self, other: Self) {
        for (mine, theirs) in self.steps.iter_mut().zip(other.steps) {
            mine.extend(theirs);
        }
        self.flows.extend(other.flows);
        self.last_ok = self.last_ok.max(other.last_ok);
        for (mine, theirs) in self.failed.iter_mut().zip(other.failed) {
            *mine += theirs;
        }
    }
}

fn step_index(step: Step) -> usize {
    Step::ALL.iter().position(|s| *s == step).unwrap_or(0)
}

/// Run facts that go with the samples.
pub struct RunInfo<'a> {
    /// The ACME directory measured.
    pub directory: &'a str,
    /// Flows in flight at once.
    pub concurrency: usize,
    /// Wall time from the first flow's start to the last one's end.
    pub elapsed: Duration,
    /// HTTP requests sent to the ACME server.
    pub requests: u64,
    /// http-01 requests answered with a key authorization.
    pub http01_served: u64,
    /// CPU time the generator itself used during the run, where known.
    pub client_cpu: Option<Duration>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(samples: &[Duration]) -> Value {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let mean = if sorted.is_empty() {
        0.0
    } else {
        sorted.iter().map(|d| ms(*d)).sum::<f64>() / sorted.len() as f64
    };
    json!({
        "n": sorted.len(),
        "p50_ms": round2(ms(percentile(&sorted, 50.0))),
        "p99_ms": round2(ms(percentile(&sorted, 99.0))),
        "mean_ms": round2(mean),
        "max_ms": round2(ms(sorted.last().copied().unwrap_or_default())),
    })
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The report as one JSON object.
pub fn to_json(info: &RunInfo<'_>, samples: &Samples) -> Value {
    let ok = samples.flows.len() as u64;
    let failed: u64 = samples.failed.iter().sum();
    let secs = info.elapsed.as_secs_f64().max(1e-9);
    let flow = summary(&samples.flows);
    let mut steps = serde_json::Map::new();
    let mut failures = serde_json::Map::new();
    for (i, step) in Step::ALL.iter().enumerate() {
        steps.insert(step.name().into(), summary(&samples.steps[i]));
        if samples.failed[i] > 0 {
            failures.insert(step.name().into(), samples.failed[i].into());
        }
    }
    let per_flow = |n: u64| round2(n as f64 / (ok + failed).max(1) as f64);
    json!({
        "directory": info.directory,
        "concurrency": info.concurrency,
        "elapsed_s": round2(secs),
        "ok": ok,
        "failed": failed,
        "failed_by_step": failures,
        "flows_per_second": round2(ok as f64 / secs),
        // Throughput up to the last successful flow: the figure that still means something
        // when a server stops answering part-way (failed flows then end by timeout).
        "last_ok_s": round2(samples.last_ok.as_secs_f64()),
        "flows_per_second_to_last_ok": round2(ok as f64 / samples.last_ok.as_secs_f64().max(1e-9)),
        "p50_ms": flow["p50_ms"],
        "p99_ms": flow["p99_ms"],
        "requests": info.requests,
        "requests_per_flow": per_flow(info.requests),
        "http01_served_per_flow": per_flow(info.http01_served),
        "client_cpu_ms_per_flow": info.client_cpu.map(|c| round2(ms(c) / ok.max(1) as f64)),
        "flow": flow,
        "steps": steps,
    })
}

/// The report as text for people.
pub fn to_text(report: &Value) -> String {
    let mut out = format!(
        "{}  concurrency {}  {:.1} s\n{} ok, {} failed {}  {:.1} flows/s  {} requests/flow  {} http-01 fetches/flow  client CPU {} ms/flow\n",
        report["directory"].as_str().unwrap_or(""),
        report["concurrency"],
        report["elapsed_s"].as_f64().unwrap_or(0.0),
        report["ok"],
        report["failed"],
        report["failed_by_step"],
        report["flows_per_second"].as_f64().unwrap_or(0.0),
        report["requests_per_flow"],
        report["http01_served_per_flow"],
        report["client_cpu_ms_per_flow"],
    );
    out.push_str(&format!(
        "{:<20} {:>7} {:>9} {:>9} {:>9}\n",
        "step", "n", "p50 ms", "p99 ms", "mean ms"
    ));
    let row = |name: &str, s: &Value| {
        format!(
            "{:<20} {:>7} {:>9.2} {:>9.2} {:>9.2}\n",
            name,
            s["n"].as_u64().unwrap_or(0),
            s["p50_ms"].as_f64().unwrap_or(0.0),
            s["p99_ms"].as_f64().unwrap_or(0.0),
            s["mean_ms"].as_f64().unwrap_or(0.0),
        )
    };
    for step in Step::ALL {
        out.push_str(&row(step.name(), &report["steps"][step.name()]));
    }
    out.push_str(&row("whole flow", &report["flow"]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sorted, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&sorted, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&sorted[..1], 99.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn failures_count_by_step_and_completed_steps_still_count() {
        let mut s = Samples::default();
        let some = Some(Duration::from_millis(3));
        s.record(
            &[some; 6],
            Duration::from_millis(18),
            Duration::from_millis(500),
            None,
        );
        s.record(
            &[some, None, None, None, None, None],
            Duration::ZERO,
            Duration::from_millis(900),
            Some(Step::Order),
        );
        let info = RunInfo {
            directory: "https://x:1/dir",
            concurrency: 1,
            elapsed: Duration::from_secs(1),
            requests: 10,
            http01_served: 1,
            client_cpu: Some(Duration::from_millis(20)),
        };
        let report = to_json(&info, &s);
        assert_eq!(report["ok"], 1);
        assert_eq!(report["failed_by_step"]["order"], 1);
        assert_eq!(report["steps"]["account"]["n"], 2);
        assert_eq!(report["steps"]["download"]["n"], 1);
        assert_eq!(report["client_cpu_ms_per_flow"], 20.0);
        assert_eq!(report["last_ok_s"], 0.5);
        assert_eq!(report["flows_per_second_to_last_ok"], 2.0);
        assert!(to_text(&report).contains("whole flow"));
    }
}

//! Client commands against a running server's REST API.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;
use trustbox_client::Client;

/// Where the API is and how to authenticate.
#[derive(Args, Debug)]
pub struct ApiArgs {
    /// Server URL.
    #[arg(
        long,
        env = "TRUSTBOX_URL",
        default_value = "https://127.0.0.1:8443",
        global = true
    )]
    url: String,
    /// Bearer token.
    #[arg(long, env = "TRUSTBOX_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// PEM file with the server's root CA (DATA/ca/root.pem).
    #[arg(long, env = "TRUSTBOX_CA_FILE", global = true)]
    ca_file: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

impl ApiArgs {
    fn client(&self) -> anyhow::Result<Client> {
        let ca = match &self.ca_file {
            Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
            None => None,
        };
        let token = self
            .token
            .clone()
            .context("no token: set TRUSTBOX_TOKEN or pass --token")?;
        Ok(Client::new(&self.url, ca.as_deref(), Some(token))?)
    }
}

/// `trustbox cert ...`
#[derive(Subcommand, Debug)]
pub enum CertCommand {
    /// Issue a certificate from a CSR file.
    Issue {
        /// PEM CSR (make one with `openssl req -new`).
        #[arg(long)]
        csr: PathBuf,
        /// Profile (default tls-server).
        #[arg(long)]
        profile: Option<String>,
        /// Issuer id or name.
        #[arg(long)]
        issuer: Option<String>,
        /// Validity in days.
        #[arg(long)]
        validity_days: Option<u32>,
        /// Write cert.pem, chain.pem and fullchain.pem into this directory.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List certificates.
    List {
        /// valid or revoked.
        #[arg(long)]
        status: Option<String>,
        /// A SAN value.
        #[arg(long)]
        san: Option<String>,
        /// Issuer id.
        #[arg(long)]
        issuer: Option<String>,
        /// RFC 3339 time.
        #[arg(long)]
        expires_before: Option<String>,
        /// Most rows.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Show one certificate.
    Show {
        /// Certificate id.
        id: String,
    },
    /// Revoke a certificate.
    Revoke {
        /// Certificate id.
        id: String,
        /// RFC 5280 reason (keyCompromise, superseded, ...).
        #[arg(long, default_value = "unspecified")]
        reason: String,
    },
}

/// `trustbox ca ...`
/// Background jobs of the token's tenant (needs `ca:admin`).
#[derive(Subcommand, Debug)]
pub enum JobCommand {
    /// List jobs, newest first.
    List {
        /// Only jobs in this state: pending, running, retry_wait, completed, failed,
        /// abandoned, cancelled.
        #[arg(long)]
        state: Option<String>,
        /// Only jobs of this kind (`crl.publish`, `ocsp.responder`, `audit.checkpoint`).
        #[arg(long)]
        kind: Option<String>,
        /// Most jobs shown.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Show one job.
    Show {
        /// Job id.
        id: String,
    },
    /// Cancel a job that is pending or waiting to retry.
    Cancel {
        /// Job id.
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum CaCommand {
    /// List issuers.
    List,
}

fn check(resp: &trustbox_client::Response, expect: u16) -> anyhow::Result<Value> {
    let body = resp.json().unwrap_or(Value::Null);
    if resp.status != expect {
        let detail = body["detail"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| resp.text());
        bail!("server answered {}: {detail}", resp.status);
    }
    Ok(body)
}

fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.len());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r);
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        Value::Array(a) => a.iter().map(s).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn encode_query(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs a `cert` command.
pub async fn cert(api: ApiArgs, command: CertCommand) -> anyhow::Result<ExitCode> {
    let client = api.client()?;
    match command {
        CertCommand::Issue {
            csr,
            profile,
            issuer,
            validity_days,
            out,
        } => {
            let pem = std::fs::read_to_string(&csr)
                .with_context(|| format!("reading {}", csr.display()))?;
            let mut body = json!({ "csr": pem });
            if let Some(p) = profile {
                body["profile"] = json!(p);
            }
            if let Some(i) = issuer {
                body["issuer"] = json!(i);
            }
            if let Some(d) = validity_days {
                body["validity_days"] = json!(d);
            }
            let v = check(&client.post_json("/api/v1/certificates", &body).await?, 201)?;
            if let Some(dir) = out {
                std::fs::create_dir_all(&dir)?;
                let cert = s(&v["certificate"]);
                let chain = s(&v["chain"]);
                std::fs::write(dir.join("cert.pem"), &cert)?;
                std::fs::write(dir.join("chain.pem"), &chain)?;
                std::fs::write(dir.join("fullchain.pem"), format!("{cert}{chain}"))?;
            }
            if api.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                table(
                    &["ID", "SERIAL", "NOT AFTER"],
                    vec![vec![s(&v["id"]), s(&v["serial"]), s(&v["not_after"])]],
                );
            }
        }
        CertCommand::List {
            status,
            san,
            issuer,
            expires_before,
            limit,
        } => {
            let mut q = vec![format!("limit={limit}")];
            for (k, v) in [
                ("status", status),
                ("san", san),
                ("issuer", issuer),
                ("expires_before", expires_before),
            ] {
                if let Some(v) = v {
                    q.push(format!("{k}={}", encode_query(&v)));
                }
            }
            let v = check(
                &client
                    .get(&format!("/api/v1/certificates?{}", q.join("&")))
                    .await?,
                200,
            )?;
            if api.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                let rows = v["items"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|c| {
                                vec![
                                    s(&c["id"]),
                                    s(&c["serial"]),
                                    s(&c["common_name"]),
                                    s(&c["sans"]),
                                    s(&c["status"]),
                                    s(&c["not_after"]),
                                ]
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                table(&["ID", "SERIAL", "CN", "SANS", "STATUS", "NOT AFTER"], rows);
            }
        }
        CertCommand::Show { id } => {
            let v = check(
                &client
                    .get(&format!("/api/v1/certificates/{}", encode_query(&id)))
                    .await?,
                200,
            )?;
            if api.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for k in [
                    "id",
                    "serial",
                    "issuer",
                    "common_name",
                    "sans",
                    "key_type",
                    "status",
                    "not_before",
                    "not_after",
                    "revoked_at",
                    "revocation_reason",
                    "profile",
                    "source",
                    "fingerprint",
                ] {
                    println!("{k:<18} {}", s(&v[k]));
                }
                print!("{}", s(&v["certificate"]));
            }
        }
        CertCommand::Revoke { id, reason } => {
            let v = check(
                &client
                    .post_json(
                        &format!("/api/v1/certificates/{}/revoke", encode_query(&id)),
                        &json!({ "reason": reason }),
                    )
                    .await?,
                200,
            )?;
            if api.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("revoked {} ({})", s(&v["id"]), s(&v["revocation_reason"]));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a `ca` command.
pub async fn ca(api: ApiArgs, command: CaCommand) -> anyhow::Result<ExitCode> {
    let client = api.client()?;
    match command {
        CaCommand::List => {
            let v = check(&client.get("/api/v1/issuers").await?, 200)?;
            if api.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                let rows = v
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|i| {
                                vec![
                                    s(&i["id"]),
                                    s(&i["name"]),
                                    s(&i["common_name"]),
                                    if i["is_root"].as_bool() == Some(true) {
                                        "root".into()
                                    } else {
                                        "intermediate".into()
                                    },
                                    s(&i["key_algorithm"]),
                                    s(&i["not_after"]),
                                ]
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                table(
                    &["ID", "NAME", "COMMON NAME", "KIND", "KEY", "NOT AFTER"],
                    rows,
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `trustbox job ...`.
pub async fn job(api: ApiArgs, command: JobCommand) -> anyhow::Result<ExitCode> {
    let client = api.client()?;
    let v = match command {
        JobCommand::List { state, kind, limit } => {
            let mut q = vec![format!("limit={limit}")];
            for (k, v) in [("state", state), ("kind", kind)] {
                if let Some(v) = v {
                    q.push(format!("{k}={}", encode_query(&v)));
                }
            }
            let v = check(
                &client.get(&format!("/api/v1/jobs?{}", q.join("&"))).await?,
                200,
            )?;
            if !api.json {
                let rows = v["items"]
                    .as_array()
                    .map(|a| a.iter().map(job_row).collect())
                    .unwrap_or_default();
                table(JOB_HEADERS, rows);
                return Ok(ExitCode::SUCCESS);
            }
            v
        }
        JobCommand::Show { id } => check(
            &client
                .get(&format!("/api/v1/jobs/{}", encode_query(&id)))
                .await?,
            200,
        )?,
        JobCommand::Cancel { id } => check(
            &client
                .request(
                    "POST",
                    &format!("/api/v1/jobs/{}/cancel", encode_query(&id)),
                    None,
                )
                .await?,
            200,
        )?,
    };
    if api.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        table(JOB_HEADERS, vec![job_row(&v)]);
        if let Some(e) = v["last_error"].as_str() {
            println!("last error: {e}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

const JOB_HEADERS: &[&str] = &[
    "ID", "KIND", "KEY", "STATE", "ATTEMPTS", "RUN AT", "FINISHED",
];

fn job_row(j: &Value) -> Vec<String> {
    vec![
        s(&j["id"]),
        s(&j["kind"]),
        s(&j["key"]),
        s(&j["state"]),
        format!("{}/{}", s(&j["attempts"]), s(&j["max_attempts"])),
        s(&j["run_at"]),
        s(&j["finished_at"]),
    ]
}

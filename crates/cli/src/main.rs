//! `trustbox`: the server, host-side administration, an API client and a benchmark, in
//! one binary.

mod bench;
mod bench_crl;
mod bench_ocsp;
mod client_cmds;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use trustbox_server::ServerConfig;
use trustbox_types::{KeyAlgorithm, ScopeSet};

/// mimalloc: the server allocates many short-lived buffers per issuance across threads,
/// where it measured cheaper than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "trustbox", version, about = "TrustBox: a self-hosted private PKI in one binary", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (creates the data directory and CA hierarchy on first start).
    Up(UpArgs),
    /// Check a configuration file and report the first bad option.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage API tokens on the host (writes through the store; needs the data directory).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Inspect the audit chain.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Certificates, through the API (TRUSTBOX_URL, TRUSTBOX_TOKEN, TRUSTBOX_CA_FILE).
    Cert {
        #[command(flatten)]
        api: client_cmds::ApiArgs,
        #[command(subcommand)]
        command: client_cmds::CertCommand,
    },
    /// Certificate authorities, through the API.
    Ca {
        #[command(flatten)]
        api: client_cmds::ApiArgs,
        #[command(subcommand)]
        command: client_cmds::CaCommand,
    },
    /// Background jobs (CRL publishing, OCSP responder rotation, checkpoints), through the
    /// API.
    Job {
        #[command(flatten)]
        api: client_cmds::ApiArgs,
        #[command(subcommand)]
        command: client_cmds::JobCommand,
    },
    /// Benchmarks against a running server.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

#[derive(Args, Debug)]
struct UpArgs {
    /// TOML configuration file (flags and environment override it).
    #[arg(long, env = "TRUSTBOX_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory [default: ./trustbox-data].
    #[arg(long, env = "TRUSTBOX_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// HTTPS listen address [default: 127.0.0.1:8443].
    #[arg(long, env = "TRUSTBOX_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// Plain-HTTP address for relying parties (CRLs, OCSP, CA certificates)
    /// [default: 127.0.0.1:8080]; an empty value turns it off.
    #[arg(long, env = "TRUSTBOX_HTTP_LISTEN")]
    http_listen: Option<String>,
    /// CRL shards of each new issuer [default: 1].
    #[arg(long, env = "TRUSTBOX_CRL_SHARDS")]
    crl_shards: Option<u32>,
    /// Extra SAN for the server certificate (repeatable).
    #[arg(long)]
    san: Vec<String>,
    /// PostgreSQL URL (postgres://...); SQLite in the data directory when unset.
    #[arg(long, env = "TRUSTBOX_DATABASE")]
    database: Option<String>,
    /// PostgreSQL URL of the tables' owner, used only to migrate [default: --database].
    #[arg(long, env = "TRUSTBOX_DATABASE_OWNER")]
    database_owner: Option<String>,
    /// Key-encryption key file [default: DATA/kek.key]; TRUSTBOX_KEK (64 hex digits) wins.
    #[arg(long, env = "TRUSTBOX_KEK_FILE")]
    kek_file: Option<PathBuf>,
    /// Base URL stamped into certificates (CRL distribution point, AIA caIssuers and OCSP)
    /// [default: http:// + the plain-HTTP listener's address].
    #[arg(long, env = "TRUSTBOX_PUBLIC_URL")]
    public_url: Option<String>,
    /// Root CA key algorithm at first start [default: ecdsa-p384].
    #[arg(long)]
    root_key_algorithm: Option<KeyAlgorithm>,
    /// Issuing CA key algorithm at first start [default: ecdsa-p256].
    #[arg(long)]
    issuing_key_algorithm: Option<KeyAlgorithm>,
    /// Seconds for a request's headers, and again for its body [default: 30].
    #[arg(long, env = "TRUSTBOX_REQUEST_TIMEOUT_SECS")]
    request_timeout_secs: Option<u64>,
    /// Seconds for a TLS handshake on the HTTPS listener [default: 10].
    #[arg(long, env = "TRUSTBOX_TLS_HANDSHAKE_TIMEOUT_SECS")]
    tls_handshake_timeout_secs: Option<u64>,
    /// Most open connections on each listener [default: 4096].
    #[arg(long, env = "TRUSTBOX_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Requests per second per client address on the HTTPS listener [default: 10000].
    #[arg(long, env = "TRUSTBOX_RATE_LIMIT_PER_IP")]
    rate_limit_per_ip: Option<u32>,
    /// Requests per second per API token [default: 10000].
    #[arg(long, env = "TRUSTBOX_RATE_LIMIT_PER_TOKEN")]
    rate_limit_per_token: Option<u32>,
    /// Requests per second per client address on the plain-HTTP listener [default: 200000].
    #[arg(long, env = "TRUSTBOX_HTTP_RATE_LIMIT_PER_IP")]
    http_rate_limit_per_ip: Option<u32>,
    /// Serve /metrics on its own plain-HTTP listener at this address (and not on the HTTPS
    /// one); an empty value keeps it on the HTTPS listener.
    #[arg(long, env = "TRUSTBOX_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// DNS server (ADDR:PORT) ACME challenge validation asks; repeatable, or comma
    /// separated [default: the system resolver].
    #[arg(long, env = "TRUSTBOX_ACME_RESOLVER", value_delimiter = ',')]
    acme_resolver: Vec<std::net::SocketAddr>,
}

impl UpArgs {
    fn into_config(self) -> anyhow::Result<ServerConfig> {
        let mut cfg = match &self.config {
            Some(p) => ServerConfig::from_file(p)?,
            None => ServerConfig::default(),
        };
        if let Some(v) = self.data_dir {
            cfg.data_dir = v;
        }
        if let Some(v) = self.listen {
            cfg.listen = v;
        }
        if let Some(v) = self.http_listen {
            cfg.http_listen = if v.trim().is_empty() {
                None
            } else {
                Some(v.parse().map_err(|e| {
                    anyhow::anyhow!("option `http_listen`: {v:?} is not an address: {e}")
                })?)
            };
        }
        if let Some(v) = self.crl_shards {
            cfg.crl_shards = v;
        }
        cfg.san.extend(self.san);
        if let Some(v) = self.database {
            cfg.database = Some(v);
        }
        if let Some(v) = self.database_owner {
            cfg.database_owner = Some(v);
        }
        if let Some(v) = self.kek_file {
            cfg.kek_file = Some(v);
        }
        if let Some(v) = self.public_url {
            cfg.public_url = Some(v);
        }
        if let Some(v) = self.root_key_algorithm {
            cfg.root_key_algorithm = v;
        }
        if let Some(v) = self.issuing_key_algorithm {
            cfg.issuing_key_algorithm = v;
        }
        if let Some(v) = self.request_timeout_secs {
            cfg.request_timeout_secs = v;
        }
        if let Some(v) = self.tls_handshake_timeout_secs {
            cfg.tls_handshake_timeout_secs = v;
        }
        if let Some(v) = self.max_connections {
            cfg.max_connections = v;
        }
        if let Some(v) = self.rate_limit_per_ip {
            cfg.rate_limit_per_ip = v;
        }
        if let Some(v) = self.rate_limit_per_token {
            cfg.rate_limit_per_token = v;
        }
        if let Some(v) = self.http_rate_limit_per_ip {
            cfg.http_rate_limit_per_ip = v;
        }
        if !self.acme_resolver.is_empty() {
            cfg.acme_resolver = self.acme_resolver;
        }
        if let Some(v) = self.metrics_listen {
            cfg.metrics_listen = if v.trim().is_empty() {
                None
            } else {
                Some(v.parse().map_err(|e| {
                    anyhow::anyhow!("option `metrics_listen`: {v:?} is not an address: {e}")
                })?)
            };
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Parse and validate a configuration file.
    Check {
        /// The file.
        #[arg(long, env = "TRUSTBOX_CONFIG")]
        config: PathBuf,
    },
}

#[derive(Args, Debug)]
struct HostArgs {
    /// Data directory of the server.
    #[arg(long, env = "TRUSTBOX_DATA_DIR", default_value = "./trustbox-data")]
    data_dir: PathBuf,
    /// PostgreSQL URL, when the server uses PostgreSQL.
    #[arg(long, env = "TRUSTBOX_DATABASE")]
    database: Option<String>,
    /// PostgreSQL URL of the tables' owner, for migrations [default: --database].
    #[arg(long, env = "TRUSTBOX_DATABASE_OWNER")]
    database_owner: Option<String>,
    /// Key-encryption key file [default: DATA/kek.key]; TRUSTBOX_KEK (64 hex digits) wins.
    #[arg(long, env = "TRUSTBOX_KEK_FILE")]
    kek_file: Option<PathBuf>,
}

impl HostArgs {
    fn config(&self) -> ServerConfig {
        ServerConfig {
            data_dir: self.data_dir.clone(),
            database: self.database.clone(),
            database_owner: self.database_owner.clone(),
            kek_file: self.kek_file.clone(),
            ..ServerConfig::default()
        }
    }
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Mint a token and print it (once) on stdout.
    Create {
        #[command(flatten)]
        host: HostArgs,
        /// Tenant name.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Comma-separated scopes: admin, certs:issue, certs:read, certs:revoke, ca:admin,
        /// audit:read, tokens:admin.
        #[arg(long)]
        scopes: String,
        /// A label for the token.
        #[arg(long)]
        name: String,
        /// Lifetime: seconds, or with a unit (`90m`, `12h`, `30d`); never expires when unset.
        #[arg(long, value_parser = parse_lifetime)]
        expires_in: Option<i64>,
    },
}

/// `30d`, `12h`, `90m`, `45s` or bare seconds.
fn parse_lifetime(s: &str) -> Result<i64, String> {
    let (digits, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c),
        _ => (s, 's'),
    };
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a lifetime like 30d, 12h, 90m or 3600"))?;
    let unit = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        _ => return Err(format!("{s:?}: the unit must be s, m, h or d")),
    };
    n.checked_mul(unit)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("{s:?} is out of range"))
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Verify every tenant's chain (or one's): its links, its stored head, its signed
    /// checkpoints and the certificates it records; name the first broken event.
    Verify {
        #[command(flatten)]
        host: HostArgs,
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Also hold the chains to these exported checkpoints (kept off-host).
        #[arg(long)]
        checkpoints: Option<PathBuf>,
    },
    /// Sign a checkpoint of every tenant's chain head now (`checkpoint export` writes them).
    Checkpoint {
        #[command(flatten)]
        host: HostArgs,
        #[command(subcommand)]
        command: Option<CheckpointCommand>,
    },
}

#[derive(Subcommand, Debug)]
enum CheckpointCommand {
    /// Write every tenant's signed checkpoints (with their public keys) for off-host anchoring.
    Export {
        /// The file to write (JSON); `-` for standard output.
        #[arg(long, default_value = "-")]
        out: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TRUSTBOX_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    match cli.command {
        Command::Up(args) => {
            let cfg = args.into_config()?;
            let server = trustbox_server::start(cfg).await?;
            println!("TrustBox is serving https://{}", server.addr);
            if let Some(http) = server.http_addr {
                println!("relying parties (CRLs, OCSP, CA certificates): http://{http}");
            }
            if let Some(m) = server.metrics_addr {
                println!("metrics: http://{m}/metrics");
            }
            if let Some(url) = &server.public_url {
                println!("public URL stamped into certificates: {url}");
            }
            println!("root CA: {}", server.paths.root_pem.display());
            if let Some(token) = &server.admin_token {
                println!("admin token (shown once, store it now): {token}");
            }
            server.wait_for_signal().await;
        }
        Command::Config {
            command: ConfigCommand::Check { config },
        } => {
            ServerConfig::from_file(&config)?;
            println!("{}: ok", config.display());
        }
        Command::Token {
            command:
                TokenCommand::Create {
                    host,
                    tenant,
                    scopes,
                    name,
                    expires_in,
                },
        } => {
            let scopes = ScopeSet::parse_list(&scopes)?;
            let admin = trustbox_server::open_services(&host.config())
                .await?
                .administration;
            let token = admin
                .mint_token_on_host(
                    &tenant,
                    &name,
                    scopes,
                    "host:trustbox-token-create",
                    expires_in,
                )
                .await
                .context("token create")?;
            println!("{}", token.secret);
        }
        Command::Audit {
            command:
                AuditCommand::Verify {
                    host,
                    tenant,
                    checkpoints,
                },
        } => {
            let anchors: Vec<trustbox_authority::ExportedCheckpoint> = match &checkpoints {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    let file: trustbox_authority::CheckpointFile = serde_json::from_str(&text)
                        .with_context(|| format!("{} is not a checkpoint file", path.display()))?;
                    anyhow::ensure!(
                        file.format == trustbox_authority::CHECKPOINT_FORMAT,
                        "{}: unknown format {:?}",
                        path.display(),
                        file.format
                    );
                    file.checkpoints
                }
                None => Vec::new(),
            };
            let admin = trustbox_server::open_services(&host.config())
                .await?
                .administration;
            let tenants = admin.host_tenants().await?;
            let mut broken = false;
            for t in tenants
                .iter()
                .filter(|t| tenant.as_ref().is_none_or(|n| *n == t.name))
            {
                match admin.verify_tenant_chain_against(t.id, &anchors).await? {
                    Ok(r) => println!(
                        "tenant {}: ok ({} events, {} checkpoints, {} certificates)",
                        t.name, r.events, r.checkpoints, r.certificates
                    ),
                    Err(brk) => {
                        broken = true;
                        println!(
                            "tenant {}: BROKEN at event seq {}: {}",
                            t.name, brk.seq, brk.reason
                        );
                    }
                }
            }
            // anchors of a tenant that no longer exists are a break too
            for a in &anchors {
                if !tenants.iter().any(|t| t.id == a.tenant) {
                    broken = true;
                    println!(
                        "tenant {} ({}): BROKEN: it has exported checkpoints but is gone",
                        a.tenant_name, a.tenant
                    );
                }
            }
            if broken {
                return Ok(std::process::ExitCode::from(1));
            }
        }
        Command::Audit {
            command: AuditCommand::Checkpoint { host, command },
        } => {
            let admin = trustbox_server::open_services(&host.config())
                .await?
                .administration;
            match command {
                None => {
                    let n = admin.checkpoint_all().await?;
                    println!("{n} checkpoint(s) signed");
                }
                Some(CheckpointCommand::Export { out }) => {
                    let mut all = Vec::new();
                    for t in admin.host_tenants().await? {
                        all.extend(admin.export_checkpoints(t.id).await?);
                    }
                    let file = trustbox_authority::CheckpointFile {
                        format: trustbox_authority::CHECKPOINT_FORMAT.into(),
                        checkpoints: all,
                    };
                    let text = serde_json::to_string_pretty(&file)?;
                    if out.as_os_str() == "-" {
                        println!("{text}");
                    } else {
                        std::fs::write(&out, text + "\n")
                            .with_context(|| format!("writing {}", out.display()))?;
                        eprintln!(
                            "{} checkpoint(s) written to {}",
                            file.checkpoints.len(),
                            out.display()
                        );
                    }
                }
            }
        }
        Command::Cert { api, command } => return client_cmds::cert(api, command).await,
        Command::Ca { api, command } => return client_cmds::ca(api, command).await,
        Command::Job { api, command } => return client_cmds::job(api, command).await,
        Command::Bench { command } => bench::run(command).await?,
    }
    Ok(std::process::ExitCode::SUCCESS)
}

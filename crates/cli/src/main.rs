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
        if let Some(v) = self.public_url {
            cfg.public_url = Some(v);
        }
        if let Some(v) = self.root_key_algorithm {
            cfg.root_key_algorithm = v;
        }
        if let Some(v) = self.issuing_key_algorithm {
            cfg.issuing_key_algorithm = v;
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
}

impl HostArgs {
    fn config(&self) -> ServerConfig {
        ServerConfig {
            data_dir: self.data_dir.clone(),
            database: self.database.clone(),
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
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Verify the hash chain of every tenant (or one) and name the first broken event.
    Verify {
        #[command(flatten)]
        host: HostArgs,
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
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
                },
        } => {
            let scopes = ScopeSet::parse_list(&scopes)?;
            let authority = trustbox_server::open_authority(&host.config()).await?;
            let token = authority
                .mint_token_on_host(&tenant, &name, scopes, "host:trustbox-token-create")
                .await
                .context("token create")?;
            println!("{}", token.secret);
        }
        Command::Audit {
            command: AuditCommand::Verify { host, tenant },
        } => {
            let authority = trustbox_server::open_authority(&host.config()).await?;
            let tenants = authority.store().list_tenants().await?;
            let mut broken = false;
            for t in tenants
                .iter()
                .filter(|t| tenant.as_ref().is_none_or(|n| *n == t.name))
            {
                match authority.verify_tenant_chain(t.id).await? {
                    Ok(n) => println!("tenant {}: ok ({n} events)", t.name),
                    Err(brk) => {
                        broken = true;
                        println!(
                            "tenant {}: BROKEN at event seq {}: {}",
                            t.name, brk.seq, brk.reason
                        );
                    }
                }
            }
            if broken {
                return Ok(std::process::ExitCode::from(1));
            }
        }
        Command::Cert { api, command } => return client_cmds::cert(api, command).await,
        Command::Ca { api, command } => return client_cmds::ca(api, command).await,
        Command::Bench { command } => bench::run(command).await?,
    }
    Ok(std::process::ExitCode::SUCCESS)
}

//! Test helpers: servers in temporary data directories on free loopback ports, the engines
//! to run them on, CSR makers, and wrappers for the real peer tools (openssl, curl).
//!
//! Every helper bounds its time and cleans up what it started, also when a test fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use trustbox_client::Client;
use trustbox_server::{RunningServer, ServerConfig};

/// A store engine to run a server on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Engine {
    /// SQLite in the data directory.
    Sqlite,
    /// PostgreSQL at this URL (a fresh schema).
    Postgres(String),
}

/// SQLite always, and PostgreSQL when `TRUSTBOX_TEST_DATABASE_URL` is set (required in CI).
pub async fn engines() -> Vec<Engine> {
    let mut out = vec![Engine::Sqlite];
    if let Some(url) = trustbox_store_postgres::testing::fresh_schema_url().await {
        out.push(Engine::Postgres(url));
    }
    out
}

/// A server running in-process on 127.0.0.1:0 with its own temporary data directory.
pub struct TestServer {
    /// The data directory (removed on drop).
    pub dir: tempfile::TempDir,
    /// The running server.
    pub server: Option<RunningServer>,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// `http://127.0.0.1:PORT` of the relying-party listener (CRLs, OCSP, CA certificates).
    pub http_url: Option<String>,
    /// The root CA, PEM.
    pub root_pem: Vec<u8>,
    /// The bootstrap admin token.
    pub admin_token: String,
    /// The configuration it was started with.
    pub config: ServerConfig,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("url", &self.url)
            .field("http_url", &self.http_url)
            .field("server", &self.server)
            .field("admin_token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl TestServer {
    /// Starts a server on `engine`.
    pub async fn start(engine: &Engine) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let config = ServerConfig {
            data_dir: dir.path().join("data"),
            listen: "127.0.0.1:0".parse()?,
            http_listen: Some("127.0.0.1:0".parse()?),
            database: match engine {
                Engine::Sqlite => None,
                Engine::Postgres(url) => Some(url.clone()),
            },
            ..ServerConfig::default()
        };
        Self::start_with(dir, config).await
    }

    /// Starts a server on `engine` whose ACME challenge validation resolves names through
    /// the DNS server `resolver` (a [`ChallTestSrv`]).
    pub async fn start_acme(
        engine: &Engine,
        resolver: std::net::SocketAddr,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let config = ServerConfig {
            data_dir: dir.path().join("data"),
            listen: "127.0.0.1:0".parse()?,
            http_listen: Some("127.0.0.1:0".parse()?),
            database: match engine {
                Engine::Sqlite => None,
                Engine::Postgres(url) => Some(url.clone()),
            },
            acme_resolver: vec![resolver],
            ..ServerConfig::default()
        };
        Self::start_with(dir, config).await
    }

    /// Starts a server with `config` (its data directory inside `dir`).
    pub async fn start_with(dir: tempfile::TempDir, config: ServerConfig) -> anyhow::Result<Self> {
        let server = tokio::time::timeout(
            Duration::from_secs(60),
            trustbox_server::start(config.clone()),
        )
        .await??;
        let url = format!("https://{}", server.addr);
        let http_url = server.http_addr.map(|a| format!("http://{a}"));
        let root_pem = std::fs::read(&server.paths.root_pem)?;
        let admin_token = server
            .admin_token
            .clone()
            .ok_or_else(|| anyhow::anyhow!("a fresh data directory must yield an admin token"))?;
        Ok(Self {
            dir,
            server: Some(server),
            url,
            http_url,
            root_pem,
            admin_token,
            config,
        })
    }

    /// A client with the admin token.
    pub fn admin(&self) -> anyhow::Result<Client> {
        self.client(Some(self.admin_token.clone()))
    }

    /// A client with `token`.
    pub fn client(&self, token: Option<String>) -> anyhow::Result<Client> {
        Ok(Client::new(&self.url, Some(&self.root_pem), token)?
            .with_timeout(Duration::from_secs(30)))
    }

    /// Creates an ACME provisioner from `body` (the REST API's fields) as the admin; an
    /// error unless it was created.
    pub async fn create_acme_provisioner(&self, body: &serde_json::Value) -> anyhow::Result<()> {
        let r = self
            .admin()?
            .post_json("/api/v1/acme/provisioners", body)
            .await?;
        anyhow::ensure!(r.status == 201, "provisioner {body}: {}", r.text());
        Ok(())
    }

    /// The inventory entry of the (first) certificate in the PEM file `pem`, found by its
    /// serial (read with openssl, off the runtime's worker threads: needs the multi-thread
    /// runtime).
    pub async fn inventory_entry(&self, pem: &str) -> anyhow::Result<serde_json::Value> {
        let out = tokio::task::block_in_place(|| {
            run(
                "openssl",
                &["x509", "-noout", "-serial", "-in", pem],
                Duration::from_secs(30),
            )
        })?;
        anyhow::ensure!(out.ok(), "openssl x509 -serial: {}", out.stderr);
        let serial = out
            .stdout
            .trim()
            .trim_start_matches("serial=")
            .to_ascii_lowercase();
        let list = self
            .admin()?
            .get("/api/v1/certificates?limit=1000")
            .await?
            .json()?;
        list["items"]
            .as_array()
            .and_then(|a| {
                a.iter().find(|c| {
                    c["serial"]
                        .as_str()
                        .map(|x| x.to_ascii_lowercase().trim_start_matches('0').to_owned())
                        == Some(serial.trim_start_matches('0').to_owned())
                })
            })
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("serial {serial} is not in the inventory"))
    }

    /// Path of the root CA PEM.
    pub fn root_pem_path(&self) -> PathBuf {
        self.config.data_dir.join("ca").join("root.pem")
    }

    /// Path of the SQLite database.
    pub fn database_path(&self) -> PathBuf {
        self.config.data_dir.join("trustbox.db")
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound and released: another process may take it, so
/// use it at once).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `pebble-challtestsrv` (Debian's `pebble` package) as a DNS server for ACME tests: every
/// A query is answered 127.0.0.1 (no AAAA), and TXT records are set through its management
/// API. Listens on free loopback ports; the process is killed (by pid) on drop.
pub struct ChallTestSrv {
    child: std::process::Child,
    /// The DNS server (UDP and TCP).
    pub dns: std::net::SocketAddr,
    /// `http://127.0.0.1:PORT` of the management API.
    pub management: String,
}

impl ChallTestSrv {
    /// Starts it and waits (bounded) until it answers.
    pub fn start() -> anyhow::Result<Self> {
        let dns_port = {
            let udp = std::net::UdpSocket::bind("127.0.0.1:0")?;
            udp.local_addr()?.port()
        };
        let mgmt_port = free_port()?;
        let dns: std::net::SocketAddr = format!("127.0.0.1:{dns_port}").parse()?;
        let child = Command::new("pebble-challtestsrv")
            .args([
                "-dns01",
                &dns.to_string(),
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-management",
                &format!("127.0.0.1:{mgmt_port}"),
                "-defaultIPv4",
                "127.0.0.1",
                "-defaultIPv6",
                "",
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!("pebble-challtestsrv could not start (apt-get install pebble): {e}")
            })?;
        let srv = Self {
            child,
            dns,
            management: format!("http://127.0.0.1:{mgmt_port}"),
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", mgmt_port)).is_err() {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "pebble-challtestsrv did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(srv)
    }

    /// Serves TXT `value` at `host` (a name without the trailing dot).
    pub fn set_txt(&self, host: &str, value: &str) -> anyhow::Result<()> {
        let body = serde_json::json!({ "host": format!("{host}."), "value": value }).to_string();
        let out = run(
            "curl",
            &["-sSf", "-d", &body, &format!("{}/set-txt", self.management)],
            Duration::from_secs(10),
        )?;
        anyhow::ensure!(out.ok(), "set-txt: {}", out.stderr);
        Ok(())
    }
}

impl Drop for ChallTestSrv {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A second replica of `primary` on the PostgreSQL `database` (often the primary's own
/// URL): its own data directory holding a copy of the primary's KEK, in-process on free
/// loopback ports. Keep the directory alive as long as the replica runs.
pub async fn start_replica(
    primary: &TestServer,
    database: String,
) -> anyhow::Result<(tempfile::TempDir, RunningServer)> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data)?;
    std::fs::copy(
        primary.config.data_dir.join("kek.key"),
        data.join("kek.key"),
    )?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))?;
        std::fs::set_permissions(data.join("kek.key"), std::fs::Permissions::from_mode(0o600))?;
    }
    let config = ServerConfig {
        data_dir: data,
        listen: "127.0.0.1:0".parse()?,
        http_listen: Some("127.0.0.1:0".parse()?),
        database: Some(database),
        ..ServerConfig::default()
    };
    let server =
        tokio::time::timeout(Duration::from_secs(60), trustbox_server::start(config)).await??;
    Ok((dir, server))
}

/// A CSR (PEM) for `sans` with a fresh P-256 key and no subject, made with rcgen.
pub fn rcgen_csr(sans: &[&str]) -> String {
    let key =
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key generation");
    let mut params =
        rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("valid SANs");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .serialize_request(&key)
        .expect("CSR")
        .pem()
        .expect("PEM")
}

/// Output of a finished peer command.
#[derive(Debug)]
pub struct Output {
    /// Exit status code (-1 when killed by a signal or timed out).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// Whether it exited 0.
    pub fn ok(&self) -> bool {
        self.code == 0
    }
}

/// Runs `program args` with a time bound; kills exactly the process it started on timeout.
pub fn run(program: &str, args: &[&str], timeout: Duration) -> anyhow::Result<Output> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| anyhow::anyhow!("{program} could not start (is it installed?): {e}"))?;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("{program} {args:?} timed out after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output()?;
    Ok(Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// `openssl req` making a key (`-newkey spec`, e.g. `ec -pkeyopt ec_paramgen_curve:P-256`
/// or `rsa:2048`) and a CSR with `subj` and `-addext subjectAltName=...`; returns the CSR
/// path.
pub fn openssl_csr(
    dir: &Path,
    name: &str,
    newkey: &[&str],
    subj: &str,
    san: Option<&str>,
) -> anyhow::Result<PathBuf> {
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    let key_s = key.to_string_lossy().into_owned();
    let csr_s = csr.to_string_lossy().into_owned();
    let mut args: Vec<&str> = vec!["req", "-new", "-nodes", "-newkey"];
    args.extend_from_slice(newkey);
    args.extend_from_slice(&["-keyout", &key_s, "-out", &csr_s, "-subj", subj]);
    let san_arg;
    if let Some(s) = san {
        san_arg = format!("subjectAltName={s}");
        args.extend_from_slice(&["-addext", &san_arg]);
    }
    let out = run("openssl", &args, Duration::from_secs(60))?;
    anyhow::ensure!(out.ok(), "openssl req failed: {}", out.stderr);
    Ok(csr)
}

/// Issues a certificate for `NAME.example.com` from a fresh P-256 key made by `openssl`,
/// through the REST API as `client` (from `issuer`, or the tenant's default when `None`).
/// Writes `NAME.pem` and `NAME.chain.pem` into `dir`; returns the API's JSON and the path of
/// the certificate. Runs the peer tool with `block_in_place` (multi-threaded runtime), so
/// an in-process server on the same runtime keeps running meanwhile.
pub async fn issue_with_openssl_csr(
    client: &Client,
    dir: &std::path::Path,
    name: &str,
    issuer: Option<&str>,
) -> anyhow::Result<(serde_json::Value, PathBuf)> {
    let csr = tokio::task::block_in_place(|| {
        openssl_csr(
            dir,
            name,
            &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            &format!("/CN={name}.example.com"),
            Some(&format!("DNS:{name}.example.com")),
        )
    })?;
    let mut body = serde_json::json!({ "csr": std::fs::read_to_string(csr)? });
    if let Some(i) = issuer {
        body["issuer"] = serde_json::json!(i);
    }
    let r = client.post_json("/api/v1/certificates", &body).await?;
    anyhow::ensure!(r.status == 201, "issue {name}: {}", r.text());
    let v = r.json()?;
    let pem = dir.join(format!("{name}.pem"));
    std::fs::write(&pem, v["certificate"].as_str().unwrap_or_default())?;
    std::fs::write(
        dir.join(format!("{name}.chain.pem")),
        v["chain"].as_str().unwrap_or_default(),
    )?;
    Ok((v, pem))
}

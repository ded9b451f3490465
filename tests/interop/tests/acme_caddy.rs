//! ACME against Caddy (Debian's package, 2.6.x) configured the way its users do it: a
//! Caddyfile naming the CA's directory and root in its global options and one site;
//! Caddy obtains the site's certificate by itself and serves it, once from a provisioner
//! offering only http-01 and once from one offering only tls-alpn-01 (Caddy solves on its
//! own http and https ports; names resolve through a pebble-challtestsrv DNS server); on
//! both engines, the served certificate verifies against the root and is in the inventory
//! with its ACME metadata.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use trustbox_testkit::{engines, free_port, run, ChallTestSrv, Output, TestServer};

const T: Duration = Duration::from_secs(60);
/// How long Caddy may take to obtain its certificate and serve the site.
const SERVE_WITHIN: Duration = Duration::from_secs(90);
const SITE: &str = "site.example.test";
const BODY: &str = "hello from caddy";

/// Runs a peer tool off the runtime's worker threads, so the in-process server keeps
/// serving meanwhile.
fn blocking(program: &str, args: &[&str]) -> anyhow::Result<Output> {
    tokio::task::block_in_place(|| run(program, args, T))
}

fn ensure_ok(what: &str, out: &Output) -> anyhow::Result<()> {
    anyhow::ensure!(out.ok(), "{what}: {}{}", out.stdout, out.stderr);
    Ok(())
}

/// `caddy run` as a child process, its output in `log`; killed (by pid) on drop, also when
/// the test fails.
struct Caddy {
    child: Child,
    log: std::path::PathBuf,
}

impl Caddy {
    /// Starts `caddy run --config CADDYFILE --adapter caddyfile` with HOME and the XDG
    /// directories inside `dir`.
    fn start(dir: &Path, caddyfile: &Path) -> anyhow::Result<Self> {
        let log = dir.join("caddy.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new("caddy")
            .args(["run", "--config"])
            .arg(caddyfile)
            .args(["--adapter", "caddyfile"])
            .env("HOME", dir)
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("XDG_DATA_HOME", dir.join("data"))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .map_err(|e| anyhow::anyhow!("caddy could not start (apt-get install caddy): {e}"))?;
        Ok(Self { child, log })
    }

    /// What Caddy logged so far.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The PEM certificates in `text`, in order.
fn pem_blocks(text: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    text.split("-----BEGIN CERTIFICATE-----")
        .skip(1)
        .filter_map(|b| {
            b.find(END)
                .map(|i| format!("-----BEGIN CERTIFICATE-----{}{END}\n", &b[..i]))
        })
        .collect()
}

/// Caddy obtains and serves the site's certificate from a provisioner offering only
/// `challenge`, on the same ports Caddy solves on.
async fn caddy_serves_with(
    s: &TestServer,
    engine: &trustbox_testkit::Engine,
    challenge: &str,
) -> anyhow::Result<()> {
    let name = format!("caddy-{}", challenge.trim_end_matches("-01"));
    let (http_port, https_port) = (free_port()?, free_port()?);
    s.create_acme_provisioner(&serde_json::json!({
        "name": name,
        "challenges": [challenge],
        "http01_port": http_port,
        "tls_alpn01_port": https_port,
    }))
    .await?;
    let work = tempfile::tempdir()?;
    let root = s.root_pem_path().to_string_lossy().into_owned();
    // the global options a Caddy user sets for a private CA: its directory and root,
    // the ports the CA validates on (Caddy's challenge solvers use the same), storage
    // and no admin endpoint; default_bind keeps every listener on loopback, and
    // skip_install_trust keeps Caddy's own local CA out of the system trust store
    let caddyfile = work.path().join("Caddyfile");
    std::fs::write(
        &caddyfile,
        format!(
            "{{\n\
             \tacme_ca {url}/acme/{name}/directory\n\
             \tacme_ca_root {root}\n\
             \thttp_port {http_port}\n\
             \thttps_port {https_port}\n\
             \tdefault_bind 127.0.0.1\n\
             \tadmin off\n\
             \tskip_install_trust\n\
             \tstorage file_system {storage}\n\
             }}\n\n\
             {SITE} {{\n\
             \trespond \"{BODY}\"\n\
             }}\n",
            url = s.url,
            storage = work.path().join("caddy").display(),
        ),
    )?;
    let caddy = Caddy::start(work.path(), &caddyfile)?;
    let what = format!("{engine:?} {challenge}");

    // Caddy obtains the certificate in the background; the site answers once it has
    let resolve = format!("{SITE}:{https_port}:127.0.0.1");
    let site = format!("https://{SITE}:{https_port}/");
    let deadline = Instant::now() + SERVE_WITHIN;
    loop {
        let out = blocking(
            "curl",
            &[
                "-sS",
                "--max-time",
                "5",
                "--cacert",
                &root,
                "--resolve",
                &resolve,
                &site,
            ],
        )?;
        if out.ok() && out.stdout == BODY {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{what}: caddy did not serve {site} within {SERVE_WITHIN:?}: {}{}\n\
             caddy log:\n{}",
            out.stdout,
            out.stderr,
            caddy.log()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // the certificate it serves: issued by us, for the site, with ACME metadata
    let connect = format!("127.0.0.1:{https_port}");
    let out = blocking(
        "openssl",
        &[
            "s_client",
            "-connect",
            &connect,
            "-servername",
            SITE,
            "-showcerts",
        ],
    )?;
    let certs = pem_blocks(&out.stdout);
    anyhow::ensure!(
        !certs.is_empty(),
        "{what}: openssl s_client: {}{}",
        out.stdout,
        out.stderr
    );
    let leaf = work.path().join("served.pem");
    let chain = work.path().join("served-chain.pem");
    std::fs::write(&leaf, &certs[0])?;
    std::fs::write(&chain, certs[1..].concat())?;
    let (leaf, chain) = (
        leaf.to_string_lossy().into_owned(),
        chain.to_string_lossy().into_owned(),
    );
    let out = blocking(
        "openssl",
        &["verify", "-CAfile", &root, "-untrusted", &chain, &leaf],
    )?;
    ensure_ok(&format!("{what}: openssl verify"), &out)?;
    let entry = s.inventory_entry(&leaf).await?;
    assert_eq!(entry["source"], "acme", "{entry}");
    assert_eq!(entry["status"], "valid", "{entry}");
    assert_eq!(entry["sans"], serde_json::json!([format!("dns:{SITE}")]));
    assert_eq!(entry["enrollment"]["label"], name, "{entry}");
    assert!(entry["enrollment"]["account"].is_string(), "{entry}");
    assert!(entry["enrollment"]["order"].is_string(), "{entry}");

    assert!(
        caddy
            .log()
            .contains(&format!("\"challenge_type\":\"{challenge}\"")),
        "{what}: caddy solved another challenge:\n{}",
        caddy.log()
    );
    drop(caddy);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_obtains_and_serves_a_certificate() -> anyhow::Result<()> {
    let dns = ChallTestSrv::start()?;
    for engine in engines().await {
        let s = TestServer::start_acme(&engine, dns.dns).await?;
        // Caddy tries both; each provisioner offers one, so each is covered every run
        for challenge in ["http-01", "tls-alpn-01"] {
            caddy_serves_with(&s, &engine, challenge).await?;
        }
        s.stop().await;
    }
    Ok(())
}

//! ACME against the real client: certbot (Debian's package) registers an account with the
//! `default` provisioner, reads it back, changes its e-mail and deactivates it; the
//! directory and nonces as curl sees them; and certbot issues with http-01 (its standalone
//! server on a free port, names resolved through a pebble-challtestsrv DNS server), renews
//! and revokes, on both engines, each chain verified by openssl and found in the inventory
//! with its ACME metadata.

use std::time::Duration;
use trustbox_testkit::{engines, free_port, run, ChallTestSrv, TestServer};

const T: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certbot_registers_and_reads_back_an_account() -> anyhow::Result<()> {
    for engine in engines().await {
        let s = TestServer::start(&engine).await?;
        let work = tempfile::tempdir()?;
        let root = s.root_pem_path();
        let root_s = root.to_string_lossy().into_owned();
        let directory = format!("{}/acme/default/directory", s.url);

        // the directory and a nonce, as any HTTP client sees them
        let out = run("curl", &["-sS", "--cacert", &root_s, &directory], T)?;
        anyhow::ensure!(out.ok(), "curl: {}", out.stderr);
        let d: serde_json::Value = serde_json::from_str(&out.stdout)?;
        assert_eq!(
            d["newAccount"],
            format!("{}/acme/default/new-account", s.url)
        );
        assert_eq!(d["meta"]["externalAccountRequired"], false);
        let out = run(
            "curl",
            &[
                "-sS",
                "-I",
                "--cacert",
                &root_s,
                d["newNonce"].as_str().unwrap_or_default(),
            ],
            T,
        )?;
        assert!(
            out.stdout.to_ascii_lowercase().contains("replay-nonce:"),
            "{}",
            out.stdout
        );
        let out = run(
            "curl",
            &[
                "-sS",
                "--cacert",
                &root_s,
                &format!("{}/acme/nowhere/directory", s.url),
            ],
            T,
        )?;
        assert!(
            out.stdout.contains("urn:ietf:params:acme:error:malformed"),
            "{}",
            out.stdout
        );

        let dirs = |sub: &str| work.path().join(sub).to_string_lossy().into_owned();
        let (config, workdir, logs) = (dirs("config"), dirs("work"), dirs("logs"));
        let bundle = format!("REQUESTS_CA_BUNDLE={root_s}");
        let certbot = |args: &[&str]| {
            let mut all = vec![
                bundle.as_str(),
                "certbot",
                "--non-interactive",
                "--server",
                &directory,
                "--config-dir",
                &config,
                "--work-dir",
                &workdir,
                "--logs-dir",
                &logs,
            ];
            all.extend_from_slice(args);
            run("env", &all, T)
        };
        let out = certbot(&[
            "register",
            "--agree-tos",
            "-m",
            "ops@example.com",
            "--no-eff-email",
        ])?;
        anyhow::ensure!(
            out.ok(),
            "{engine:?}: certbot register: {}{}",
            out.stdout,
            out.stderr
        );
        let out = certbot(&["show_account"])?;
        anyhow::ensure!(
            out.ok(),
            "{engine:?}: certbot show_account: {}{}",
            out.stdout,
            out.stderr
        );
        let shown = format!("{}{}", out.stdout, out.stderr);
        assert!(shown.contains("/acme/default/account/"), "{shown}");
        assert!(shown.contains("ops@example.com"), "{shown}");

        // contact update, then deactivation (certbot unregister)
        let out = certbot(&["update_account", "-m", "pki@example.com"])?;
        anyhow::ensure!(
            out.ok(),
            "{engine:?}: certbot update_account: {}{}",
            out.stdout,
            out.stderr
        );
        let out = certbot(&["show_account"])?;
        let shown = format!("{}{}", out.stdout, out.stderr);
        assert!(shown.contains("pki@example.com"), "{shown}");
        let out = certbot(&["unregister"])?;
        anyhow::ensure!(
            out.ok(),
            "{engine:?}: certbot unregister: {}{}",
            out.stdout,
            out.stderr
        );

        // registration, update and deactivation are audited as the account, in the
        // default tenant's chain
        let audit = s.admin()?.get("/api/v1/audit?limit=1000").await?.json()?;
        assert!(
            audit["items"]
                .as_array()
                .is_some_and(|a| a.iter().any(|e| e["action"] == "acme.account.create"
                    && e["actor"]
                        .as_str()
                        .is_some_and(|x| x.starts_with("acme-account:")))),
            "no acme.account.create event"
        );
        for action in ["acme.account.update", "acme.account.deactivate"] {
            assert!(
                audit["items"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|e| e["action"] == action)),
                "no {action} event"
            );
        }
        s.stop().await;
    }
    Ok(())
}

/// certbot with its directories under `work`, talking to `directory`, trusting `root`.
struct Certbot {
    config: String,
    workdir: String,
    logs: String,
    bundle: String,
    directory: String,
}

impl Certbot {
    fn new(work: &std::path::Path, root: &str, directory: &str) -> Self {
        let dir = |sub: &str| work.join(sub).to_string_lossy().into_owned();
        Self {
            config: dir("config"),
            workdir: dir("work"),
            logs: dir("logs"),
            bundle: format!("REQUESTS_CA_BUNDLE={root}"),
            directory: directory.to_owned(),
        }
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<trustbox_testkit::Output> {
        let mut all = vec![
            self.bundle.as_str(),
            "certbot",
            "--non-interactive",
            "--server",
            &self.directory,
            "--config-dir",
            &self.config,
            "--work-dir",
            &self.workdir,
            "--logs-dir",
            &self.logs,
        ];
        all.extend_from_slice(args);
        run("env", &all, T)
    }

    fn live(&self, name: &str, file: &str) -> String {
        format!("{}/live/{name}/{file}", self.config)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certbot_issues_renews_and_revokes_with_http01() -> anyhow::Result<()> {
    let dns = ChallTestSrv::start()?;
    for engine in engines().await {
        let s = TestServer::start_acme(&engine, dns.dns).await?;
        let port = free_port()?;
        s.create_acme_provisioner(&serde_json::json!({ "name": "certbot", "http01_port": port }))
            .await?;
        let work = tempfile::tempdir()?;
        let root = s.root_pem_path().to_string_lossy().into_owned();
        let cb = Certbot::new(
            work.path(),
            &root,
            &format!("{}/acme/certbot/directory", s.url),
        );
        let port_s = port.to_string();
        let name = "web.example.test";
        let issue = |extra: &[&str]| {
            let mut args = vec![
                "certonly",
                "--agree-tos",
                "-m",
                "ops@example.com",
                "--no-eff-email",
                "--standalone",
                "--http-01-port",
                &port_s,
                "--http-01-address",
                "127.0.0.1",
                "-d",
                name,
            ];
            args.extend_from_slice(extra);
            cb.run(&args)
        };
        let out = issue(&[])?;
        anyhow::ensure!(
            out.ok(),
            "{engine:?}: certbot certonly: {}{}",
            out.stdout,
            out.stderr
        );
        let cert = cb.live(name, "cert.pem");
        let chain = cb.live(name, "chain.pem");
        let out = run(
            "openssl",
            &["verify", "-CAfile", &root, "-untrusted", &chain, &cert],
            T,
        )?;
        anyhow::ensure!(
            out.ok(),
            "{engine:?}: openssl verify: {}{}",
            out.stdout,
            out.stderr
        );
        let first = s.inventory_entry(&cert).await?;
        assert_eq!(first["source"], "acme", "{first}");
        assert_eq!(first["sans"], serde_json::json!(["dns:web.example.test"]));
        assert_eq!(first["enrollment"]["label"], "certbot", "{first}");
        assert!(first["enrollment"]["account"].is_string(), "{first}");
        assert!(first["enrollment"]["order"].is_string(), "{first}");

        // renewal: a new order, a new certificate for the same name
        let out = cb.run(&["renew", "--force-renewal", "--no-random-sleep-on-renew"])?;
        anyhow::ensure!(
            out.ok(),
            "{engine:?}: certbot renew: {}{}",
            out.stdout,
            out.stderr
        );
        let renewed = s.inventory_entry(&cert).await?;
        assert_ne!(
            renewed["id"], first["id"],
            "renewal issued a new certificate"
        );
        assert_eq!(
            renewed["enrollment"]["account"],
            first["enrollment"]["account"]
        );
        let out = run(
            "openssl",
            &["verify", "-CAfile", &root, "-untrusted", &chain, &cert],
            T,
        )?;
        anyhow::ensure!(
            out.ok(),
            "{engine:?}: openssl verify renewed: {}",
            out.stdout
        );

        // revocation signed by the account key
        let out = cb.run(&[
            "revoke",
            "--cert-path",
            &cert,
            "--reason",
            "keycompromise",
            "--no-delete-after-revoke",
        ])?;
        anyhow::ensure!(
            out.ok(),
            "{engine:?}: certbot revoke: {}{}",
            out.stdout,
            out.stderr
        );
        let revoked = s.inventory_entry(&cert).await?;
        assert_eq!(revoked["status"], "revoked", "{revoked}");
        assert_eq!(revoked["revocation_reason"], "keyCompromise", "{revoked}");
        let audit = s.admin()?.get("/api/v1/audit?limit=1000").await?.json()?;
        let account = first["enrollment"]["account"].as_str().unwrap_or_default();
        assert!(
            audit["items"].as_array().is_some_and(|a| a.iter().any(|e| {
                e["action"] == "certificate.issue"
                    && e["actor"] == format!("acme-account:{account}")
            })),
            "issuance is audited as the ACME account"
        );
        s.stop().await;
    }
    Ok(())
}

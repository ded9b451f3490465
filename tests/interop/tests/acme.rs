//! ACME against the real client: certbot (Debian's package) registers an account with the
//! `default` provisioner, reads it back, changes its e-mail and deactivates it; the
//! directory and nonces as curl sees them.
//! Orders, challenges and issuance over ACME are not served yet.

use std::time::Duration;
use trustbox_testkit::{engines, run, TestServer};

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

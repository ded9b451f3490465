//! ACME against lego (Debian's package, 4.9.x): issuance with http-01 and revocation by
//! the account, issuance with tls-alpn-01, external account binding on a provisioner that
//! requires it (refused without, bound with a key, refused with a revoked key), and a
//! wildcard with dns-01 through lego's `exec` provider writing TXT records into a
//! pebble-challtestsrv DNS server; on both engines, each chain verified by openssl and
//! found in the inventory with its ACME metadata.

use std::path::Path;
use std::time::Duration;
use trustbox_testkit::{engines, free_port, run, ChallTestSrv, Output, TestServer};

const T: Duration = Duration::from_secs(120);

/// Runs a peer tool off the runtime's worker threads, so the in-process server keeps
/// serving meanwhile.
fn blocking(program: &str, args: &[&str]) -> anyhow::Result<Output> {
    tokio::task::block_in_place(|| run(program, args, T))
}

/// lego with its data under `path`, talking to `directory`, trusting `root`.
struct Lego {
    path: String,
    directory: String,
    ca: String,
    email: String,
}

impl Lego {
    fn new(path: &Path, root: &str, directory: &str) -> Self {
        Self {
            path: path.to_string_lossy().into_owned(),
            directory: directory.to_owned(),
            ca: format!("LEGO_CA_CERTIFICATES={root}"),
            email: "ops@example.test".to_owned(),
        }
    }

    /// `env LEGO_CA_CERTIFICATES=root ENV.. lego GLOBAL.. ARGS..` (global flags first,
    /// then the command and its flags, as lego's CLI wants them).
    fn run(&self, env: &[&str], args: &[&str]) -> anyhow::Result<Output> {
        let mut all = vec![self.ca.as_str()];
        all.extend_from_slice(env);
        all.extend_from_slice(&[
            "lego",
            "--server",
            &self.directory,
            "--email",
            &self.email,
            "--accept-tos",
            "--path",
            &self.path,
        ]);
        all.extend_from_slice(args);
        blocking("env", &all)
    }

    /// The certificate lego stored for `domain` (leaf first, then the issuers).
    fn cert(&self, domain: &str) -> String {
        format!(
            "{}/certificates/{}.crt",
            self.path,
            domain.replace('*', "_")
        )
    }

    /// The issuer certificates lego stored for `domain`.
    fn issuer(&self, domain: &str) -> String {
        format!(
            "{}/certificates/{}.issuer.crt",
            self.path,
            domain.replace('*', "_")
        )
    }
}

fn ensure_ok(what: &str, out: &Output) -> anyhow::Result<()> {
    anyhow::ensure!(out.ok(), "{what}: {}{}", out.stdout, out.stderr);
    Ok(())
}

/// Checks what lego stored for `domain`: the chain verifies against `root`, and the
/// certificate is in the inventory as an ACME enrollment of provisioner `label` carrying
/// `sans`. Returns the inventory entry.
async fn check_issued(
    s: &TestServer,
    lego: &Lego,
    root: &str,
    domain: &str,
    label: &str,
    sans: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let (cert, issuer) = (lego.cert(domain), lego.issuer(domain));
    let out = blocking(
        "openssl",
        &["verify", "-CAfile", root, "-untrusted", &issuer, &cert],
    )?;
    ensure_ok("openssl verify", &out)?;
    let entry = s.inventory_entry(&cert).await?;
    assert_eq!(entry["source"], "acme", "{entry}");
    assert_eq!(entry["status"], "valid", "{entry}");
    assert_eq!(entry["sans"], sans, "{entry}");
    assert_eq!(entry["enrollment"]["label"], label, "{entry}");
    assert!(entry["enrollment"]["account"].is_string(), "{entry}");
    assert!(entry["enrollment"]["order"].is_string(), "{entry}");
    Ok(entry)
}

/// Whether the audit log holds a `certificate.issue` event by ACME account `account`.
async fn issuance_audited_as(s: &TestServer, account: &serde_json::Value) -> anyhow::Result<bool> {
    let audit = s.admin()?.get("/api/v1/audit?limit=1000").await?.json()?;
    let actor = format!("acme-account:{}", account.as_str().unwrap_or_default());
    Ok(audit["items"].as_array().is_some_and(|a| {
        a.iter()
            .any(|e| e["action"] == "certificate.issue" && e["actor"] == actor)
    }))
}

/// A new EAB key of the provisioner whose keys are at `keys`: (kid, HMAC key).
async fn new_eab_key(s: &TestServer, keys: &str, label: &str) -> anyhow::Result<(String, String)> {
    let r = s
        .admin()?
        .post_json(keys, &serde_json::json!({ "label": label }))
        .await?;
    anyhow::ensure!(r.status == 201, "eab key: {}", r.text());
    let k = r.json()?;
    assert_eq!(k["status"], "active", "{k}");
    let field = |f: &str| k[f].as_str().unwrap_or_default().to_owned();
    Ok((field("kid"), field("hmac_key")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_issues_and_revokes_with_http01() -> anyhow::Result<()> {
    let dns = ChallTestSrv::start()?;
    for engine in engines().await {
        let s = TestServer::start_acme(&engine, dns.dns).await?;
        let port = free_port()?;
        s.create_acme_provisioner(&serde_json::json!({ "name": "lego", "http01_port": port }))
            .await?;
        let work = tempfile::tempdir()?;
        let root = s.root_pem_path().to_string_lossy().into_owned();
        let lego = Lego::new(
            work.path(),
            &root,
            &format!("{}/acme/lego/directory", s.url),
        );
        let listen = format!("127.0.0.1:{port}");
        let name = "a.example.test";
        let out = lego.run(
            &[],
            &["--domains", name, "--http", "--http.port", &listen, "run"],
        )?;
        ensure_ok(&format!("{engine:?}: lego run --http"), &out)?;
        let entry = check_issued(
            &s,
            &lego,
            &root,
            name,
            "lego",
            serde_json::json!(["dns:a.example.test"]),
        )
        .await?;
        assert!(
            issuance_audited_as(&s, &entry["enrollment"]["account"]).await?,
            "{engine:?}: issuance is audited as the ACME account"
        );

        // revocation signed by the account key (reason 4: superseded)
        let out = lego.run(
            &[],
            &["--domains", name, "revoke", "--reason", "4", "--keep"],
        )?;
        ensure_ok(&format!("{engine:?}: lego revoke"), &out)?;
        let revoked = s.inventory_entry(&lego.cert(name)).await?;
        assert_eq!(revoked["id"], entry["id"]);
        assert_eq!(revoked["status"], "revoked", "{revoked}");
        assert_eq!(revoked["revocation_reason"], "superseded", "{revoked}");
        s.stop().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_issues_with_tls_alpn01() -> anyhow::Result<()> {
    let dns = ChallTestSrv::start()?;
    for engine in engines().await {
        let s = TestServer::start_acme(&engine, dns.dns).await?;
        let port = free_port()?;
        s.create_acme_provisioner(&serde_json::json!({
            "name": "lego-tls",
            "tls_alpn01_port": port,
            "challenges": ["tls-alpn-01"],
        }))
        .await?;
        let work = tempfile::tempdir()?;
        let root = s.root_pem_path().to_string_lossy().into_owned();
        let lego = Lego::new(
            work.path(),
            &root,
            &format!("{}/acme/lego-tls/directory", s.url),
        );
        let listen = format!("127.0.0.1:{port}");
        let name = "b.example.test";
        let out = lego.run(
            &[],
            &["--domains", name, "--tls", "--tls.port", &listen, "run"],
        )?;
        ensure_ok(&format!("{engine:?}: lego run --tls"), &out)?;
        check_issued(
            &s,
            &lego,
            &root,
            name,
            "lego-tls",
            serde_json::json!(["dns:b.example.test"]),
        )
        .await?;
        s.stop().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_binds_its_account_with_eab() -> anyhow::Result<()> {
    let dns = ChallTestSrv::start()?;
    for engine in engines().await {
        let s = TestServer::start_acme(&engine, dns.dns).await?;
        let port = free_port()?;
        s.create_acme_provisioner(
            &serde_json::json!({ "name": "lego-eab", "http01_port": port, "eab_required": true }),
        )
        .await?;
        let keys = "/api/v1/acme/provisioners/lego-eab/eab-keys";
        let root = s.root_pem_path().to_string_lossy().into_owned();
        let directory = format!("{}/acme/lego-eab/directory", s.url);
        let listen = format!("127.0.0.1:{port}");
        let name = "eab.example.test";
        let issue = |lego: &Lego, eab: &[&str]| {
            let mut args = eab.to_vec();
            args.extend_from_slice(&["--domains", name, "--http", "--http.port", &listen, "run"]);
            lego.run(&[], &args)
        };

        // the directory says a binding is required, and lego without one registers nothing
        let out = blocking("curl", &["-sS", "--cacert", &root, &directory])?;
        ensure_ok("curl directory", &out)?;
        let d: serde_json::Value = serde_json::from_str(&out.stdout)?;
        assert_eq!(d["meta"]["externalAccountRequired"], true, "{d}");
        let without = tempfile::tempdir()?;
        let out = issue(&Lego::new(without.path(), &root, &directory), &[])?;
        let said = format!("{}{}", out.stdout, out.stderr);
        assert!(
            !out.ok(),
            "{engine:?}: lego without --eab succeeded: {said}"
        );
        assert!(
            said.contains("External Account Binding") || said.contains("externalAccountRequired"),
            "{engine:?}: lego without --eab: {said}"
        );

        // with a key: the account is bound, the key used by it
        let (kid, hmac) = new_eab_key(&s, keys, "lego").await?;
        let work = tempfile::tempdir()?;
        let lego = Lego::new(work.path(), &root, &directory);
        let out = issue(&lego, &["--eab", "--kid", &kid, "--hmac", &hmac])?;
        ensure_ok(&format!("{engine:?}: lego run --eab"), &out)?;
        let entry = check_issued(
            &s,
            &lego,
            &root,
            name,
            "lego-eab",
            serde_json::json!(["dns:eab.example.test"]),
        )
        .await?;
        let list = s.admin()?.get(keys).await?.json()?;
        let key = list["items"]
            .as_array()
            .and_then(|a| a.iter().find(|k| k["kid"] == kid.as_str()))
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("key {kid} is not listed: {list}"))?;
        assert_eq!(key["status"], "used", "{key}");
        assert_eq!(key["account"], entry["enrollment"]["account"], "{key}");

        // a revoked key that was never used binds nothing
        let (kid, hmac) = new_eab_key(&s, keys, "revoked").await?;
        let r = s
            .admin()?
            .request("DELETE", &format!("{keys}/{kid}"), None)
            .await?;
        anyhow::ensure!(r.status == 200, "revoke eab key: {}", r.text());
        assert_eq!(r.json()?["status"], "revoked");
        let other = tempfile::tempdir()?;
        let out = issue(
            &Lego::new(other.path(), &root, &directory),
            &["--eab", "--kid", &kid, "--hmac", &hmac],
        )?;
        let said = format!("{}{}", out.stdout, out.stderr);
        assert!(
            !out.ok(),
            "{engine:?}: lego registered with a revoked key: {said}"
        );
        assert!(
            said.contains("urn:ietf:params:acme:error:unauthorized"),
            "{engine:?}: lego with a revoked key: {said}"
        );
        let list = s.admin()?.get(keys).await?.json()?;
        assert!(
            list["items"]
                .as_array()
                .is_some_and(|a| a.iter().any(|k| k["kid"] == kid.as_str()
                    && k["status"] == "revoked"
                    && k["account"].is_null())),
            "{engine:?}: the revoked key stays unbound: {list}"
        );
        s.stop().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_issues_a_wildcard_with_dns01() -> anyhow::Result<()> {
    let dns = ChallTestSrv::start()?;
    for engine in engines().await {
        let s = TestServer::start_acme(&engine, dns.dns).await?;
        s.create_acme_provisioner(
            &serde_json::json!({ "name": "lego-dns", "challenges": ["dns-01"] }),
        )
        .await?;
        let work = tempfile::tempdir()?;
        // lego's exec provider calls `HOOK present|cleanup FQDN VALUE` (FQDN with the
        // trailing dot), here writing the TXT record into pebble-challtestsrv
        let hook = work.path().join("txt-hook.sh");
        std::fs::write(
            &hook,
            format!(
                "#!/bin/sh\nset -e\ncase \"$1\" in\n\
                 present) curl -sSf -d \"{{\\\"host\\\":\\\"$2\\\",\\\"value\\\":\\\"$3\\\"}}\" {m}/set-txt ;;\n\
                 cleanup) curl -sSf -d \"{{\\\"host\\\":\\\"$2\\\"}}\" {m}/clear-txt ;;\n\
                 *) exit 1 ;;\nesac\n",
                m = dns.management
            ),
        )?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))?;
        }
        let root = s.root_pem_path().to_string_lossy().into_owned();
        let lego = Lego::new(
            &work.path().join("lego"),
            &root,
            &format!("{}/acme/lego-dns/directory", s.url),
        );
        let exec_path = format!("EXEC_PATH={}", hook.display());
        let resolver = dns.dns.to_string();
        let wildcard = "*.wild.example.test";
        let out = lego.run(
            &[
                &exec_path,
                // both names share one TXT name: lego solves them one after the other
                "EXEC_SEQUENCE_INTERVAL=1",
                "EXEC_POLLING_INTERVAL=1",
                "EXEC_PROPAGATION_TIMEOUT=30",
            ],
            &[
                "--domains",
                wildcard,
                "--domains",
                "wild.example.test",
                "--dns",
                "exec",
                "--dns.resolvers",
                &resolver,
                // pebble-challtestsrv answers SOA queries NOTIMP, so lego cannot find the
                // zone's authoritative servers: check the record at the resolver only
                "--dns.disable-cp",
                "run",
            ],
        )?;
        ensure_ok(&format!("{engine:?}: lego run --dns exec"), &out)?;
        check_issued(
            &s,
            &lego,
            &root,
            wildcard,
            "lego-dns",
            serde_json::json!(["dns:*.wild.example.test", "dns:wild.example.test"]),
        )
        .await?;
        let out = blocking(
            "openssl",
            &[
                "x509",
                "-noout",
                "-ext",
                "subjectAltName",
                "-in",
                &lego.cert(wildcard),
            ],
        )?;
        assert!(
            out.stdout.contains("DNS:*.wild.example.test"),
            "{engine:?}: no wildcard SAN: {}",
            out.stdout
        );
        s.stop().await;
    }
    Ok(())
}

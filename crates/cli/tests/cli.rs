//! The `trustbox` binary as a user runs it: `up` (twice), `token create`, client commands
//! and `audit verify`, including a tampered database.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_trustbox");

/// A `trustbox up` process, killed (by pid) when dropped.
struct Up {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Up {
    fn start(data: &Path, port: u16) -> Up {
        let mut child = Command::new(BIN)
            .args([
                "up",
                "--data-dir",
                &data.to_string_lossy(),
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--http-listen",
                "127.0.0.1:0",
            ])
            .env("TRUSTBOX_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("trustbox up starts");
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Up { child, lines }
    }

    /// Lines printed until the "serving" line, then any that follow within 300 ms.
    fn banner(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut out = Vec::new();
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(300)) {
                Ok(l) => out.push(l),
                Err(_) if out.iter().any(|l| l.contains("serving")) => return out,
                Err(_) => {}
            }
        }
        panic!("trustbox up did not report serving within 60 s: {out:?}");
    }
}

/// Starts `trustbox up` on a fresh data directory and returns it with the admin token it
/// printed (once).
fn first_start(data: &Path, port: u16) -> (Up, String) {
    let up = Up::start(data, port);
    let admin = up
        .banner()
        .iter()
        .find_map(|l| l.strip_prefix("admin token (shown once, store it now): "))
        .expect("admin token printed on first start")
        .to_owned();
    (up, admin)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn trustbox(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env("TRUSTBOX_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("trustbox runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fingerprint(pem: &Path) -> String {
    let out = Command::new("openssl")
        .args([
            "x509",
            "-in",
            &pem.to_string_lossy(),
            "-noout",
            "-fingerprint",
            "-sha256",
        ])
        .output()
        .expect("openssl");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn csr(dir: &Path, name: &str) -> PathBuf {
    let csr = dir.join(format!("{name}.csr"));
    let key = dir.join(format!("{name}.key"));
    let st = Command::new("openssl")
        .args([
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-keyout",
            &key.to_string_lossy(),
            "-out",
            &csr.to_string_lossy(),
        ])
        .args([
            "-subj",
            &format!("/CN={name}.example.com"),
            "-addext",
            &format!("subjectAltName=DNS:{name}.example.com"),
        ])
        .output()
        .expect("openssl req");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    csr
}

#[test]
fn up_token_client_commands_and_audit_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let port = free_port();

    // first start: creates everything, prints the admin token once
    let (up, admin) = first_start(&data, port);
    assert!(admin.starts_with("tbx_"));
    let root = data.join("ca").join("root.pem");
    let fp1 = fingerprint(&root);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("kek.key"))
            .expect("kek")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "KEK is owner-only");
    }
    drop(up);

    // second start: same root, no new admin token, the old token still works
    let up = Up::start(&data, port);
    let banner = up.banner();
    assert!(
        !banner.iter().any(|l| l.contains("admin token")),
        "token is shown once: {banner:?}"
    );
    assert_eq!(fingerprint(&root), fp1, "same root on restart");

    let url = format!("https://127.0.0.1:{port}");
    let root_s = root.to_string_lossy().into_owned();
    let env_admin = [
        ("TRUSTBOX_URL", url.as_str()),
        ("TRUSTBOX_TOKEN", admin.as_str()),
        ("TRUSTBOX_CA_FILE", root_s.as_str()),
    ];

    // host-side token creation prints the bare token
    let (code, out, err) = trustbox(
        &[
            "token",
            "create",
            "--data-dir",
            &data.to_string_lossy(),
            "--tenant",
            "default",
            "--scopes",
            "certs:issue,certs:read",
            "--name",
            "ci",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let ci = out.trim().to_owned();
    assert!(
        ci.starts_with("tbx_") && !ci.contains(' '),
        "bare token on stdout: {out:?}"
    );
    let env_ci = [
        ("TRUSTBOX_URL", url.as_str()),
        ("TRUSTBOX_TOKEN", ci.as_str()),
        ("TRUSTBOX_CA_FILE", root_s.as_str()),
    ];
    // tokens may expire; a bad lifetime is refused by name
    let d = data.to_string_lossy().into_owned();
    let base = [
        "token",
        "create",
        "--data-dir",
        &d,
        "--scopes",
        "certs:read",
        "--name",
        "month",
    ];
    let (code, out, err) = trustbox(&[&base[..], &["--expires-in", "30d"]].concat(), &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.trim().starts_with("tbx_"));
    let (code, _, err) = trustbox(&[&base[..], &["--expires-in", "30x"]].concat(), &[]);
    assert_ne!(code, 0);
    assert!(err.contains("expires-in") || err.contains("unit"), "{err}");

    // issue with the CLI, files written
    let outdir = dir.path().join("out");
    let req = csr(dir.path(), "cli");
    let (code, out, err) = trustbox(
        &[
            "cert",
            "issue",
            "--csr",
            &req.to_string_lossy(),
            "--out",
            &outdir.to_string_lossy(),
            "--json",
        ],
        &env_ci,
    );
    assert_eq!(code, 0, "{err}");
    let issued: serde_json::Value = serde_json::from_str(&out).expect("json");
    let id = issued["id"].as_str().expect("id").to_owned();
    for f in ["cert.pem", "chain.pem", "fullchain.pem"] {
        assert!(outdir.join(f).exists(), "{f} written");
    }
    let v = Command::new("openssl")
        .args([
            "verify",
            "-x509_strict",
            "-purpose",
            "sslserver",
            "-CAfile",
            &root_s,
            "-untrusted",
        ])
        .arg(outdir.join("chain.pem"))
        .arg(outdir.join("cert.pem"))
        .output()
        .expect("openssl verify");
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));

    // table output reads well; --json parses
    let (code, out, _) = trustbox(&["cert", "list"], &env_ci);
    assert_eq!(code, 0);
    assert!(
        out.lines()
            .next()
            .is_some_and(|h| h.starts_with("ID") && h.contains("NOT AFTER")),
        "{out}"
    );
    assert!(out.contains("cli.example.com"));
    let (_, out, _) = trustbox(&["cert", "show", &id, "--json"], &env_ci);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).expect("json")["id"],
        id.as_str()
    );
    let (_, out, _) = trustbox(&["ca", "list"], &env_ci);
    assert!(out.contains("root") && out.contains("issuing-ca"), "{out}");

    // the ci token may not revoke; the admin may
    let (code, _, err) = trustbox(&["cert", "revoke", &id, "--reason", "superseded"], &env_ci);
    assert_ne!(code, 0);
    assert!(err.contains("403"), "{err}");
    let newest_publish = |state: Option<&str>| {
        let mut args = vec!["job", "list", "--kind", "crl.publish", "--json"];
        if let Some(st) = state {
            args.extend(["--state", st]);
        }
        let (code, out, err) = trustbox(&args, &env_admin);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("json");
        v["items"][0].clone()
    };
    // wait for the first start's publications to settle, then revoke
    std::thread::sleep(std::time::Duration::from_secs(2));
    let before = newest_publish(None)["id"].as_str().unwrap_or("").to_owned();
    let (code, out, err) = trustbox(
        &["cert", "revoke", &id, "--reason", "superseded"],
        &env_admin,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("superseded"));

    // the revocation is published by a new crl.publish job, visible with its state
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let job = loop {
        let j = newest_publish(Some("completed"));
        if j["id"].as_str().is_some_and(|i| i > before.as_str())
            || std::time::Instant::now() > deadline
        {
            break j;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(
        job["id"].as_str().is_some_and(|i| i > before.as_str()),
        "no crl.publish job completed after the revocation: {job}"
    );
    assert_eq!(
        (&job["kind"], &job["state"]),
        (
            &serde_json::json!("crl.publish"),
            &serde_json::json!("completed")
        )
    );
    let (code, out, _) = trustbox(&["job", "list"], &env_admin);
    assert_eq!(code, 0);
    assert!(
        out.lines()
            .next()
            .is_some_and(|h| h.starts_with("ID") && h.contains("STATE")),
        "{out}"
    );
    assert!(
        out.contains("ocsp.responder") && out.contains("completed"),
        "{out}"
    );
    let job_id = job["id"].as_str().expect("id");
    let (code, out, _) = trustbox(&["job", "show", job_id, "--json"], &env_admin);
    assert_eq!(code, 0);
    assert!(out.contains(job_id));
    let (code, _, err) = trustbox(&["job", "cancel", job_id], &env_admin);
    assert_ne!(code, 0, "a completed job cannot be cancelled");
    assert!(err.contains("409"), "{err}");
    let (code, _, err) = trustbox(&["job", "list"], &env_ci);
    assert_ne!(code, 0);
    assert!(err.contains("403"), "jobs need ca:admin: {err}");

    // audit verify: intact, then broken at the edited event
    let (code, out, err) = trustbox(
        &["audit", "verify", "--data-dir", &data.to_string_lossy()],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("tenant default: ok"), "{out}");
    drop(up);
    let db = data.join("trustbox.db");
    let st = Command::new("sqlite3")
        .arg(&db)
        .arg("UPDATE audit_events SET details = '{\"forged\":true}' WHERE seq = 3;")
        .output()
        .expect("sqlite3 runs (install the sqlite3 package)");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let (code, out, _) = trustbox(
        &["audit", "verify", "--data-dir", &data.to_string_lossy()],
        &[],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("BROKEN at event seq 3"), "{out}");
}

#[test]
fn config_check_names_the_bad_option() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("trustbox.toml");
    std::fs::write(&p, "listen = \"127.0.0.1:9443\"\nmax_batch = 0\n").expect("write");
    let (code, _, err) = trustbox(&["config", "check", "--config", &p.to_string_lossy()], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("max_batch"), "{err}");
    std::fs::write(&p, "listen = \"127.0.0.1:9443\"\n").expect("write");
    let (code, out, _) = trustbox(&["config", "check", "--config", &p.to_string_lossy()], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("ok"));
}

/// Runs an SQL statement (or query) on the SQLite database with the `sqlite3` tool.
fn sql(db: &Path, statement: &str) -> String {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(statement)
        .output()
        .expect("sqlite3 runs (install the sqlite3 package)");
    assert!(
        out.status.success(),
        "{statement}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn verify(data: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["audit", "verify", "--data-dir"];
    let d = data.to_string_lossy().into_owned();
    args.push(&d);
    args.extend_from_slice(extra);
    let (code, out, err) = trustbox(&args, &[]);
    (code, format!("{out}{err}"))
}

fn copy_dir(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(st.success());
}

/// Deleting the newest events, rewriting the tail with recomputed hashes, and swapping a
/// stored certificate are each detected, the rewrite against an exported checkpoint.
#[test]
fn audit_chain_detects_truncation_rewrites_and_swapped_certificates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let port = free_port();
    let (up, admin) = first_start(&data, port);
    let url = format!("https://127.0.0.1:{port}");
    let root = data
        .join("ca")
        .join("root.pem")
        .to_string_lossy()
        .into_owned();
    let env = [
        ("TRUSTBOX_URL", url.as_str()),
        ("TRUSTBOX_TOKEN", admin.as_str()),
        ("TRUSTBOX_CA_FILE", root.as_str()),
    ];
    for n in 0..3 {
        let req = csr(dir.path(), &format!("a{n}"));
        let outdir = dir.path().join(format!("out{n}"));
        let (code, _, err) = trustbox(
            &[
                "cert",
                "issue",
                "--csr",
                &req.to_string_lossy(),
                "--out",
                &outdir.to_string_lossy(),
            ],
            &env,
        );
        assert_eq!(code, 0, "{err}");
    }
    drop(up);

    // sign and export checkpoints; everything verifies
    let d = data.to_string_lossy().into_owned();
    let (code, out, err) = trustbox(&["audit", "checkpoint", "--data-dir", &d], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("checkpoint(s) signed"), "{out}");
    let exported = dir.path().join("checkpoints.json");
    let (code, _, err) = trustbox(
        &[
            "audit",
            "checkpoint",
            "--data-dir",
            &d,
            "export",
            "--out",
            &exported.to_string_lossy(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&exported).expect("export")).expect("json");
    assert!(!file["checkpoints"].as_array().expect("list").is_empty());
    let cp = exported.to_string_lossy().into_owned();
    let (code, out) = verify(&data, &["--checkpoints", &cp]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("tenant default: ok"), "{out}");

    let tenant = sql(
        &data.join("trustbox.db"),
        "SELECT id FROM tenants WHERE name = 'default'",
    );

    // 1. truncation: the newest events deleted
    let cut = dir.path().join("cut");
    copy_dir(&data, &cut);
    let db = cut.join("trustbox.db");
    let head: i64 = sql(
        &db,
        &format!("SELECT seq FROM audit_heads WHERE tenant_id = '{tenant}'"),
    )
    .parse()
    .expect("seq");
    sql(
        &db,
        &format!(
            "DELETE FROM audit_events WHERE tenant_id = '{tenant}' AND seq > {}",
            head - 2
        ),
    );
    let (code, out) = verify(&cut, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("newest events were deleted"), "{out}");

    // 2. the tail rewritten with correct hashes, head and stored checkpoints adjusted: only
    //    the exported checkpoint tells
    let forged = dir.path().join("forged");
    copy_dir(&data, &forged);
    let db = forged.join("trustbox.db");
    let row = sql(
        &db,
        &format!(
            "SELECT seq, at_us, actor, action, resource, outcome, prev_hash FROM audit_events \
             WHERE tenant_id = '{tenant}' ORDER BY seq DESC LIMIT 1"
        ),
    );
    let f: Vec<&str> = row.split('|').collect();
    let (seq, at_us): (i64, i64) = (f[0].parse().expect("seq"), f[1].parse().expect("at"));
    let details = "{\"rewritten\":true}";
    let tenant_id: trustbox_types::TenantId = tenant.parse().expect("tenant id");
    let hash =
        trustbox_store::event_hash(f[6], seq, tenant_id, at_us, f[2], f[3], f[4], f[5], details);
    sql(
        &db,
        &format!(
            "UPDATE audit_events SET details = '{details}', hash = '{hash}' WHERE tenant_id = '{tenant}' AND seq = {seq}; \
             UPDATE audit_heads SET hash = '{hash}' WHERE tenant_id = '{tenant}'; \
             DELETE FROM audit_checkpoints;"
        ),
    );
    let (code, out) = verify(&forged, &[]);
    assert_eq!(
        code, 0,
        "without an anchor the rewrite is consistent: {out}"
    );
    let (code, out) = verify(&forged, &["--checkpoints", &cp]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("BROKEN at event seq {seq}")), "{out}");
    assert!(out.contains("rewritten"), "{out}");
    // and with the stored checkpoint still in place, it is caught without the file
    let kept = dir.path().join("kept");
    copy_dir(&data, &kept);
    let db = kept.join("trustbox.db");
    sql(
        &db,
        &format!(
            "UPDATE audit_events SET details = '{details}', hash = '{hash}' WHERE tenant_id = '{tenant}' AND seq = {seq}; \
             UPDATE audit_heads SET hash = '{hash}' WHERE tenant_id = '{tenant}';"
        ),
    );
    let (code, out) = verify(&kept, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("rewritten"), "{out}");

    // 3. a stored certificate swapped for another (fingerprint column updated too)
    let swapped = dir.path().join("swapped");
    copy_dir(&data, &swapped);
    let db = swapped.join("trustbox.db");
    let ids = sql(
        &db,
        &format!("SELECT id FROM certificates WHERE tenant_id = '{tenant}' AND source = 'api' ORDER BY id LIMIT 2"),
    );
    let ids: Vec<&str> = ids.lines().collect();
    assert_eq!(ids.len(), 2, "two issued certificates");
    sql(
        &db,
        &format!(
            "UPDATE certificates SET der = (SELECT der FROM certificates WHERE id = '{b}'), \
             fingerprint = (SELECT fingerprint FROM certificates WHERE id = '{b}') WHERE id = '{a}'",
            a = ids[0],
            b = ids[1]
        ),
    );
    let (code, out) = verify(&swapped, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("swapped"), "{out}");
    // the DER alone swapped (fingerprint column left)
    let raw = dir.path().join("raw");
    copy_dir(&data, &raw);
    let db = raw.join("trustbox.db");
    sql(
        &db,
        &format!(
            "UPDATE certificates SET der = (SELECT der FROM certificates WHERE id = '{b}') WHERE id = '{a}'",
            a = ids[0],
            b = ids[1]
        ),
    );
    let (code, out) = verify(&raw, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("does not match its fingerprint"), "{out}");
}

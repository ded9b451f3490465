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
    let up = Up::start(&data, port);
    let banner = up.banner();
    let admin = banner
        .iter()
        .find_map(|l| l.strip_prefix("admin token (shown once, store it now): "))
        .expect("admin token printed on first start")
        .to_owned();
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
    let (code, out, err) = trustbox(
        &["cert", "revoke", &id, "--reason", "superseded"],
        &env_admin,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("superseded"));

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

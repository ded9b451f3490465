//! The dependency rules of `docs/architecture.md`, checked on `cargo metadata`: the seam
//! (`trustbox-authority`) depends on no protocol adapter and no HTTP crate; only the server,
//! the CLI and the test kit link the store engines; only the engines use the shared SQL
//! crate, and only it and the engines use `sqlx` (the store contract knows no driver); only
//! the SQLite engine uses `rusqlite`; only the custody crate uses an RSA private-key
//! implementation. And, on the sources, the core opens only through its services, and the
//! server's request paths (REST API, relying-party routes, OCSP) never name the store.

use serde_json::Value;

/// Each workspace package's normal (non-dev, non-build) dependencies, by name.
fn normal_dependencies() -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
            "--manifest-path",
            root,
        ])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout)?;
    Ok(meta["packages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter(|d| d["kind"].is_null())
                .filter_map(|d| d["name"].as_str().map(str::to_owned))
                .collect();
            (p["name"].as_str().unwrap_or_default().to_owned(), deps)
        })
        .collect())
}

#[test]
fn the_seam_and_the_engines_keep_their_places() -> anyhow::Result<()> {
    let packages = normal_dependencies()?;
    assert!(packages.len() >= 10, "the workspace was read: {packages:?}");
    let http = [
        "axum",
        "hyper",
        "hyper-util",
        "http",
        "http-body-util",
        "tower",
        "tonic",
        "reqwest",
    ];
    let engines = ["trustbox-store-sqlite", "trustbox-store-postgres"];
    let mut broken = Vec::new();
    for (name, deps) in &packages {
        for dep in deps {
            if name == "trustbox-authority"
                && (dep.starts_with("trustbox-proto-") || http.contains(&dep.as_str()))
            {
                broken.push(format!(
                    "{name} -> {dep}: the seam depends on no adapter or HTTP crate"
                ));
            }
            if engines.contains(&dep.as_str())
                && !["trustbox-server", "trustbox", "trustbox-testkit"].contains(&name.as_str())
            {
                broken.push(format!(
                    "{name} -> {dep}: only server, cli and testkit link store engines"
                ));
            }
            if dep.starts_with("trustbox-store-")
                && !engines.contains(&dep.as_str())
                && dep != "trustbox-store-sql"
            {
                broken.push(format!(
                    "{name} -> {dep}: a store crate that is neither an engine nor the shared SQL \
                     crate; add it to the rules above"
                ));
            }
            if dep == "trustbox-store-sql" && !engines.contains(&name.as_str()) {
                broken.push(format!(
                    "{name} -> {dep}: only the engines use the shared SQL crate"
                ));
            }
            if dep == "sqlx" && name != "trustbox-store-sql" && !engines.contains(&name.as_str()) {
                broken.push(format!(
                    "{name} -> {dep}: only the shared SQL crate and the engines use sqlx"
                ));
            }
            if dep == "rusqlite" && name != "trustbox-store-sqlite" {
                broken.push(format!(
                    "{name} -> {dep}: only the SQLite engine uses rusqlite"
                ));
            }
            if dep == "rsa" && name != "trustbox-crypto" {
                broken.push(format!(
                    "{name} -> {dep}: only the custody crate holds private keys"
                ));
            }
        }
    }
    for engine in engines {
        let uses_shared_sql = packages
            .iter()
            .any(|(name, deps)| name == engine && deps.iter().any(|d| d == "trustbox-store-sql"));
        if !uses_shared_sql {
            broken.push(format!(
                "{engine}: every engine runs the shared SQL (trustbox-store-sql), not its own copy"
            ));
        }
    }
    assert!(
        broken.is_empty(),
        "dependency rules broken:\n{}",
        broken.join("\n")
    );
    Ok(())
}

/// The seam's core (`Authority`) opens only through its services
/// (`crates/authority/src/services.rs`): outside that file no `impl Authority` block
/// declares a public method other than `new`, the core has no public field, and no service
/// mentions the store or key custody, so no adapter reaches the writable store.
#[test]
fn the_core_opens_only_through_its_services() -> anyhow::Result<()> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../crates/authority/src");
    let mut broken = Vec::new();
    let mut files = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        files += 1;
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&path)?;
        if name == "services.rs" {
            for (n, line) in text.lines().enumerate() {
                if ["Store", "KeyStore", "Signer", "SigningPool"]
                    .iter()
                    .any(|t| line.split(|c: char| !c.is_alphanumeric()).any(|w| w == *t))
                {
                    broken.push(format!("{name}:{}: a service names {line:?}", n + 1));
                }
            }
            continue;
        }
        // Top-level items start in column 0; `}` in column 0 ends one.
        let mut item = "";
        for (n, line) in text.lines().enumerate() {
            if !line.starts_with([' ', '}', '/', '#']) && !line.is_empty() {
                item = line;
            } else if line == "}" {
                item = "";
            }
            let member = line.trim_start();
            let public = member.starts_with("pub ") && line.starts_with("    ");
            if public && item.starts_with("impl Authority {") {
                let is_new = member.starts_with("pub fn new(");
                if !is_new {
                    broken.push(format!(
                        "{name}:{}: a public method on the core; expose it on a service: {member}",
                        n + 1
                    ));
                }
            }
            if public && item.starts_with("pub struct Authority {") {
                broken.push(format!(
                    "{name}:{}: a public field on the core: {member}",
                    n + 1
                ));
            }
        }
    }
    assert!(files >= 10, "the seam's sources were read from {dir}");
    assert!(
        broken.is_empty(),
        "the core is open past its services:\n{}",
        broken.join("\n")
    );
    Ok(())
}

/// The server's request paths (the REST API under `crates/server/src/api/`, the
/// relying-party routes in `public.rs`, the OCSP adapter in `ocsp.rs`) see only the seam's
/// domain types: none of them mentions `trustbox_store`, so no handler depends on a row's
/// layout. The server names the store only where it constructs it (`setup.rs`).
#[test]
fn request_paths_see_only_domain_types() -> anyhow::Result<()> {
    let src = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../crates/server/src"
    ));
    let mut files = vec![src.join("public.rs"), src.join("ocsp.rs")];
    let mut api = Vec::new();
    for entry in std::fs::read_dir(src.join("api"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rs") {
            api.push(path);
        }
    }
    assert!(api.len() >= 5, "the REST API's sources were read: {api:?}");
    files.extend(api);
    let mut broken = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path)?;
        let name = path.strip_prefix(src).unwrap_or(path).display().to_string();
        for (n, line) in text.lines().enumerate() {
            if line.contains("trustbox_store") || line.contains("trustbox-store") {
                broken.push(format!("{name}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "a request path names the store; use the seam's domain types \
         (trustbox_authority::Certificate, CertificateQuery, Tenant, ...):\n{}",
        broken.join("\n")
    );
    Ok(())
}

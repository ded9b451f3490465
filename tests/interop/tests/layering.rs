//! The dependency rules of `docs/architecture.md`, checked on `cargo metadata`: the seam
//! (`trustbox-authority`) depends on no protocol adapter and no HTTP crate; only the server,
//! the CLI and the test kit link the store engines; only the engines use the shared SQL
//! crate, and only it and the engines use `sqlx` (the store contract knows no driver); only
//! the SQLite engine uses `rusqlite`; only the custody crate uses an RSA private-key
//! implementation.

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

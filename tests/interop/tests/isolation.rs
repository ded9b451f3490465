//! The isolation suite, on every engine: a token of tenant B that names tenant A's objects
//! gets the same 404 as for an object that exists nowhere, and changes nothing, on every
//! route of the API (a route missing from [`cases`] fails [`every_route_is_in_the_suite`]).
//! A's issuer is warm in every cache first (issued through, OCSP and CRL fetched).

use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use trustbox_client::{Client, Response};
use trustbox_testkit::{engines, rcgen_csr, run, Engine, TestServer};

const T: Duration = Duration::from_secs(30);

/// One request of tenant B naming an object of tenant A.
struct Case {
    method: &'static str,
    /// The route template, as the OpenAPI document names it.
    route: &'static str,
    /// The concrete path with A's id (or name) in it.
    path: String,
    body: Option<Value>,
    /// The same request with an id that exists in no tenant, for the probing check.
    twin: String,
}

/// What tenant A owns, by id.
struct Owned {
    certificate: String,
    issuing_ca: String,
    root: String,
    profile: String,
    /// A valid document for A's profile (PUT by B must fail on ownership, not validation).
    profile_doc: Value,
    token: String,
    /// One of A's background jobs.
    job: String,
    /// An EAB key of A's `default` ACME provisioner.
    eab_kid: String,
}

fn body_of(r: &Response) -> Value {
    r.json().unwrap_or(Value::Null)
}

/// Every route of the API that takes an object of the tenant, with A's object in it.
fn cases(a: &Owned, csr: &str) -> Vec<Case> {
    let ghost = uuid::Uuid::now_v7().to_string();
    let c = |method, route: &'static str, id: &str, tail: &str, body: Option<Value>| {
        let base = route.split('{').next().unwrap_or_default();
        Case {
            method,
            route,
            path: format!("{base}{id}{tail}"),
            body,
            twin: format!("{base}{ghost}{tail}"),
        }
    };
    let revoke = Some(json!({"reason": "keyCompromise"}));
    vec![
        c("GET", "/api/v1/certificates/{id}", &a.certificate, "", None),
        c(
            "POST",
            "/api/v1/certificates/{id}/revoke",
            &a.certificate,
            "/revoke",
            revoke.clone(),
        ),
        c("GET", "/api/v1/issuers/{id}", &a.issuing_ca, "", None),
        c("GET", "/api/v1/issuers/{id}", &a.root, "", None),
        c(
            "PATCH",
            "/api/v1/issuers/{id}",
            &a.issuing_ca,
            "",
            Some(json!({"ocsp_enabled": false})),
        ),
        c(
            "POST",
            "/api/v1/issuers/{id}/revoke",
            &a.issuing_ca,
            "/revoke",
            revoke,
        ),
        c("GET", "/api/v1/profiles/{name}", &a.profile, "", None),
        c(
            "PUT",
            "/api/v1/profiles/{name}",
            &a.profile,
            "",
            Some(a.profile_doc.clone()),
        ),
        c("DELETE", "/api/v1/tokens/{id}", &a.token, "", None),
        c("GET", "/api/v1/jobs/{id}", &a.job, "", None),
        c("POST", "/api/v1/jobs/{id}/cancel", &a.job, "/cancel", None),
        // A's ACME provisioner (`default`) and its EAB key
        c(
            "GET",
            "/api/v1/acme/provisioners/{name}",
            "default",
            "",
            None,
        ),
        c(
            "PUT",
            "/api/v1/acme/provisioners/{name}",
            "default",
            "",
            Some(json!({"eab_required": true})),
        ),
        c(
            "GET",
            "/api/v1/acme/provisioners/{name}/eab-keys",
            "default",
            "/eab-keys",
            None,
        ),
        c(
            "POST",
            "/api/v1/acme/provisioners/{name}/eab-keys",
            "default",
            "/eab-keys",
            Some(json!({"label": "b"})),
        ),
        Case {
            method: "DELETE",
            route: "/api/v1/acme/provisioners/{name}/eab-keys/{kid}",
            path: format!("/api/v1/acme/provisioners/default/eab-keys/{}", a.eab_kid),
            body: None,
            twin: format!("/api/v1/acme/provisioners/{ghost}/eab-keys/{ghost}"),
        },
        // A's EAB key through B's own provisioner
        Case {
            method: "DELETE",
            route: "/api/v1/acme/provisioners/{name}/eab-keys/{kid}",
            path: format!("/api/v1/acme/provisioners/b-acme/eab-keys/{}", a.eab_kid),
            body: None,
            twin: format!("/api/v1/acme/provisioners/b-acme/eab-keys/{ghost}"),
        },
        // A's issuer named in a body: as the signer of a certificate, as a new CA's parent
        Case {
            method: "POST",
            route: "/api/v1/certificates",
            path: "/api/v1/certificates".into(),
            body: Some(json!({"csr": csr, "issuer": a.issuing_ca})),
            twin: format!("issuer:{ghost}"),
        },
        Case {
            method: "POST",
            route: "/api/v1/issuers",
            path: "/api/v1/issuers".into(),
            body: Some(json!({"name": "under-a", "common_name": "Under A", "parent": a.root})),
            twin: format!("parent:{ghost}"),
        },
    ]
}

/// The id of one of the caller's background jobs, waiting for the scheduler to enqueue one
/// (a new tenant's issuers need CRLs and OCSP responders).
async fn first_job(c: &Client) -> anyhow::Result<String> {
    let deadline = std::time::Instant::now() + T;
    loop {
        let page = c.get("/api/v1/jobs?limit=1").await?.json()?;
        if let Some(id) = page["items"][0]["id"].as_str() {
            return Ok(id.to_owned());
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "no job was scheduled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A profile named `name`, derived from the built-in `tls-server`.
async fn profile_doc(c: &Client, name: &str) -> anyhow::Result<Value> {
    let mut doc = c.get("/api/v1/profiles/tls-server").await?.json()?["profile"].clone();
    doc["name"] = json!(name);
    doc["max_validity_days"] = json!(5);
    doc["default_validity_days"] = json!(5);
    doc["san"]["dns"]["allowed"] = json!(["*.a.example"]);
    Ok(doc)
}

/// Routes that name no object of a tenant, or that B may not call at all, with why.
const NOT_OBJECT_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/certificates"), // B's own list: checked below to hold nothing of A's
    ("POST", "/api/v1/certificates"), // covered with A's issuer in the body
    ("GET", "/api/v1/issuers"),
    ("POST", "/api/v1/issuers"), // covered with A's root as parent
    ("GET", "/api/v1/profiles"),
    ("POST", "/api/v1/profiles"), // names are per tenant: B may reuse A's name
    ("GET", "/api/v1/tenants"),   // B lists only itself: checked below
    ("POST", "/api/v1/tenants"),  // admin of the default tenant only: 403 for B
    ("GET", "/api/v1/tokens"),
    ("POST", "/api/v1/tokens"),
    ("GET", "/api/v1/audit"),
    ("GET", "/api/v1/jobs"), // B's own list: checked below to hold nothing of A's
    ("GET", "/api/v1/audit/verify"),
    ("POST", "/api/v1/audit/checkpoints"),
    ("GET", "/api/v1/audit/checkpoints"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/acme/provisioners"), // B's own list: checked below to hold nothing of A's
    // Provisioner names are URLs, global like DNS names: B learns only that a name is taken
    // (409), which the public /acme/{name}/directory tells anyone anyway.
    ("POST", "/api/v1/acme/provisioners"),
];

async fn send(
    c: &Client,
    method: &str,
    path: &str,
    body: &Option<Value>,
) -> anyhow::Result<Response> {
    Ok(c.request(
        method,
        path,
        body.as_ref()
            .map(|b| ("application/json", b.to_string().into_bytes())),
    )
    .await?)
}

/// A's observable state: what must not change whatever B sends.
async fn snapshot(a: &Client) -> anyhow::Result<Value> {
    let mut out = serde_json::Map::new();
    for path in [
        "/api/v1/certificates?limit=1000",
        "/api/v1/issuers",
        "/api/v1/profiles",
        "/api/v1/tokens",
        "/api/v1/acme/provisioners",
        "/api/v1/acme/provisioners/default/eab-keys",
    ] {
        let r = a.get(path).await?;
        anyhow::ensure!(r.status == 200, "{path}: {}", r.text());
        out.insert(path.into(), body_of(&r));
    }
    Ok(Value::Object(out))
}

fn openssl(args: &[&str]) -> anyhow::Result<trustbox_testkit::Output> {
    tokio::task::block_in_place(|| run("openssl", args, T))
}

/// Fetches A's OCSP answer (retrying while the responder starts) and CRL, so every public
/// cache holds A's issuer.
async fn warm_public_caches(
    s: &TestServer,
    dir: &Path,
    cert_pem: &str,
    ca_pem: &str,
    issuer: &str,
) -> anyhow::Result<()> {
    let http = s
        .http_url
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no HTTP listener"))?;
    let cert = dir.join("a.pem");
    let ca = dir.join("a-ca.pem");
    std::fs::write(&cert, cert_pem)?;
    std::fs::write(&ca, ca_pem)?;
    let url = format!("{http}/ocsp/{issuer}");
    let root = s.root_pem_path();
    let args = [
        "ocsp",
        "-issuer",
        &ca.to_string_lossy(),
        "-cert",
        &cert.to_string_lossy(),
        "-url",
        &url,
        "-CAfile",
        &root.to_string_lossy(),
    ]
    .map(str::to_owned);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let deadline = std::time::Instant::now() + T;
    loop {
        let o = openssl(&refs)?;
        let text = format!("{}{}", o.stdout, o.stderr);
        if text.contains(": good") {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "A's OCSP never answered: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let plain = Client::new(&http, None, None)?;
    let deadline = std::time::Instant::now() + T;
    loop {
        let r = plain.get(&format!("/crl/{issuer}/0.crl")).await?;
        if r.status == 200 {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "A's CRL never published"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = plain.get(&format!("/ca/{issuer}.cer")).await?;
    anyhow::ensure!(r.status == 200, "A's CA certificate: {}", r.status);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_objects_are_not_found_and_unchanged_on_every_engine() -> anyhow::Result<()>
{
    for engine in engines().await {
        isolation(&engine).await?;
    }
    Ok(())
}

async fn isolation(engine: &Engine) -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let s = TestServer::start(engine).await?;
    let a = s.admin()?;

    // tenant B with an admin token of its own (every scope within B)
    let r = a
        .post_json("/api/v1/tenants", &json!({"name": "b"}))
        .await?;
    anyhow::ensure!(r.status == 201, "{}", r.text());
    let r = a
        .post_json(
            "/api/v1/tokens",
            &json!({"name": "b-admin", "scopes": ["admin"], "tenant": "b"}),
        )
        .await?;
    anyhow::ensure!(r.status == 201, "{}", r.text());
    let b = s.client(r.json()?["token"].as_str().map(str::to_owned))?;

    // A's objects, with A's issuer warm in every cache
    let issued = a
        .post_json(
            "/api/v1/certificates",
            &json!({"csr": rcgen_csr(&["a.example.com"])}),
        )
        .await?;
    anyhow::ensure!(issued.status == 201, "{}", issued.text());
    let issued = issued.json()?;
    let issuers = a.get("/api/v1/issuers").await?.json()?;
    let list = issuers.as_array().cloned().unwrap_or_default();
    let find = |root: bool| {
        list.iter()
            .find(|i| i["is_root"] == root)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no issuer (root {root})"))
    };
    let (ca, root) = (find(false)?, find(true)?);
    let doc = profile_doc(&a, "a-only").await?;
    let r = a.post_json("/api/v1/profiles", &doc).await?;
    anyhow::ensure!(r.status == 201, "{}", r.text());
    let r = a
        .post_json(
            "/api/v1/tokens",
            &json!({"name": "a-reader", "scopes": ["certs:read"]}),
        )
        .await?;
    anyhow::ensure!(r.status == 201, "{}", r.text());
    let owned = Owned {
        certificate: issued["id"].as_str().unwrap_or_default().into(),
        issuing_ca: ca["id"].as_str().unwrap_or_default().into(),
        root: root["id"].as_str().unwrap_or_default().into(),
        profile: "a-only".into(),
        profile_doc: doc,
        token: r.json()?["id"].as_str().unwrap_or_default().into(),
        job: first_job(&a).await?,
        eab_kid: {
            let r = a
                .post_json(
                    "/api/v1/acme/provisioners/default/eab-keys",
                    &json!({"label": "a"}),
                )
                .await?;
            anyhow::ensure!(r.status == 201, "{}", r.text());
            r.json()?["kid"].as_str().unwrap_or_default().into()
        },
    };
    let r = b
        .post_json("/api/v1/acme/provisioners", &json!({"name": "b-acme"}))
        .await?;
    anyhow::ensure!(r.status == 201, "B's provisioner: {}", r.text());
    warm_public_caches(
        &s,
        work.path(),
        issued["certificate"].as_str().unwrap_or_default(),
        ca["certificate"].as_str().unwrap_or_default(),
        &owned.issuing_ca,
    )
    .await?;
    // B's own default issuer is warm too (so a cache keyed by id alone would collide)
    let r = b
        .post_json(
            "/api/v1/certificates",
            &json!({"csr": rcgen_csr(&["b.example.com"])}),
        )
        .await?;
    anyhow::ensure!(r.status == 201, "{}", r.text());

    let before = snapshot(&a).await?;
    let a_events = a.get("/api/v1/audit?limit=1000").await?.json()?["items"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);

    let csr = rcgen_csr(&["anything.example.net"]);
    for case in cases(&owned, &csr) {
        let r = send(&b, case.method, &case.path, &case.body).await?;
        assert_eq!(
            r.status,
            404,
            "{} {} with A's object: {}",
            case.method,
            case.route,
            r.text()
        );
        assert_eq!(r.content_type.as_deref(), Some("application/problem+json"));
        // the same answer whether the object exists in another tenant or nowhere
        let (twin_path, twin_body) = match case.twin.split_once(':') {
            Some(("issuer", ghost)) => (
                case.path.clone(),
                Some(json!({"csr": csr, "issuer": ghost})),
            ),
            Some(("parent", ghost)) => (
                case.path.clone(),
                Some(json!({"name": "under-a", "common_name": "Under A", "parent": ghost})),
            ),
            _ => (case.twin.clone(), case.body.clone()),
        };
        let twin_body = match (case.route == "/api/v1/profiles/{name}", twin_body) {
            (true, Some(mut doc)) => {
                doc["name"] = json!(case.twin.rsplit('/').next().unwrap_or_default());
                Some(doc)
            }
            (_, other) => other,
        };
        let t = send(&b, case.method, &twin_path, &twin_body).await?;
        assert_eq!(
            t.status,
            r.status,
            "{} {}: {}",
            case.method,
            case.route,
            t.text()
        );
        let strip = |v: Value, ids: &[&str]| {
            let mut text = v.to_string();
            for id in ids.iter().filter(|id| !id.is_empty()) {
                text = text.replace(id, "ID");
            }
            text
        };
        let ghost = twin_path
            .rsplit('/')
            .next()
            .map(str::to_owned)
            .unwrap_or_default();
        let ghost_in_body = twin_body
            .as_ref()
            .and_then(|v| {
                v.get("issuer")
                    .or_else(|| v.get("parent"))
                    .and_then(Value::as_str)
            })
            .map(str::to_owned)
            .unwrap_or_default();
        assert_eq!(
            strip(
                body_of(&r),
                &[
                    &owned.certificate,
                    &owned.issuing_ca,
                    &owned.root,
                    &owned.token,
                    &owned.profile
                ]
            ),
            strip(body_of(&t), &[&ghost, &ghost_in_body]),
            "{} {}: the answer tells A's object from a missing one",
            case.method,
            case.route
        );
    }

    // B's lists hold nothing of A's
    for path in [
        format!(
            "/api/v1/certificates?limit=1000&issuer={}",
            owned.issuing_ca
        ),
        "/api/v1/certificates?limit=1000".to_owned(),
        "/api/v1/issuers".to_owned(),
        "/api/v1/tokens".to_owned(),
    ] {
        let r = b.get(&path).await?;
        assert!(r.status == 200 || r.status == 400, "{path}: {}", r.text());
        let text = r.text();
        for id in [
            &owned.certificate,
            &owned.issuing_ca,
            &owned.root,
            &owned.token,
        ] {
            assert!(!text.contains(id.as_str()), "{path} shows A's {id}");
        }
    }
    let tenants = b.get("/api/v1/tenants").await?.json()?;
    let names: Vec<&str> = tenants
        .as_array()
        .map(|a| a.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["b"], "B lists only itself");
    let provisioners = b.get("/api/v1/acme/provisioners").await?.json()?;
    let names: Vec<&str> = provisioners["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["b-acme"], "B lists only its own provisioners");
    let keys = b
        .get("/api/v1/acme/provisioners/b-acme/eab-keys")
        .await?
        .text();
    assert!(!keys.contains(&owned.eab_kid), "B lists A's EAB key");
    let r = b
        .post_json("/api/v1/tenants", &json!({"name": "c"}))
        .await?;
    assert_eq!(r.status, 403, "{}", r.text());
    // B's chain records B's attempts (with the ids B sent), each refused
    let b_audit = b.get("/api/v1/audit?limit=1000").await?.json()?;
    for e in b_audit["items"].as_array().cloned().unwrap_or_default() {
        let text = e.to_string();
        if [
            &owned.certificate,
            &owned.issuing_ca,
            &owned.root,
            &owned.token,
        ]
        .iter()
        .any(|id| text.contains(id.as_str()))
        {
            assert_ne!(
                e["outcome"], "success",
                "B's chain records a success on A's object: {e}"
            );
        }
    }

    // nothing of A's changed; A's chain recorded none of B's attempts
    assert_eq!(
        snapshot(&a).await?,
        before,
        "tenant B changed tenant A's state"
    );
    let after_events = a.get("/api/v1/audit?limit=1000").await?.json()?["items"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    assert_eq!(after_events, a_events);
    let v = a.get("/api/v1/audit/verify").await?;
    assert_eq!(v.status, 200, "{}", v.text());
    // every certificate B holds was signed by one of B's issuers
    let b_issuers: Vec<String> = b
        .get("/api/v1/issuers")
        .await?
        .json()?
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let b_jobs = b.get("/api/v1/jobs?limit=1000").await?.json()?;
    for j in b_jobs["items"].as_array().cloned().unwrap_or_default() {
        assert_ne!(j["id"], json!(owned.job), "B lists A's job");
    }
    let b_certs = b.get("/api/v1/certificates?limit=1000").await?.json()?;
    for c in b_certs["items"].as_array().cloned().unwrap_or_default() {
        let issuer = c["issuer"].as_str().unwrap_or_default().to_owned();
        assert!(
            b_issuers.contains(&issuer),
            "B holds a certificate of issuer {issuer}"
        );
    }
    s.stop().await;
    Ok(())
}

/// Every operation of the OpenAPI document is either in the suite's cases or listed (with a
/// reason) as naming no object: a new route cannot skip the isolation suite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_in_the_suite() -> anyhow::Result<()> {
    let s = TestServer::start(&Engine::Sqlite).await?;
    let doc = s.admin()?.get("/api/v1/openapi.json").await?.json()?;
    let dummy = Owned {
        certificate: "c".into(),
        issuing_ca: "i".into(),
        root: "r".into(),
        profile: "p".into(),
        profile_doc: Value::Null,
        token: "t".into(),
        job: "j".into(),
        eab_kid: "k".into(),
    };
    let covered: Vec<(String, String)> = cases(&dummy, "")
        .iter()
        .map(|c| (c.method.to_owned(), c.route.to_owned()))
        .chain(
            NOT_OBJECT_ROUTES
                .iter()
                .map(|(m, r)| ((*m).to_owned(), (*r).to_owned())),
        )
        .collect();
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    assert!(!paths.is_empty(), "the document lists no paths");
    for (path, ops) in paths {
        for method in ops
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let m = method.to_ascii_uppercase();
            assert!(
                covered.iter().any(|(cm, cr)| *cm == m && *cr == path),
                "{m} {path} is not in the isolation suite: add it to cases() or NOT_OBJECT_ROUTES"
            );
        }
    }
    s.stop().await;
    Ok(())
}

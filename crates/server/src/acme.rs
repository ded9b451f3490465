//! The ACME adapter (RFC 8555), mounted at `/acme/{provisioner}/` on the HTTPS listener.
//!
//! The protocol is `trustbox_proto_acme` (JWS, account keys, nonces, problem documents);
//! what is kept (provisioners, accounts, used nonces) goes through the seam's [`Acme`]
//! service. Served so far: the directory, newNonce and newAccount (including
//! `onlyReturnExisting`) and the account resource (POST-as-GET, contact update,
//! deactivation). Orders, authorizations, challenges, finalize and revokeCert are not
//! served yet.

use crate::api::App;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;
use trustbox_authority::{Acme, AcmeAccount, AcmeProvisioner, AuthorityError, ErrorKind};
use trustbox_proto_acme::{
    directory, parse_request, AcmeError, DirectoryMeta, ErrorType, Jwk, KeyRef, NonceMinter,
    Request,
};

/// How long a nonce is accepted.
const NONCE_MAX_AGE_S: i64 = 3600;
/// Most contact URLs an account may list.
const MAX_CONTACTS: usize = 8;

/// The adapter's state: the seam's ACME service and the nonce key.
#[derive(Debug)]
pub(crate) struct AcmeAdapter {
    acme: Acme,
    nonces: NonceMinter,
}

impl AcmeAdapter {
    /// The adapter over `acme`, minting nonces under `secret` (shared by every replica).
    pub(crate) fn new(acme: Acme, secret: &[u8]) -> Result<Self, AcmeError> {
        Ok(Self {
            acme,
            nonces: NonceMinter::new(secret, NONCE_MAX_AGE_S)?,
        })
    }

    fn now(&self) -> i64 {
        self.acme.now_s()
    }

    fn fresh_nonce(&self) -> String {
        self.nonces
            .mint(self.now(), uuid::Uuid::new_v4().into_bytes())
    }
}

/// The ACME routes (state: the REST [`App`], which holds the adapter).
pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/acme/{provisioner}/directory", get(get_directory))
        .route(
            "/acme/{provisioner}/new-nonce",
            get(new_nonce_get).head(new_nonce_head),
        )
        .route("/acme/{provisioner}/new-account", post(new_account))
        .route("/acme/{provisioner}/account/{id}", post(account))
}

/// `https://HOST/acme/PROVISIONER`, as the client addressed it (the JWS `url` must match).
fn base_url(headers: &HeaderMap, provisioner: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("https://{host}/acme/{provisioner}")
}

/// An answer with the headers every ACME response carries: a fresh nonce and the
/// directory link.
fn respond(
    a: &AcmeAdapter,
    base: &str,
    status: StatusCode,
    body: Vec<u8>,
    problem: bool,
) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    let ct = if problem {
        "application/problem+json"
    } else {
        "application/json"
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    if let Ok(v) = HeaderValue::from_str(&a.fresh_nonce()) {
        h.insert("replay-nonce", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("<{base}/directory>;rel=\"index\"")) {
        h.insert(header::LINK, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn problem(a: &AcmeAdapter, base: &str, e: &AcmeError) -> Response {
    let status = StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::BAD_REQUEST);
    respond(a, base, status, e.to_json(), true)
}

/// The seam's error as an ACME error: internal details stay in the log.
fn from_seam(e: AuthorityError) -> AcmeError {
    let kind = match e.kind {
        ErrorKind::Unauthenticated | ErrorKind::Forbidden => ErrorType::Unauthorized,
        ErrorKind::NotFound | ErrorKind::Invalid | ErrorKind::Conflict => ErrorType::Malformed,
        ErrorKind::Unavailable => ErrorType::RateLimited,
        ErrorKind::Internal => ErrorType::ServerInternal,
    };
    AcmeError::new(kind, e.detail)
}

async fn provisioner(a: &AcmeAdapter, name: &str) -> Result<AcmeProvisioner, AcmeError> {
    a.acme.provisioner(name).await.map_err(|e| match e.kind {
        ErrorKind::NotFound => {
            AcmeError::malformed(format!("no ACME provisioner is named {name:?}"))
        }
        _ => from_seam(e),
    })
}

async fn get_directory(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let a = &app.acme;
    let base = base_url(&headers, &name);
    match provisioner(a, &name).await {
        Ok(_) => {
            let d = directory(&base, &DirectoryMeta::default());
            respond(a, &base, StatusCode::OK, d.to_string().into_bytes(), false)
        }
        Err(e) => problem(a, &base, &e),
    }
}

async fn new_nonce_head(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    nonce_answer(&app.acme, &name, &headers, StatusCode::OK).await
}

async fn new_nonce_get(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    nonce_answer(&app.acme, &name, &headers, StatusCode::NO_CONTENT).await
}

/// RFC 8555 §7.2: HEAD answers 200, GET 204, both with a fresh nonce.
async fn nonce_answer(
    a: &AcmeAdapter,
    name: &str,
    headers: &HeaderMap,
    status: StatusCode,
) -> Response {
    let base = base_url(headers, name);
    match provisioner(a, name).await {
        Ok(_) => respond(a, &base, status, Vec::new(), false),
        Err(e) => problem(a, &base, &e),
    }
}

/// Parses, checks the nonce of, and verifies a JWS request to `url`; the key is the
/// header's `jwk` (`want_jwk`) or the account its `kid` names.
async fn verified(
    a: &AcmeAdapter,
    p: &AcmeProvisioner,
    headers: &HeaderMap,
    body: &[u8],
    url: &str,
    base: &str,
    want_jwk: bool,
) -> Result<(Request, Jwk, Option<AcmeAccount>), AcmeError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct != "application/jose+json" {
        return Err(AcmeError::malformed("requests are application/jose+json"));
    }
    let req = parse_request(body, url)?;
    let id = a.nonces.check(&req.header.nonce, a.now())?;
    if !a
        .acme
        .consume_nonce(p, &id.id, id.expires_at)
        .await
        .map_err(from_seam)?
    {
        return Err(AcmeError::new(
            ErrorType::BadNonce,
            "the nonce was used already",
        ));
    }
    let (key, account) = match (&req.header.key, want_jwk) {
        (KeyRef::Jwk(k), true) => (k.clone(), None),
        (KeyRef::Kid(kid), false) => {
            let prefix = format!("{base}/account/");
            let account_id = kid.strip_prefix(&prefix).ok_or_else(|| {
                AcmeError::new(
                    ErrorType::AccountDoesNotExist,
                    "the kid is not an account URL of this provisioner",
                )
            })?;
            let account = a
                .acme
                .account(p, account_id)
                .await
                .map_err(from_seam)?
                .ok_or_else(|| AcmeError::new(ErrorType::AccountDoesNotExist, "no such account"))?;
            let jwk: serde_json::Value = serde_json::from_str(&account.jwk)
                .map_err(|_| AcmeError::new(ErrorType::ServerInternal, "stored key"))?;
            (Jwk::from_json(&jwk)?, Some(account))
        }
        (KeyRef::Kid(_), true) => {
            return Err(AcmeError::malformed(
                "this request is signed with the jwk header, not a kid",
            ))
        }
        (KeyRef::Jwk(_), false) => {
            return Err(AcmeError::malformed(
                "this request is signed with a kid, not a jwk",
            ))
        }
    };
    req.verify(&key)?;
    if let Some(acct) = &account {
        if acct.status != "valid" {
            return Err(AcmeError::new(
                ErrorType::Unauthorized,
                format!("the account is {}", acct.status),
            ));
        }
    }
    Ok((req, key, account))
}

fn account_json(base: &str, acct: &AcmeAccount) -> Vec<u8> {
    serde_json::json!({
        "status": acct.status,
        "contact": acct.contact,
        "orders": format!("{base}/account/{}/orders", acct.id),
    })
    .to_string()
    .into_bytes()
}

fn with_location(mut resp: Response, url: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(url) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// Contact URLs: at most a few `mailto:` addresses (RFC 8555 §7.3).
fn contacts(payload: &serde_json::Value) -> Result<Vec<String>, AcmeError> {
    let Some(list) = payload.get("contact") else {
        return Ok(Vec::new());
    };
    let list = list
        .as_array()
        .ok_or_else(|| AcmeError::malformed("contact is a list of URLs"))?;
    if list.len() > MAX_CONTACTS {
        return Err(AcmeError::new(
            ErrorType::InvalidContact,
            format!("at most {MAX_CONTACTS} contacts"),
        ));
    }
    list.iter()
        .map(|c| {
            let c = c
                .as_str()
                .ok_or_else(|| AcmeError::malformed("a contact is a URL string"))?;
            let Some(addr) = c.strip_prefix("mailto:") else {
                return Err(AcmeError::new(
                    ErrorType::UnsupportedContact,
                    format!("{c:?}: only mailto: contacts"),
                ));
            };
            let ok = addr.len() <= 254
                && addr
                    .split_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
                && !addr.contains([',', ' ', '?', '<', '>']);
            if ok {
                Ok(c.to_owned())
            } else {
                Err(AcmeError::new(
                    ErrorType::InvalidContact,
                    format!("{c:?} is not one e-mail address"),
                ))
            }
        })
        .collect()
}

async fn new_account(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let a: &Arc<AcmeAdapter> = &app.acme;
    let base = base_url(&headers, &name);
    let result = async {
        let p = provisioner(a, &name).await?;
        let url = format!("{base}/new-account");
        let (req, key, _) = verified(a, &p, &headers, &body, &url, &base, true).await?;
        let payload = req.payload_json()?;
        let thumbprint = key.thumbprint();
        let existing = a
            .acme
            .account_by_key(&p, &thumbprint)
            .await
            .map_err(from_seam)?;
        if payload
            .get("onlyReturnExisting")
            .and_then(serde_json::Value::as_bool)
            == Some(true)
        {
            return existing.map(|acct| (acct, StatusCode::OK)).ok_or_else(|| {
                AcmeError::new(ErrorType::AccountDoesNotExist, "no account holds this key")
            });
        }
        if let Some(acct) = existing {
            return Ok((acct, StatusCode::OK));
        }
        let contact = contacts(&payload)?;
        let (acct, created) = a
            .acme
            .create_account(&p, &thumbprint, &key.to_json(), &contact)
            .await
            .map_err(from_seam)?;
        Ok((
            acct,
            if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
        ))
    }
    .await;
    match result {
        Ok((acct, status)) => with_location(
            respond(a, &base, status, account_json(&base, &acct), false),
            &format!("{base}/account/{}", acct.id),
        ),
        Err(e) => problem(a, &base, &e),
    }
}

async fn account(
    State(app): State<App>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let a: &Arc<AcmeAdapter> = &app.acme;
    let base = base_url(&headers, &name);
    let result = async {
        let p = provisioner(a, &name).await?;
        let url = format!("{base}/account/{id}");
        let (req, _, acct) = verified(a, &p, &headers, &body, &url, &base, false).await?;
        let acct = acct.ok_or_else(|| AcmeError::new(ErrorType::ServerInternal, "no account"))?;
        if acct.id != id {
            return Err(AcmeError::new(
                ErrorType::Unauthorized,
                "a request about another account",
            ));
        }
        if req.is_post_as_get() {
            return Ok(acct);
        }
        // RFC 8555 §7.3.2 (contact) and §7.3.6 (deactivation); other fields are ignored.
        let payload = req.payload_json()?;
        let deactivate = match payload.get("status") {
            None => false,
            Some(s) if s == "deactivated" => true,
            Some(s) if s == "valid" => false,
            Some(other) => {
                return Err(AcmeError::malformed(format!(
                    "an account's status can only be set to \"deactivated\", not {other}"
                )))
            }
        };
        let contact = match payload.get("contact") {
            None => None,
            Some(_) => Some(contacts(&payload)?),
        };
        if !deactivate && contact.is_none() {
            return Ok(acct);
        }
        a.acme
            .update_account(&p, &acct, contact.as_deref(), deactivate)
            .await
            .map_err(from_seam)
    }
    .await;
    match result {
        Ok(acct) => with_location(
            respond(a, &base, StatusCode::OK, account_json(&base, &acct), false),
            &format!("{base}/account/{}", acct.id),
        ),
        Err(e) => problem(a, &base, &e),
    }
}

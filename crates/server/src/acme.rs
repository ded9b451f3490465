//! The ACME adapter (RFC 8555), mounted at `/acme/{provisioner}/` on the HTTPS listener.
//!
//! The protocol is `trustbox_proto_acme` (JWS, account keys, nonces, problem documents,
//! the wire JSON); challenge validation is `trustbox_acme_validation`, run as
//! [`trustbox_authority::ACME_VALIDATE`] jobs; what is kept (provisioners, accounts, orders, authorizations,
//! challenges, used nonces) and every certificate go through the seam's [`Acme`] service,
//! which finalizes through the issuance seam as the account.

use crate::api::App;
use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use std::sync::Arc;
use trustbox_acme_validation::{Ports, ValidationError, Validator};
use trustbox_authority::{
    Acme, AcmeAccount, AcmeAuthorization, AcmeChallenge, AcmeIdentifier, AcmeOrder,
    AcmeProvisioner, AuthorityError, ErrorKind, JobHandler, JobView, NewAcmeOrder, Services,
};
use trustbox_proto_acme::{
    authorization_json, challenge_json, directory, jws_signature_to_der, order_json, parse_cert_id,
    parse_eab, parse_identifier, parse_key_change, parse_request, renewal_window, AcmeError,
    AuthorizationStatus, ChallengeStatus, ChallengeType, DirectoryMeta, ErrorType, Identifier, Jwk,
    KeyRef, NonceMinter, OrderStatus, Request,
};
use trustbox_types::RevocationReason;

/// How long a nonce is accepted.
const NONCE_MAX_AGE_S: i64 = 3600;
/// Most contact URLs an account may list.
const MAX_CONTACTS: usize = 8;
/// Order URLs per page of an account's orders list.
const ORDERS_PER_PAGE: u32 = 100;
/// What clients are told to wait before polling a processing resource again, seconds.
const RETRY_AFTER_S: u32 = 1;
/// Largest JWS request body accepted (a finalize with a CSR for the most identifiers an
/// order may have fits many times over).
const MAX_JWS_BYTES: usize = 64 * 1024;
/// What clients are told to wait after a rate limit, seconds.
const RATE_LIMIT_RETRY_S: u32 = 60;

/// The adapter's state: the seam's ACME service, the nonce key, the validator.
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

    /// The seam's ACME service (the REST API manages provisioners through it).
    pub(crate) fn service(&self) -> &Acme {
        &self.acme
    }

    fn now(&self) -> i64 {
        self.acme.now_s()
    }

    fn fresh_nonce(&self) -> String {
        self.nonces
            .mint(self.now(), uuid::Uuid::new_v4().into_bytes())
    }
}

/// The job handler that validates one challenge and records the outcome through the seam.
pub(crate) struct ValidateChallenge {
    validator: Validator,
}

impl ValidateChallenge {
    /// A handler validating with `validator`.
    pub(crate) fn new(validator: Validator) -> Self {
        Self { validator }
    }
}

#[async_trait]
impl JobHandler for ValidateChallenge {
    async fn run(&self, services: &Services, job: &JobView) -> Result<(), AuthorityError> {
        let payload: Value = serde_json::from_str(&job.payload)
            .map_err(|_| AuthorityError::invalid("bad-job", "the payload is not JSON"))?;
        let provisioner = payload["provisioner"].as_str().unwrap_or_default();
        let Some(target) = services
            .acme
            .validation_target(job.tenant, provisioner, &job.key)
            .await?
        else {
            return Ok(());
        };
        let ch = &target.challenge;
        let kind = ChallengeType::parse(&ch.kind)
            .ok_or_else(|| AuthorityError::invalid("bad-job", "unknown challenge type"))?;
        let identifier = match target.identifier.kind.as_str() {
            "ip" => target
                .identifier
                .value
                .parse()
                .map(Identifier::Ip)
                .map_err(|_| AuthorityError::invalid("bad-job", "stored address"))?,
            _ if target.wildcard => Identifier::Dns(format!("*.{}", target.identifier.value)),
            _ => Identifier::Dns(target.identifier.value.clone()),
        };
        let key_authz = format!("{}.{}", ch.token, target.thumbprint);
        let ports = Ports {
            http: target.settings.http01_port,
            tls: target.settings.tls_alpn01_port,
        };
        let outcome = self
            .validator
            .validate(kind, &identifier, &ch.token, &key_authz, ports)
            .await;
        match outcome {
            Ok(()) => {
                services
                    .acme
                    .record_validation(job.tenant, &target, Ok(()))
                    .await
            }
            Err(e) if e.is_transient() && job.attempts < job.max_attempts => {
                tracing::debug!(challenge = %ch.id, error = %e, "validation failed; retrying");
                Err(AuthorityError::new(
                    ErrorKind::Unavailable,
                    "validation-retry",
                    e.to_string(),
                ))
            }
            Err(e) => {
                let problem = validation_problem(&e);
                services
                    .acme
                    .record_validation(job.tenant, &target, Err(problem))
                    .await
            }
        }
    }
}

fn validation_problem(e: &ValidationError) -> Value {
    let kind = e.acme_type();
    json!({ "type": kind.urn(), "detail": e.to_string(), "status": kind.status() })
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
        .route(
            "/acme/{provisioner}/account/{id}/orders",
            post(account_orders),
        )
        .route("/acme/{provisioner}/key-change", post(key_change))
        .route("/acme/{provisioner}/new-order", post(new_order))
        .route("/acme/{provisioner}/order/{id}", post(order))
        .route("/acme/{provisioner}/order/{id}/finalize", post(finalize))
        .route("/acme/{provisioner}/authz/{id}", post(authorization))
        .route("/acme/{provisioner}/chall/{id}", post(challenge))
        .route("/acme/{provisioner}/cert/{id}", post(certificate))
        .route("/acme/{provisioner}/revoke-cert", post(revoke_cert))
        .route("/acme/{provisioner}/renewal-info/{id}", get(renewal_info))
}

/// `https://HOST/acme/PROVISIONER`, as the client addressed it (the JWS `url` must match).
fn base_url(headers: &HeaderMap, provisioner: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("https://{host}/acme/{provisioner}")
}

fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn parse_rfc3339(what: &str, v: &Value) -> Result<Option<i64>, AcmeError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map(|t| Some(t.unix_timestamp()))
                .map_err(|_| AcmeError::malformed(format!("{what} is not an RFC 3339 time")))
        }
        _ => Err(AcmeError::malformed(format!("{what} is a string"))),
    }
}

/// An answer with the headers every ACME response carries: a fresh nonce and the
/// directory link.
fn respond(a: &AcmeAdapter, base: &str, status: StatusCode, body: Vec<u8>, ct: &str) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(ct) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&a.fresh_nonce()) {
        h.insert("replay-nonce", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("<{base}/directory>;rel=\"index\"")) {
        h.append(header::LINK, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn json_response(a: &AcmeAdapter, base: &str, status: StatusCode, v: &Value) -> Response {
    respond(
        a,
        base,
        status,
        v.to_string().into_bytes(),
        "application/json",
    )
}

fn problem(a: &AcmeAdapter, base: &str, e: &AcmeError) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = respond(a, base, status, e.to_json(), "application/problem+json");
    if e.kind == ErrorType::RateLimited {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RATE_LIMIT_RETRY_S));
    }
    resp
}

fn with_header(mut resp: Response, name: header::HeaderName, value: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().append(name, v);
    }
    resp
}

/// The seam's error as an ACME error: internal details stay in the log.
fn from_seam(e: AuthorityError) -> AcmeError {
    let kind = match (e.kind, e.code) {
        (_, "rate-limited") => ErrorType::RateLimited,
        (_, "order-not-ready") => ErrorType::OrderNotReady,
        (_, "bad-eab") => ErrorType::Unauthorized,
        (_, "not-enrolled-by-caller" | "bad-key-possession-proof") => ErrorType::Unauthorized,
        (_, "already-revoked" | "certificate-revoked") => ErrorType::AlreadyRevoked,
        (ErrorKind::Unauthenticated | ErrorKind::Forbidden, _) => ErrorType::Unauthorized,
        (ErrorKind::NotFound, _) => {
            return AcmeError::malformed(e.detail).with_status(404);
        }
        (ErrorKind::Invalid | ErrorKind::Conflict, _) => ErrorType::Malformed,
        (ErrorKind::Unavailable, _) => ErrorType::RateLimited,
        (ErrorKind::Internal, _) => {
            tracing::error!(detail = %e.detail, "ACME request failed");
            return AcmeError::new(
                ErrorType::ServerInternal,
                "the request could not be completed",
            );
        }
    };
    AcmeError::new(kind, e.detail)
}

async fn provisioner(a: &AcmeAdapter, name: &str) -> Result<AcmeProvisioner, AcmeError> {
    a.acme.provisioner(name).await.map_err(|e| match e.kind {
        ErrorKind::NotFound => {
            AcmeError::malformed(format!("no ACME provisioner is named {name:?}")).with_status(404)
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
        Ok(p) => {
            let s = &p.settings;
            let meta = DirectoryMeta {
                terms_of_service: s.terms_of_service.clone(),
                external_account_required: s.eab_required,
                profiles: s
                    .profiles
                    .iter()
                    .map(|(n, pr)| (n.clone(), pr.description.clone()))
                    .collect(),
                ..DirectoryMeta::default()
            };
            json_response(a, &base, StatusCode::OK, &directory(&base, &meta))
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
        Ok(_) => respond(a, &base, status, Vec::new(), "application/json"),
        Err(e) => problem(a, &base, &e),
    }
}

/// A verified request: what was sent, with which key, by which account, and the
/// recording of its nonce as used (awaited before the request writes or answers).
struct Verified {
    req: Request,
    key: Jwk,
    account: Option<AcmeAccount>,
    nonce: Option<tokio::task::JoinHandle<Result<bool, AuthorityError>>>,
}

impl Verified {
    fn account(&self) -> Result<&AcmeAccount, AcmeError> {
        self.account
            .as_ref()
            .ok_or_else(|| AcmeError::new(ErrorType::ServerInternal, "no account"))
    }
}

/// How a request must name its key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Signer {
    /// `jwk` (newAccount).
    Jwk,
    /// `kid` (everything else).
    Kid,
    /// Either (revokeCert: the account, or the certificate's key).
    Either,
}

/// Parses, checks the nonce of, and verifies a JWS request to `url`.
async fn verified(
    a: &AcmeAdapter,
    p: &AcmeProvisioner,
    headers: &HeaderMap,
    body: &[u8],
    url: &str,
    base: &str,
    signer: Signer,
) -> Result<Verified, AcmeError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct != "application/jose+json" {
        return Err(AcmeError::malformed("requests are application/jose+json").with_status(415));
    }
    if body.len() > MAX_JWS_BYTES {
        return Err(AcmeError::malformed(format!(
            "a request body is at most {MAX_JWS_BYTES} bytes"
        ))
        .with_status(413));
    }
    let req = parse_request(body, url)?;
    let id = a.nonces.check(&req.header.nonce, a.now())?;
    // Recording the nonce as used (a commit) runs while the key is looked up and checked;
    // the request waits for it before it changes anything or answers.
    let nonce = {
        let (acme, p, id) = (a.acme.clone(), p.clone(), id);
        tokio::spawn(async move { acme.consume_nonce(&p, &id.id, id.expires_at).await })
    };
    let (key, account) = match (&req.header.key, signer) {
        (KeyRef::Jwk(k), Signer::Jwk | Signer::Either) => (k.clone(), None),
        (KeyRef::Kid(kid), Signer::Kid | Signer::Either) => {
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
            let jwk: Value = serde_json::from_str(&account.jwk)
                .map_err(|_| AcmeError::new(ErrorType::ServerInternal, "stored key"))?;
            (Jwk::from_json(&jwk)?, Some(account))
        }
        (KeyRef::Kid(_), Signer::Jwk) => {
            return Err(AcmeError::malformed(
                "this request is signed with the jwk header, not a kid",
            ))
        }
        (KeyRef::Jwk(_), Signer::Kid) => {
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
    Ok(Verified {
        req,
        key,
        account,
        nonce: Some(nonce),
    })
}

/// Waits for the nonce of a request to be recorded as used; `badNonce` if it was before.
async fn nonce_fresh(
    nonce: Option<tokio::task::JoinHandle<Result<bool, AuthorityError>>>,
) -> Result<(), AcmeError> {
    let Some(nonce) = nonce else {
        return Err(AcmeError::new(ErrorType::ServerInternal, "no nonce"));
    };
    match nonce.await {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => Err(AcmeError::new(
            ErrorType::BadNonce,
            "the nonce was used already",
        )),
        Ok(Err(e)) => Err(from_seam(e)),
        Err(_) => Err(AcmeError::new(
            ErrorType::ServerInternal,
            "the nonce could not be recorded",
        )),
    }
}

/// Runs one JWS-authenticated request: looks up the provisioner, verifies, runs `f`,
/// and answers its response or its error as a problem document.
async fn handle<F, Fut>(
    app: &App,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
    path: &str,
    signer: Signer,
    f: F,
) -> Response
where
    F: FnOnce(Ctx, Verified) -> Fut,
    Fut: std::future::Future<Output = Result<Response, AcmeError>>,
{
    let a = app.acme.clone();
    let base = base_url(headers, name);
    let result = async {
        let p = provisioner(&a, name).await?;
        let url = format!("{base}{path}");
        let mut v = verified(&a, &p, headers, body, &url, &base, signer).await?;
        let nonce = v.nonce.take();
        let ctx = Ctx {
            a: a.clone(),
            p,
            base: base.clone(),
        };
        if v.req.is_post_as_get() {
            // a read changes nothing: it runs while the nonce is recorded
            let (answer, fresh) = tokio::join!(f(ctx, v), nonce_fresh(nonce));
            fresh?;
            answer
        } else {
            nonce_fresh(nonce).await?;
            f(ctx, v).await
        }
    }
    .await;
    match result {
        Ok(r) => r,
        Err(e) => problem(&a, &base, &e),
    }
}

/// What a request handler works with.
struct Ctx {
    a: Arc<AcmeAdapter>,
    p: AcmeProvisioner,
    base: String,
}

impl Ctx {
    fn json(&self, status: StatusCode, v: &Value) -> Response {
        json_response(&self.a, &self.base, status, v)
    }

    fn account_url(&self, id: &str) -> String {
        format!("{}/account/{id}", self.base)
    }

    fn account_json(&self, acct: &AcmeAccount) -> Value {
        let mut v = json!({
            "status": acct.status,
            "contact": acct.contact,
            "orders": format!("{}/account/{}/orders", self.base, acct.id),
        });
        if acct.eab_kid.is_some() {
            v["externalAccountBinding"] = json!({ "kid": acct.eab_kid });
        }
        v
    }

    fn order_json(&self, o: &AcmeOrder) -> Result<Value, AcmeError> {
        let identifiers = o
            .identifiers
            .iter()
            .map(|i| parse_identifier(&json!({"type": i.kind, "value": i.value})))
            .collect::<Result<Vec<_>, _>>()?;
        let authz: Vec<String> = o
            .authorizations
            .iter()
            .map(|id| format!("{}/authz/{id}", self.base))
            .collect();
        let status = OrderStatus::parse(&o.status)
            .ok_or_else(|| AcmeError::new(ErrorType::ServerInternal, "order status"))?;
        let cert = o
            .certificate_id
            .as_ref()
            .filter(|_| status == OrderStatus::Valid)
            .map(|c| format!("{}/cert/{c}", self.base));
        let mut v = order_json(
            status,
            &rfc3339(o.expires_at),
            &identifiers,
            &authz,
            &format!("{}/order/{}/finalize", self.base, o.id),
            cert.as_deref(),
            Some(&o.profile),
            None,
        );
        if let Some(e) = &o.error {
            v["error"] = e.clone();
        }
        if let Some(t) = o.not_before {
            v["notBefore"] = json!(rfc3339(t));
        }
        if let Some(t) = o.not_after {
            v["notAfter"] = json!(rfc3339(t));
        }
        if let Some(r) = &o.replaces {
            v["replaces"] = json!(r);
        }
        Ok(v)
    }

    fn order_response(&self, status: StatusCode, o: &AcmeOrder) -> Result<Response, AcmeError> {
        let mut resp = self.json(status, &self.order_json(o)?);
        resp = with_header(
            resp,
            header::LOCATION,
            &format!("{}/order/{}", self.base, o.id),
        );
        if o.status == "processing" {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_S));
        }
        Ok(resp)
    }

    fn challenge_json(&self, c: &AcmeChallenge) -> Result<Value, AcmeError> {
        let kind = ChallengeType::parse(&c.kind)
            .ok_or_else(|| AcmeError::new(ErrorType::ServerInternal, "challenge type"))?;
        let status = ChallengeStatus::parse(&c.status)
            .ok_or_else(|| AcmeError::new(ErrorType::ServerInternal, "challenge status"))?;
        let validated = c.validated_at.map(rfc3339);
        let mut v = challenge_json(
            kind,
            &format!("{}/chall/{}", self.base, c.id),
            &c.token,
            status,
            validated.as_deref(),
        );
        if let Some(e) = &c.error {
            v["error"] = e.clone();
        }
        Ok(v)
    }

    fn challenge_response(&self, c: &AcmeChallenge) -> Result<Response, AcmeError> {
        let resp = self.json(StatusCode::OK, &self.challenge_json(c)?);
        let resp = with_header(
            resp,
            header::LINK,
            &format!("<{}/authz/{}>;rel=\"up\"", self.base, c.authz_id),
        );
        Ok(resp)
    }

    fn authorization_json(&self, z: &AcmeAuthorization) -> Result<Value, AcmeError> {
        let value = if z.wildcard {
            format!("*.{}", z.identifier.value)
        } else {
            z.identifier.value.clone()
        };
        let ident = parse_identifier(&json!({"type": z.identifier.kind, "value": value}))?;
        let status = AuthorizationStatus::parse(&z.status)
            .ok_or_else(|| AcmeError::new(ErrorType::ServerInternal, "authorization status"))?;
        // a valid authorization shows the challenge that made it so
        let challenges = z
            .challenges
            .iter()
            .filter(|c| status != AuthorizationStatus::Valid || c.status == "valid")
            .map(|c| self.challenge_json(c))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(authorization_json(
            &ident,
            status,
            &rfc3339(z.expires_at),
            challenges,
        ))
    }
}

/// Contact URLs: at most a few `mailto:` addresses (RFC 8555 §7.3).
fn contacts(payload: &Value) -> Result<Vec<String>, AcmeError> {
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
    handle(
        &app,
        &name,
        &headers,
        &body,
        "/new-account",
        Signer::Jwk,
        |c, v| async move {
            let payload = v.req.payload_json()?;
            let thumbprint = v.key.thumbprint();
            let existing =
                c.a.acme
                    .account_by_key(&c.p, &thumbprint)
                    .await
                    .map_err(from_seam)?;
            let answer = |acct: &AcmeAccount, status| {
                with_header(
                    c.json(status, &c.account_json(acct)),
                    header::LOCATION,
                    &c.account_url(&acct.id),
                )
            };
            if payload.get("onlyReturnExisting").and_then(Value::as_bool) == Some(true) {
                return existing
                    .map(|acct| answer(&acct, StatusCode::OK))
                    .ok_or_else(|| {
                        AcmeError::new(ErrorType::AccountDoesNotExist, "no account holds this key")
                    });
            }
            if let Some(acct) = existing {
                return Ok(answer(&acct, StatusCode::OK));
            }
            if c.p.settings.terms_of_service.is_some()
                && payload.get("termsOfServiceAgreed").and_then(Value::as_bool) != Some(true)
            {
                return Err(AcmeError::new(
                    ErrorType::UserActionRequired,
                    "the terms of service must be agreed to",
                ));
            }
            let contact = contacts(&payload)?;
            let eab_kid = match payload.get("externalAccountBinding") {
                Some(eab) => {
                    let eab = parse_eab(eab, &format!("{}/new-account", c.base), &v.key)?;
                    c.a.acme
                        .verify_eab(&c.p, &eab.kid, &eab.signing_input, &eab.mac)
                        .await
                        .map_err(from_seam)?;
                    Some(eab.kid)
                }
                None if c.p.settings.eab_required => {
                    return Err(AcmeError::new(
                        ErrorType::ExternalAccountRequired,
                        "this server requires an external account binding",
                    ))
                }
                None => None,
            };
            let (acct, created) =
                c.a.acme
                    .create_account(
                        &c.p,
                        &thumbprint,
                        &v.key.to_json(),
                        &contact,
                        eab_kid.as_deref(),
                    )
                    .await
                    .map_err(from_seam)?;
            Ok(answer(
                &acct,
                if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                },
            ))
        },
    )
    .await
}

async fn account(
    State(app): State<App>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/account/{id}");
    handle(
        &app,
        &name,
        &headers,
        &body,
        &path,
        Signer::Kid,
        |c, v| async move {
            let acct = v.account()?.clone();
            if acct.id != id {
                return Err(AcmeError::new(
                    ErrorType::Unauthorized,
                    "a request about another account",
                ));
            }
            let answer = |acct: &AcmeAccount| {
                with_header(
                    c.json(StatusCode::OK, &c.account_json(acct)),
                    header::LOCATION,
                    &c.account_url(&acct.id),
                )
            };
            if v.req.is_post_as_get() {
                return Ok(answer(&acct));
            }
            // RFC 8555 §7.3.2 (contact) and §7.3.6 (deactivation); other fields are ignored.
            let payload = v.req.payload_json()?;
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
                return Ok(answer(&acct));
            }
            let acct =
                c.a.acme
                    .update_account(&c.p, &acct, contact.as_deref(), deactivate)
                    .await
                    .map_err(from_seam)?;
            Ok(answer(&acct))
        },
    )
    .await
}

#[derive(serde::Deserialize)]
struct PageQuery {
    #[serde(default)]
    page: u32,
}

async fn account_orders(
    State(app): State<App>,
    Path((name, id)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = if q.page > 0 {
        format!("/account/{id}/orders?page={}", q.page)
    } else {
        format!("/account/{id}/orders")
    };
    handle(
        &app,
        &name,
        &headers,
        &body,
        &path,
        Signer::Kid,
        |c, v| async move {
            let acct = v.account()?;
            if acct.id != id {
                return Err(AcmeError::new(
                    ErrorType::Unauthorized,
                    "a request about another account",
                ));
            }
            let ids =
                c.a.acme
                    .account_orders(&c.p, acct, q.page, ORDERS_PER_PAGE + 1)
                    .await
                    .map_err(from_seam)?;
            let more = ids.len() > ORDERS_PER_PAGE as usize;
            let urls: Vec<String> = ids
                .iter()
                .take(ORDERS_PER_PAGE as usize)
                .map(|o| format!("{}/order/{o}", c.base))
                .collect();
            let mut resp = c.json(StatusCode::OK, &json!({ "orders": urls }));
            if more {
                resp = with_header(
                    resp,
                    header::LINK,
                    &format!(
                        "<{}/account/{id}/orders?page={}>;rel=\"next\"",
                        c.base,
                        q.page + 1
                    ),
                );
            }
            Ok(resp)
        },
    )
    .await
}

async fn key_change(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(
        &app,
        &name,
        &headers,
        &body,
        "/key-change",
        Signer::Kid,
        |c, v| async move {
            let acct = v.account()?.clone();
            let inner: Value = serde_json::from_slice(&v.req.payload)
                .map_err(|_| AcmeError::malformed("the keyChange payload is a JWS"))?;
            let kc = parse_key_change(&inner, &format!("{}/key-change", c.base))?;
            if kc.account != c.account_url(&acct.id) {
                return Err(AcmeError::malformed(
                    "the inner payload names another account",
                ));
            }
            if kc.old_key != v.key {
                return Err(AcmeError::malformed(
                    "oldKey is not the account's current key",
                ));
            }
            let thumbprint = kc.new_key.thumbprint();
            if let Some(holder) =
                c.a.acme
                    .account_by_key(&c.p, &thumbprint)
                    .await
                    .map_err(from_seam)?
            {
                let e = AcmeError::malformed("another account holds the new key").with_status(409);
                return Ok(with_header(
                    problem(&c.a, &c.base, &e),
                    header::LOCATION,
                    &c.account_url(&holder.id),
                ));
            }
            let acct =
                c.a.acme
                    .change_account_key(&c.p, &acct, &thumbprint, &kc.new_key.to_json())
                    .await
                    .map_err(from_seam)?;
            Ok(with_header(
                c.json(StatusCode::OK, &c.account_json(&acct)),
                header::LOCATION,
                &c.account_url(&acct.id),
            ))
        },
    )
    .await
}

async fn new_order(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(
        &app,
        &name,
        &headers,
        &body,
        "/new-order",
        Signer::Kid,
        |c, v| async move {
            let acct = v.account()?;
            let payload = v.req.payload_json()?;
            let list = payload
                .get("identifiers")
                .and_then(Value::as_array)
                .filter(|l| !l.is_empty())
                .ok_or_else(|| AcmeError::malformed("identifiers is a non-empty list"))?;
            if list.len() > trustbox_authority::MAX_ORDER_IDENTIFIERS {
                return Err(AcmeError::new(
                    ErrorType::RejectedIdentifier,
                    format!(
                        "at most {} identifiers per order",
                        trustbox_authority::MAX_ORDER_IDENTIFIERS
                    ),
                ));
            }
            let mut identifiers: Vec<(AcmeIdentifier, Vec<String>)> = Vec::new();
            for v in list {
                let ident = parse_identifier(v)?;
                let (kind, value) = match &ident {
                    Identifier::Dns(d) => ("dns", d.clone()),
                    Identifier::Ip(ip) => ("ip", ip.to_string()),
                };
                let kinds: Vec<String> = ident
                    .challenge_types()
                    .iter()
                    .map(|t| t.as_str().to_owned())
                    .filter(|t| c.p.settings.challenges.contains(t))
                    .collect();
                if kinds.is_empty() {
                    return Err(AcmeError::new(
                        ErrorType::RejectedIdentifier,
                        format!("no challenge this server offers can prove {value}"),
                    ));
                }
                let id = AcmeIdentifier {
                    kind: kind.into(),
                    value,
                };
                if !identifiers.iter().any(|(i, _)| *i == id) {
                    identifiers.push((id, kinds));
                }
            }
            let profile = match payload.get("profile") {
                None | Some(Value::Null) => None,
                Some(Value::String(p)) if c.p.settings.profiles.contains_key(p) => Some(p.clone()),
                Some(Value::String(p)) => {
                    return Err(AcmeError::new(
                        ErrorType::InvalidProfile,
                        format!("this server offers no profile {p:?}"),
                    ))
                }
                Some(_) => return Err(AcmeError::malformed("profile is a string")),
            };
            let not_before = parse_rfc3339(
                "notBefore",
                payload.get("notBefore").unwrap_or(&Value::Null),
            )?;
            let not_after =
                parse_rfc3339("notAfter", payload.get("notAfter").unwrap_or(&Value::Null))?;
            let replaces = match payload.get("replaces") {
                None | Some(Value::Null) => None,
                Some(Value::String(r)) => {
                    let (aki, serial) = parse_cert_id(r)?;
                    let id =
                        c.a.acme
                            .replaced_certificate(&c.p, acct, &aki, &serial)
                            .await
                            .map_err(|e| match e.code {
                                "already-replaced" => {
                                    AcmeError::new(ErrorType::AlreadyReplaced, e.detail)
                                }
                                _ => from_seam(e),
                            })?;
                    Some((id, r.clone()))
                }
                Some(_) => return Err(AcmeError::malformed("replaces is a string")),
            };
            let order =
                c.a.acme
                    .new_order(
                        &c.p,
                        acct,
                        &NewAcmeOrder {
                            identifiers,
                            profile,
                            not_before,
                            not_after,
                            replaces,
                        },
                    )
                    .await
                    .map_err(from_seam)?;
            c.order_response(StatusCode::CREATED, &order)
        },
    )
    .await
}

async fn order(
    State(app): State<App>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/order/{id}");
    handle(
        &app,
        &name,
        &headers,
        &body,
        &path,
        Signer::Kid,
        |c, v| async move {
            if !v.req.is_post_as_get() {
                return Err(AcmeError::malformed("an order is fetched with POST-as-GET"));
            }
            let o =
                c.a.acme
                    .order(&c.p, v.account()?, &id)
                    .await
                    .map_err(from_seam)?;
            c.order_response(StatusCode::OK, &o)
        },
    )
    .await
}

/// Maps what the seam says about a CSR to badCSR; the rest as usual.
fn finalize_error(e: AuthorityError) -> AcmeError {
    match (e.kind, e.code) {
        (_, "order-not-ready" | "rate-limited") => from_seam(e),
        (ErrorKind::Invalid | ErrorKind::Forbidden, _) => {
            AcmeError::new(ErrorType::BadCsr, e.detail)
        }
        _ => from_seam(e),
    }
}

async fn finalize(
    State(app): State<App>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/order/{id}/finalize");
    handle(
        &app,
        &name,
        &headers,
        &body,
        &path,
        Signer::Kid,
        |c, v| async move {
            let payload = v.req.payload_json()?;
            let csr = payload
                .get("csr")
                .and_then(Value::as_str)
                .ok_or_else(|| AcmeError::malformed("the payload has no csr"))?;
            let csr = {
                use base64::Engine as _;
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(csr)
                    .map_err(|_| {
                        AcmeError::new(ErrorType::BadCsr, "csr is not unpadded base64url DER")
                    })?
            };
            let o =
                c.a.acme
                    .finalize(&c.p, v.account()?, &id, csr)
                    .await
                    .map_err(finalize_error)?;
            c.order_response(StatusCode::OK, &o)
        },
    )
    .await
}

async fn authorization(
    State(app): State<App>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/authz/{id}");
    handle(
        &app,
        &name,
        &headers,
        &body,
        &path,
        Signer::Kid,
        |c, v| async move {
            let acct = v.account()?;
            let z = if v.req.is_post_as_get() {
                c.a.acme.authorization(&c.p, acct, &id).await
            } else {
                let payload = v.req.payload_json()?;
                if payload.get("status").and_then(Value::as_str) != Some("deactivated") {
                    return Err(AcmeError::malformed(
                        "an authorization can only be deactivated",
                    ));
                }
                c.a.acme.deactivate_authorization(&c.p, acct, &id).await
            }
            .map_err(from_seam)?;
            Ok(c.json(StatusCode::OK, &c.authorization_json(&z)?))
        },
    )
    .await
}

async fn challenge(
    State(app): State<App>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/chall/{id}");
    handle(
        &app,
        &name,
        &headers,
        &body,
        &path,
        Signer::Kid,
        |c, v| async move {
            let acct = v.account()?;
            let ch = if v.req.is_post_as_get() {
                c.a.acme
                    .challenge(&c.p, acct, &id)
                    .await
                    .map_err(from_seam)?
            } else {
                // RFC 8555 §7.5.1: the client says it is ready with an empty object
                v.req.payload_json()?;
                c.a.acme
                    .respond_challenge(&c.p, acct, &id)
                    .await
                    .map_err(from_seam)?
            };
            c.challenge_response(&ch)
        },
    )
    .await
}

async fn certificate(
    State(app): State<App>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/cert/{id}");
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    handle(
        &app,
        &name,
        &headers,
        &body,
        &path,
        Signer::Kid,
        |c, v| async move {
            if !v.req.is_post_as_get() {
                return Err(AcmeError::malformed(
                    "a certificate is fetched with POST-as-GET",
                ));
            }
            if !(accept.is_empty()
                || accept.contains("application/pem-certificate-chain")
                || accept.contains("*/*"))
            {
                return Err(AcmeError::malformed(
                    "certificates are served as application/pem-certificate-chain",
                )
                .with_status(406));
            }
            let cert =
                c.a.acme
                    .certificate(&c.p, v.account()?, &id)
                    .await
                    .map_err(from_seam)?;
            Ok(respond(
                &c.a,
                &c.base,
                StatusCode::OK,
                cert.chain_pem.into_bytes(),
                "application/pem-certificate-chain",
            ))
        },
    )
    .await
}

async fn revoke_cert(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(
        &app,
        &name,
        &headers,
        &body,
        "/revoke-cert",
        Signer::Either,
        |c, v| async move {
            let payload = v.req.payload_json()?;
            let der = payload
                .get("certificate")
                .and_then(Value::as_str)
                .ok_or_else(|| AcmeError::malformed("the payload has no certificate"))?;
            let der = {
                use base64::Engine as _;
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(der)
                    .map_err(|_| {
                        AcmeError::malformed("certificate is not unpadded base64url DER")
                    })?
            };
            let reason = match payload.get("reason") {
                None | Some(Value::Null) => RevocationReason::Unspecified,
                Some(r) => r
                    .as_u64()
                    .and_then(|code| u8::try_from(code).ok())
                    .and_then(RevocationReason::from_code)
                    .filter(|r| *r != RevocationReason::RemoveFromCrl)
                    .ok_or_else(|| {
                        AcmeError::new(
                        ErrorType::BadRevocationReason,
                        "reason is a CRL reason code (RFC 5280 §5.3.1) other than removeFromCRL",
                    )
                    })?,
            };
            match &v.account {
                Some(acct) => c.a.acme.revoke(&c.p, acct, &der, reason).await,
                None => {
                    let sig = jws_signature_to_der(&v.req.header.alg, v.req.signature());
                    c.a.acme
                        .revoke_by_key(&c.p, &der, v.req.signing_input().to_vec(), sig, reason)
                        .await
                }
            }
            .map_err(from_seam)?;
            Ok(respond(
                &c.a,
                &c.base,
                StatusCode::OK,
                Vec::new(),
                "application/json",
            ))
        },
    )
    .await
}

/// RFC 9773: the suggested renewal window of a certificate, unauthenticated (GET).
async fn renewal_info(
    State(app): State<App>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let a = &app.acme;
    let base = base_url(&headers, &name);
    let result = async {
        let p = provisioner(a, &name).await?;
        let (aki, serial) = parse_cert_id(&id)?;
        let (nb, na, urgent) = a
            .acme
            .renewal_info(&p, &aki, &serial)
            .await
            .map_err(from_seam)?;
        let (start, end) = renewal_window(nb, na, a.now(), urgent);
        Ok::<_, AcmeError>(json!({
            "suggestedWindow": { "start": rfc3339(start), "end": rfc3339(end) },
        }))
    }
    .await;
    match result {
        Ok(v) => {
            let mut resp = json_response(a, &base, StatusCode::OK, &v);
            // RFC 9773 §4.3: poll again in about six hours
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(21600u32));
            resp
        }
        Err(e) => problem(a, &base, &e),
    }
}

//! Issuance, revocation and inventory reads.

use crate::error::{AuthorityError, ErrorKind};
use crate::{Authority, LoadedIssuer};
use std::sync::Arc;
use std::time::{Duration, Instant};
use trustbox_store::{CertificateFilter, CertificateRecord, IssuanceRecord, RevokeOutcome};
use trustbox_types::{
    CertificateId, CertificateStatus, Fingerprint, IssuerId, Principal, RevocationReason, Scope,
    Serial, SourceProtocol,
};
use trustbox_x509::{lint_leaf, parse_csr, pem, Profile, UrlSet};

/// The longest purpose recorded with an issuance.
pub const MAX_PURPOSE_CHARS: usize = 256;

/// How long a profile read from the store is trusted before it is read again (other
/// replicas may have changed it).
const PROFILE_TTL: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub(crate) struct CachedProfile {
    pub(crate) profile: Arc<Profile>,
    pub(crate) version: i64,
    pub(crate) loaded: Instant,
}

/// One request for a certificate, whatever protocol it arrived by.
#[derive(Clone, Debug)]
pub struct IssuanceRequest {
    /// Who asks (carries the tenant).
    pub principal: Principal,
    /// PKCS#10 CSR, PEM or DER.
    pub csr: Vec<u8>,
    /// Profile name; `tls-server` when `None`.
    pub profile: Option<String>,
    /// Issuer id or name; the tenant's default issuing CA when `None`.
    pub issuer: Option<String>,
    /// What the credential is for (free text, recorded in the audit event).
    pub purpose: Option<String>,
    /// Requested lifetime (minutes are legal; the profile bounds it); the profile's default
    /// when `None`.
    pub validity: Option<std::time::Duration>,
    /// The protocol the request came in by.
    pub source: SourceProtocol,
}

/// A certificate just issued and durably recorded.
#[derive(Clone, Debug)]
pub struct IssuedCertificate {
    /// The inventory record.
    pub record: CertificateRecord,
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// The issuer and its ancestors up to, excluding, the root, PEM.
    pub chain_pem: String,
}

impl Authority {
    /// The seam. Authorize, validate, apply the profile, sign, lint, record, audit.
    pub async fn issue(&self, req: IssuanceRequest) -> Result<IssuedCertificate, AuthorityError> {
        let started = Instant::now();
        let profile_name = req
            .profile
            .clone()
            .unwrap_or_else(|| "tls-server".to_owned());
        let result = self.issue_inner(&req, &profile_name).await;
        let outcome = match &result {
            Ok(_) => "issued",
            Err(e) if e.kind == ErrorKind::Internal => "error",
            Err(e) if e.kind == ErrorKind::Unavailable => "shed",
            Err(_) => "rejected",
        };
        // Labels come from bounded sets: a profile name only once it resolved for the tenant.
        let label = if self.profile_resolved(req.principal.tenant, &profile_name) {
            profile_name
        } else {
            "unknown".to_owned()
        };
        metrics::counter!("trustbox_issuances_total", "profile" => label, "outcome" => outcome)
            .increment(1);
        metrics::histogram!("trustbox_issuance_seconds").record(started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            if !matches!(e.kind, ErrorKind::Internal | ErrorKind::Unavailable) {
                self.audit_refusal(&req.principal, "certificate.issue", "certificate".into(), e)
                    .await;
            }
        }
        result
    }

    async fn issue_inner(
        &self,
        req: &IssuanceRequest,
        profile_name: &str,
    ) -> Result<IssuedCertificate, AuthorityError> {
        let principal = &req.principal;
        Self::require(principal, Scope::CertsIssue)?;
        if let Some(p) = &req.purpose {
            if p.chars().count() > MAX_PURPOSE_CHARS || p.chars().any(char::is_control) {
                return Err(AuthorityError::invalid(
                    "invalid-purpose",
                    format!("purpose must be at most {MAX_PURPOSE_CHARS} characters, without control characters"),
                ));
            }
        }
        let (profile, version) = self.resolve_profile(principal.tenant, profile_name).await?;
        let issuer = match &req.issuer {
            Some(reference) => {
                self.issuer_by_reference(principal.tenant, reference)
                    .await?
            }
            None => self.default_issuer(principal.tenant).await?,
        };
        if issuer.tenant != principal.tenant {
            // Unreachable through the tenant-keyed cache and scoped store reads; kept so a
            // future lookup that forgets the tenant still cannot sign across tenants.
            return Err(unknown_issuer(req.issuer.as_deref().unwrap_or("default")));
        }
        if issuer.revoked {
            return Err(AuthorityError::invalid(
                "issuer-revoked",
                format!("issuer {:?} is revoked and signs nothing", issuer.name),
            ));
        }
        if issuer.is_root {
            return Err(AuthorityError::invalid(
                "root-issuer",
                format!(
                    "issuer {:?} is a root CA; leaf certificates are issued by intermediates",
                    issuer.name
                ),
            ));
        }
        let now = self.clock.now();
        let csr = parse_csr(&req.csr)?;
        let plan = profile.apply(&csr, req.validity, now)?;
        // A principal that proved control of names (ACME) gets certificates for those only.
        if let Some(proved) = &principal.grants.proved_identifiers {
            if let Some(san) = plan
                .sans
                .iter()
                .map(|s| s.to_string().to_ascii_lowercase())
                .find(|s| !proved.iter().any(|p| p.eq_ignore_ascii_case(s)))
            {
                return Err(AuthorityError::new(
                    ErrorKind::Forbidden,
                    "identifier-not-proved",
                    format!("{san} is not among the identifiers this caller proved"),
                ));
            }
        }
        let serial = Serial::random();
        let crl_shard = crate::revocation::shard_of(&serial, issuer.crl_shards);
        let urls = self.urls_for(&issuer, &serial);
        let der = issuer.ca.issue_leaf(&serial, &plan, &csr, &urls)?;
        lint_leaf(&der, &issuer.ca, &plan)?;

        let id = CertificateId::generate();
        let record = CertificateRecord {
            id,
            tenant: principal.tenant,
            issuer: issuer.id,
            serial: serial.to_hex(),
            fingerprint: Fingerprint::of_der(&der).to_string(),
            common_name: plan.common_name.clone(),
            sans: plan.sans.iter().map(|s| s.to_string()).collect(),
            key_algorithm: csr.key_algorithm,
            not_before: plan.not_before.unix_timestamp(),
            not_after: plan.not_after.min(issuer.ca.not_after()).unix_timestamp(),
            status: CertificateStatus::Valid,
            revoked_at: None,
            revocation_reason: None,
            invalidity_date: None,
            crl_shard,
            profile: format!("{}@{}", profile.name, version),
            source: req.source.as_str().to_owned(),
            der,
            created_at: now.unix_timestamp(),
        };
        let event = self.event(
            principal.tenant,
            &principal.audit_actor(),
            "certificate.issue",
            format!("certificate:{id}"),
            "success",
            serde_json::json!({
                "serial": record.serial,
                "issuer": issuer.id,
                "fingerprint": record.fingerprint,
                "profile": record.profile,
                "sans": record.sans,
                "not_after": record.not_after,
                "source": record.source,
                "purpose": req.purpose,
            }),
        );
        let certificate_pem = pem::encode("CERTIFICATE", &record.der);
        self.committer
            .commit(IssuanceRecord {
                certificate: record.clone(),
                event,
            })
            .await?;
        Ok(IssuedCertificate {
            record,
            certificate_pem,
            chain_pem: issuer.chain_pem.clone(),
        })
    }

    /// URLs for the certificate of `issuer` with `serial`, from the configured public base
    /// URL: its CRL shard, the issuer's certificate, and the OCSP responder when enabled.
    pub(crate) fn urls_for(&self, issuer: &LoadedIssuer, serial: &Serial) -> UrlSet {
        let shard = crate::revocation::shard_of(serial, issuer.crl_shards);
        UrlSet {
            crl: self.crl_url(issuer.id, shard),
            ca_issuers: self
                .public_base()
                .map(|base| format!("{base}/ca/{}.cer", issuer.id)),
            ocsp: self
                .public_base()
                .filter(|_| issuer.ocsp_enabled)
                .map(|base| format!("{base}/ocsp/{}", issuer.id)),
        }
    }

    /// The configured public base URL without a trailing slash.
    pub(crate) fn public_base(&self) -> Option<&str> {
        self.config
            .public_url
            .as_deref()
            .map(|b| b.trim_end_matches('/'))
    }

    /// The URL of one CRL shard (its distribution point and issuingDistributionPoint).
    pub(crate) fn crl_url(&self, issuer: IssuerId, shard: u32) -> Option<String> {
        self.public_base()
            .map(|base| format!("{base}/crl/{issuer}/{shard}.crl"))
    }

    /// The tenant's newest version of `name`, or the built-in of that name.
    /// Whether `name` resolved to a profile of `tenant` (cached): the only profile names
    /// used as metric labels.
    pub(crate) fn profile_resolved(&self, tenant: trustbox_types::TenantId, name: &str) -> bool {
        self.profiles
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&(tenant, name.to_owned()))
    }

    pub(crate) async fn resolve_profile(
        &self,
        tenant: trustbox_types::TenantId,
        name: &str,
    ) -> Result<(Arc<Profile>, i64), AuthorityError> {
        let key = (tenant, name.to_owned());
        if let Some(c) = self
            .profiles
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            if c.loaded.elapsed() < PROFILE_TTL {
                return Ok((c.profile.clone(), c.version));
            }
        }
        let (profile, version) = match self.store.profile(tenant, name).await? {
            Some(rec) => {
                let p: Profile =
                    serde_json::from_str(&rec.document).map_err(AuthorityError::internal)?;
                (p, rec.version)
            }
            None => match trustbox_x509::builtin_profiles()
                .into_iter()
                .find(|p| p.name == name)
            {
                Some(p) => (p, 0),
                None => {
                    return Err(AuthorityError::invalid(
                        "unknown-profile",
                        format!("profile {name:?} does not exist"),
                    ));
                }
            },
        };
        let profile = Arc::new(profile);
        self.profiles
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                key,
                CachedProfile {
                    profile: profile.clone(),
                    version,
                    loaded: Instant::now(),
                },
            );
        Ok((profile, version))
    }

    /// Revokes the tenant's certificate `id`: one committed row change plus its audit event,
    /// then its CRL shard is regenerated (batched with other revocations) and its cached
    /// OCSP responses are dropped.
    pub async fn revoke(
        &self,
        principal: &Principal,
        id: CertificateId,
        reason: RevocationReason,
        invalidity_date: Option<i64>,
    ) -> Result<CertificateRecord, AuthorityError> {
        Self::require(principal, Scope::CertsRevoke)?;
        self.revoke_unchecked(principal, id, reason, invalidity_date, "certificate.revoke")
            .await
    }

    pub(crate) async fn revoke_unchecked(
        &self,
        principal: &Principal,
        id: CertificateId,
        reason: RevocationReason,
        invalidity_date: Option<i64>,
        action: &str,
    ) -> Result<CertificateRecord, AuthorityError> {
        let now = self.now_s();
        if invalidity_date.is_some_and(|t| t > now) {
            return Err(AuthorityError::invalid(
                "invalid-invalidity-date",
                "invalidity_date may not lie in the future",
            ));
        }
        // The event names exactly which certificate: a stored one swapped later breaks the
        // chain's verification.
        let target = self
            .store
            .certificate(principal.tenant, id)
            .await?
            .ok_or_else(|| AuthorityError::not_found("certificate"))?;
        let event = self.event(
            principal.tenant,
            &principal.audit_actor(),
            action,
            format!("certificate:{id}"),
            "success",
            serde_json::json!({
                "reason": reason.as_str(),
                "invalidity_date": invalidity_date,
                "serial": target.serial,
                "issuer": target.issuer,
                "fingerprint": target.fingerprint,
            }),
        );
        match self
            .store
            .revoke_certificate(principal.tenant, id, now, reason, invalidity_date, &event)
            .await
        {
            Ok(RevokeOutcome::Revoked(c)) => {
                metrics::counter!("trustbox_revocations_total", "reason" => reason.as_str())
                    .increment(1);
                self.after_revocation(&c);
                Ok(c)
            }
            Ok(RevokeOutcome::AlreadyRevoked(c)) => Err(AuthorityError::new(
                ErrorKind::Conflict,
                "already-revoked",
                format!(
                    "certificate {id} was already revoked ({})",
                    c.revocation_reason
                        .map(|r| r.as_str())
                        .unwrap_or("unspecified")
                ),
            )),
            Err(trustbox_store::StoreError::NotFound) => {
                Err(AuthorityError::not_found("certificate"))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The tenant's certificate `id`, with its issuer chain.
    pub async fn certificate(
        &self,
        principal: &Principal,
        id: CertificateId,
    ) -> Result<IssuedCertificate, AuthorityError> {
        Self::require(principal, Scope::CertsRead)?;
        let record = self
            .store
            .certificate(principal.tenant, id)
            .await?
            .ok_or_else(|| AuthorityError::not_found("certificate"))?;
        let issuer = self.load_issuer(principal.tenant, record.issuer).await?;
        Ok(IssuedCertificate {
            certificate_pem: pem::encode("CERTIFICATE", &record.der),
            chain_pem: issuer.chain_pem.clone(),
            record,
        })
    }

    /// A page of the tenant's certificates.
    pub async fn list_certificates(
        &self,
        principal: &Principal,
        filter: &CertificateFilter,
    ) -> Result<Vec<CertificateRecord>, AuthorityError> {
        Self::require(principal, Scope::CertsRead)?;
        Ok(self
            .store
            .list_certificates(principal.tenant, filter)
            .await?)
    }

    pub(crate) async fn default_issuer(
        &self,
        tenant: trustbox_types::TenantId,
    ) -> Result<Arc<LoadedIssuer>, AuthorityError> {
        let cached = self
            .default_issuer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&tenant)
            .copied();
        let id = match cached {
            Some(id) => id,
            None => {
                let issuers = self.store.list_issuers(tenant).await?;
                let id = issuers
                    .iter()
                    .find(|i| i.parent.is_some())
                    .map(|i| i.id)
                    .ok_or_else(|| {
                        AuthorityError::invalid(
                            "no-issuer",
                            "this tenant has no issuing CA; create an intermediate first",
                        )
                    })?;
                self.default_issuer
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(tenant, id);
                id
            }
        };
        self.load_issuer(tenant, id).await
    }

    pub(crate) async fn issuer_by_reference(
        &self,
        tenant: trustbox_types::TenantId,
        reference: &str,
    ) -> Result<Arc<LoadedIssuer>, AuthorityError> {
        let unknown = || unknown_issuer(reference);
        let id = match reference.parse::<IssuerId>() {
            Ok(id) => id,
            Err(_) => {
                self.store
                    .issuer_by_name(tenant, reference)
                    .await?
                    .ok_or_else(unknown)?
                    .id
            }
        };
        match self.load_issuer(tenant, id).await {
            Err(e) if e.kind == ErrorKind::NotFound => Err(unknown()),
            other => other,
        }
    }
}

/// The answer for an issuer reference the tenant does not have: the same whether the id or
/// name exists in another tenant or nowhere, so it cannot be used to probe other tenants.
pub(crate) fn unknown_issuer(reference: &str) -> AuthorityError {
    AuthorityError::new(
        ErrorKind::NotFound,
        "unknown-issuer",
        format!("issuer {reference:?} does not exist"),
    )
}

//! Issuance, revocation and inventory reads.

use crate::error::{AuthorityError, ErrorKind};
use crate::{Authority, Certificate, CertificateQuery, LoadedIssuer};
use std::sync::Arc;
use std::time::{Duration, Instant};
use trustbox_store::{CertificateRecord, IssuanceRecord, RevokeOutcome};
use trustbox_types::{
    CertificateId, CertificateStatus, Fingerprint, IssuerId, Principal, RevocationReason, Scope,
    Serial, SourceProtocol,
};
use trustbox_x509::{lint_leaf, parse_csr, pem, ParsedCsr, Profile, SubjectAltName, UrlSet};

use crate::request::{
    Enrollment, HookContext, HookDecision, IssuanceOutcome, IssuanceRequest, IssuedCertificate,
    SubjectKey, MAX_ENROLLMENT_CHARS, MAX_IDEMPOTENCY_KEY_CHARS,
};

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

impl Authority {
    /// The seam. Authorize, validate the subject key, apply the profile, consult the hooks,
    /// build and lint the certificate, sign it through custody, record it with its audit
    /// event in one commit; only then answer.
    pub(crate) async fn issue(
        &self,
        req: IssuanceRequest,
    ) -> Result<IssuanceOutcome, AuthorityError> {
        let started = Instant::now();
        let profile_name = req
            .profile
            .clone()
            .unwrap_or_else(|| "tls-server".to_owned());
        let result = self.issue_inner(&req, &profile_name).await;
        let outcome = match &result {
            Ok(IssuanceOutcome::Issued(c)) if c.replayed => "replayed",
            Ok(IssuanceOutcome::Issued(_)) => "issued",
            Ok(IssuanceOutcome::Pending { .. }) => "pending",
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

    /// Checks the request's free-text fields: bounded, without control characters.
    fn check_request_text(req: &IssuanceRequest) -> Result<(), AuthorityError> {
        let ok =
            |s: &str, most: usize| s.chars().count() <= most && !s.chars().any(char::is_control);
        if let Some(p) = &req.purpose {
            if !ok(p, MAX_PURPOSE_CHARS) {
                return Err(AuthorityError::invalid(
                    "invalid-purpose",
                    format!("purpose must be at most {MAX_PURPOSE_CHARS} characters, without control characters"),
                ));
            }
        }
        let e = &req.enrollment;
        for (what, v) in [
            ("label", &e.label),
            ("account", &e.account),
            ("order", &e.order),
            ("transaction", &e.transaction),
        ] {
            if v.as_deref().is_some_and(|v| !ok(v, MAX_ENROLLMENT_CHARS)) {
                return Err(AuthorityError::invalid(
                    "invalid-enrollment",
                    format!("enrollment {what} must be at most {MAX_ENROLLMENT_CHARS} characters, without control characters"),
                ));
            }
        }
        if let Some(k) = &req.idempotency_key {
            if k.is_empty() || !ok(k, MAX_IDEMPOTENCY_KEY_CHARS) {
                return Err(AuthorityError::invalid(
                    "invalid-idempotency-key",
                    format!("an idempotency key is 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters, without control characters"),
                ));
            }
        }
        Ok(())
    }

    /// The subject key as a checked request: a verified CSR, or a key generated now (with
    /// the request's identifiers as its names).
    async fn subject_of(
        req: &IssuanceRequest,
    ) -> Result<(ParsedCsr, Option<Arc<trustbox_crypto::GeneratedKey>>), AuthorityError> {
        match &req.subject_key {
            SubjectKey::Pkcs10(bytes) => {
                let csr = parse_csr(bytes)?;
                if !req.identifiers.is_empty() && !same_names(&csr.sans, &req.identifiers) {
                    return Err(AuthorityError::invalid(
                        "identifiers-mismatch",
                        "the CSR's subject alternative names differ from the requested identifiers",
                    ));
                }
                Ok((csr, None))
            }
            SubjectKey::Generate(alg) => {
                if req.identifiers.is_empty() {
                    return Err(AuthorityError::invalid(
                        "identifiers-required",
                        "a certificate for a generated key needs the identifiers it is for",
                    ));
                }
                let alg = *alg;
                // RSA generation takes seconds: off the async workers.
                let key = tokio::task::spawn_blocking(move || {
                    trustbox_crypto::generate_subscriber_key(alg)
                })
                .await
                .map_err(AuthorityError::internal)?
                .map_err(AuthorityError::internal)?;
                let mut sans = req.identifiers.clone();
                sans.sort();
                sans.dedup();
                let csr = ParsedCsr {
                    der: Vec::new(),
                    common_name: None,
                    sans,
                    key_algorithm: alg,
                    public_key_spki: key.spki.clone(),
                    public_key_raw: key.raw.clone(),
                };
                Ok((csr, Some(Arc::new(key))))
            }
            SubjectKey::Crmf(_) | SubjectKey::SshPublicKey(_) => Err(AuthorityError::invalid(
                "unsupported-subject-key",
                "this server does not issue X.509 certificates for this kind of subject key yet",
            )),
        }
    }

    async fn issue_inner(
        &self,
        req: &IssuanceRequest,
        profile_name: &str,
    ) -> Result<IssuanceOutcome, AuthorityError> {
        let principal = &req.principal;
        Self::require(principal, Scope::CertsIssue)?;
        Self::check_request_text(req)?;
        if let Some(key) = &req.idempotency_key {
            if let Some(done) = self
                .store
                .certificate_by_idempotency_key(principal.tenant, key)
                .await?
            {
                return self.replay(req, done).await;
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
        let (csr, generated) = Self::subject_of(req).await?;
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
        if let Some(old) = req.replaces {
            if self
                .store
                .certificate(principal.tenant, old)
                .await?
                .is_none()
            {
                return Err(AuthorityError::invalid(
                    "unknown-replaced-certificate",
                    format!("certificate {old} (replaces) is not in this tenant's inventory"),
                ));
            }
        }
        let hooks = self.hooks();
        let ctx = HookContext {
            principal,
            profile: &profile.name,
            issuer: issuer.id,
            plan: &plan,
            key_algorithm: csr.key_algorithm,
            source: req.source,
            enrollment: &req.enrollment,
            idempotency_key: req.idempotency_key.as_deref(),
        };
        for hook in hooks.iter() {
            match hook.decide(&ctx).await {
                HookDecision::Allow => {}
                HookDecision::Deny(e) => return Err(e),
                HookDecision::Pending(retry_after) => {
                    return self.pending(req, hook.name(), retry_after).await
                }
            }
        }
        let serial = Serial::random();
        let crl_shard = crate::revocation::shard_of(&serial, issuer.crl_shards);
        let urls = self.urls_for(&issuer, &serial);
        // Built and linted before custody is asked for anything; then signed on the
        // signing pool (inline for in-memory keys, on blocking threads for keys that wait).
        let unsigned = issuer.ca.prepare_leaf(&serial, &plan, &csr, &urls)?;
        lint_leaf(unsigned.preview_der(), &issuer.ca, &plan)?;
        for hook in hooks.iter() {
            hook.lint(&ctx, unsigned.preview_der())?;
        }
        let signature = self
            .signing
            .sign(unsigned.signer(), unsigned.tbs())
            .await
            .map_err(AuthorityError::internal)?;
        let der = unsigned.assemble(&signature);

        let id = CertificateId::generate();
        let enrollment = enrollment_json(req.source, &req.enrollment);
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
            enrollment: enrollment.as_ref().map(|e| e.to_string()),
            idempotency_key: req.idempotency_key.clone(),
            replaces: req.replaces,
        };
        let event = self.event(
            principal.tenant,
            &principal.audit_actor(),
            "certificate.issue",
            format!("certificate:{id}"),
            "success",
            IssueDetails {
                enrollment: enrollment.as_ref(),
                fingerprint: &record.fingerprint,
                issuer: issuer.id,
                key_generated: generated.is_some(),
                not_after: record.not_after,
                profile: &record.profile,
                purpose: req.purpose.as_deref(),
                replaces: req.replaces,
                sans: &record.sans,
                serial: &record.serial,
                source: &record.source,
            },
        );
        let certificate_pem = pem::encode("CERTIFICATE", &record.der);
        // Made before the commit: once committed, nothing may fail before the answer.
        let certificate = Certificate::try_from(record.clone())?;
        match self
            .committer
            .commit(IssuanceRecord {
                certificate: record,
                event,
            })
            .await
        {
            Ok(()) => {}
            // The same key committed first on another replica: answer with its certificate.
            Err(e) if e.kind == ErrorKind::Conflict && req.idempotency_key.is_some() => {
                let key = req.idempotency_key.as_deref().unwrap_or_default();
                return match self
                    .store
                    .certificate_by_idempotency_key(principal.tenant, key)
                    .await?
                {
                    Some(done) => self.replay(req, done).await,
                    None => Err(e),
                };
            }
            Err(e) => return Err(e),
        }
        Ok(IssuanceOutcome::Issued(Box::new(IssuedCertificate {
            certificate,
            chain_der: issuer.chain_der.clone(),
            chain_pem: issuer.chain_pem.clone(),
            certificate_pem,
            private_key: generated,
            replayed: false,
        })))
    }

    /// The answer to a retried request: the certificate its first attempt got, if the
    /// retry is for the same key.
    async fn replay(
        &self,
        req: &IssuanceRequest,
        done: CertificateRecord,
    ) -> Result<IssuanceOutcome, AuthorityError> {
        let reused = || {
            AuthorityError::new(
                ErrorKind::Conflict,
                "idempotency-key-reused",
                "this idempotency key was used for another request",
            )
        };
        match &req.subject_key {
            SubjectKey::Pkcs10(bytes) => {
                let csr = parse_csr(bytes)?;
                if trustbox_x509::spki_of(&done.der).as_deref() != Some(csr.public_key_spki.as_slice()) {
                    return Err(reused());
                }
            }
            SubjectKey::Generate(_) => {
                return Err(AuthorityError::new(
                    ErrorKind::Conflict,
                    "idempotency-key-used",
                    "the key generated for this request was delivered once and is not kept; request again with a new idempotency key",
                ))
            }
            SubjectKey::Crmf(_) | SubjectKey::SshPublicKey(_) => return Err(reused()),
        }
        let issuer = self.load_issuer(done.tenant, done.issuer).await?;
        Ok(IssuanceOutcome::Issued(Box::new(IssuedCertificate {
            certificate_pem: pem::encode("CERTIFICATE", &done.der),
            chain_der: issuer.chain_der.clone(),
            chain_pem: issuer.chain_pem.clone(),
            certificate: done.try_into()?,
            private_key: None,
            replayed: true,
        })))
    }

    /// A pending answer, audited before it is given (nothing was signed).
    async fn pending(
        &self,
        req: &IssuanceRequest,
        hook: &str,
        retry_after: Duration,
    ) -> Result<IssuanceOutcome, AuthorityError> {
        let request_id = req
            .idempotency_key
            .clone()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let event = self.event(
            req.principal.tenant,
            &req.principal.audit_actor(),
            "certificate.issue",
            format!("request:{}", crate::refusals::bounded(&request_id)),
            "pending",
            serde_json::json!({ "hook": hook, "retry_after_s": retry_after.as_secs() }),
        );
        // Committed before the client hears "pending", like any answer it may rely on.
        self.store
            .append_audit(std::slice::from_ref(&event))
            .await?;
        Ok(IssuanceOutcome::Pending {
            request_id,
            retry_after,
        })
    }

    /// [`Authority::issue`], for tests that expect a certificate.
    #[cfg(test)]
    pub(crate) async fn issued(
        &self,
        req: IssuanceRequest,
    ) -> Result<IssuedCertificate, AuthorityError> {
        self.issue(req).await.and_then(IssuanceOutcome::into_issued)
    }

    /// Registers a hook; hooks run in registration order after the profile, before the
    /// signature (see [`crate::IssuanceHook`]).
    pub(crate) fn add_issuance_hook(&self, hook: Arc<dyn crate::IssuanceHook>) {
        let mut hooks = self.hooks.write().unwrap_or_else(|e| e.into_inner());
        let mut next: Vec<_> = hooks.iter().cloned().collect();
        next.push(hook);
        *hooks = Arc::new(next);
    }

    fn hooks(&self) -> Arc<Vec<Arc<dyn crate::IssuanceHook>>> {
        self.hooks.read().unwrap_or_else(|e| e.into_inner()).clone()
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
    pub(crate) async fn revoke(
        &self,
        principal: &Principal,
        id: CertificateId,
        reason: RevocationReason,
        invalidity_date: Option<i64>,
    ) -> Result<Certificate, AuthorityError> {
        Self::require(principal, Scope::CertsRevoke)?;
        self.revoke_unchecked(principal, id, reason, invalidity_date, "certificate.revoke")
            .await?
            .try_into()
    }

    /// Revokes the certificate `target` names, on the proof the protocol offers: the
    /// `certs:revoke` scope, or possession of the certificate's key.
    pub(crate) async fn revoke_by(
        &self,
        principal: &Principal,
        target: &crate::CertificateRef,
        proof: &crate::RevocationProof,
        reason: RevocationReason,
        invalidity_date: Option<i64>,
    ) -> Result<Certificate, AuthorityError> {
        use crate::{CertificateRef, RevocationProof};
        let result = async {
            let record = match target {
                CertificateRef::Id(id) => self.store.certificate(principal.tenant, *id).await?,
                CertificateRef::Serial { issuer, serial } => {
                    self.store
                        .certificate_by_serial(principal.tenant, *issuer, &serial.to_hex())
                        .await?
                }
                CertificateRef::Certificate(der) => self.by_der(principal, der).await?,
            }
            .ok_or_else(|| AuthorityError::not_found("certificate"))?;
            let action = match proof {
                RevocationProof::Scope => {
                    Self::require(principal, Scope::CertsRevoke)?;
                    "certificate.revoke"
                }
                RevocationProof::KeyPossession { message, signature } => {
                    let spki = trustbox_x509::spki_of(&record.der).ok_or_else(|| {
                        AuthorityError::internal("stored certificate does not parse")
                    })?;
                    if !trustbox_crypto::verify_with_spki(
                        record.key_algorithm,
                        &spki,
                        message,
                        signature,
                    ) {
                        return Err(AuthorityError::new(
                            ErrorKind::Forbidden,
                            "bad-key-possession-proof",
                            "the signature was not made with this certificate's key",
                        ));
                    }
                    "certificate.revoke.key-possession"
                }
                RevocationProof::EnrolledBy { label, account } => {
                    let enrolled: Option<serde_json::Value> = record
                        .enrollment
                        .as_deref()
                        .and_then(|e| serde_json::from_str(e).ok());
                    let field = |k: &str| {
                        enrolled
                            .as_ref()
                            .and_then(|e| e.get(k))
                            .and_then(|v| v.as_str())
                            .map(str::to_owned)
                    };
                    if field("label").as_deref() != Some(label.as_str())
                        || field("account").as_deref() != Some(account.as_str())
                    {
                        return Err(AuthorityError::new(
                            ErrorKind::Forbidden,
                            "not-enrolled-by-caller",
                            "this certificate was not enrolled by the caller",
                        ));
                    }
                    "certificate.revoke.enrolled-by"
                }
            };
            self.revoke_unchecked(principal, record.id, reason, invalidity_date, action)
                .await?
                .try_into()
        }
        .await;
        if let Err(e) = &result {
            if !matches!(
                e.kind,
                ErrorKind::Internal | ErrorKind::Unavailable | ErrorKind::Conflict
            ) {
                self.audit_refusal(principal, "certificate.revoke", "certificate".into(), e)
                    .await;
            }
        }
        result
    }

    /// The tenant's inventory record of exactly the certificate `der`.
    async fn by_der(
        &self,
        principal: &Principal,
        der: &[u8],
    ) -> Result<Option<CertificateRecord>, AuthorityError> {
        let Some((issuer_name, _, serial)) = trustbox_x509::names_and_serial_of(der) else {
            return Err(AuthorityError::invalid(
                "bad-certificate",
                "the certificate does not parse",
            ));
        };
        for issuer in self.store.list_issuers(principal.tenant).await? {
            let subject = trustbox_x509::names_and_serial_of(&issuer.certificate_der).map(|n| n.1);
            if subject.as_deref() != Some(issuer_name.as_slice()) {
                continue;
            }
            if let Some(rec) = self
                .store
                .certificate_by_serial(principal.tenant, issuer.id, &serial.to_hex())
                .await?
            {
                if rec.der == der {
                    return Ok(Some(rec));
                }
            }
        }
        Ok(None)
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
    pub(crate) async fn certificate(
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
            chain_der: issuer.chain_der.clone(),
            chain_pem: issuer.chain_pem.clone(),
            certificate: record.try_into()?,
            private_key: None,
            replayed: false,
        })
    }

    /// A page of the tenant's certificates.
    pub(crate) async fn list_certificates(
        &self,
        principal: &Principal,
        query: &CertificateQuery,
    ) -> Result<Vec<Certificate>, AuthorityError> {
        Self::require(principal, Scope::CertsRead)?;
        crate::domain::certificates(
            self.store
                .list_certificates(principal.tenant, &query.into())
                .await?,
        )
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

/// The details of a `certificate.issue` event (keys in alphabetical order, as a JSON map
/// would hold them), serialized without building a map.
#[derive(serde::Serialize)]
struct IssueDetails<'a> {
    enrollment: Option<&'a serde_json::Value>,
    fingerprint: &'a str,
    issuer: IssuerId,
    key_generated: bool,
    not_after: i64,
    profile: &'a str,
    purpose: Option<&'a str>,
    replaces: Option<CertificateId>,
    sans: &'a [String],
    serial: &'a str,
    source: &'a str,
}

/// Whether two name lists hold the same names (order and duplicates aside).
fn same_names(a: &[SubjectAltName], b: &[SubjectAltName]) -> bool {
    let set = |v: &[SubjectAltName]| {
        let mut v: Vec<String> = v
            .iter()
            .map(|s| s.to_string().to_ascii_lowercase())
            .collect();
        v.sort();
        v.dedup();
        v
    };
    set(a) == set(b)
}

/// The enrollment metadata stored with the certificate, when there is any.
fn enrollment_json(source: SourceProtocol, e: &Enrollment) -> Option<serde_json::Value> {
    if e.is_empty() {
        return None;
    }
    Some(serde_json::json!({
        "protocol": source.as_str(),
        "label": e.label,
        "account": e.account,
        "order": e.order,
        "transaction": e.transaction,
    }))
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

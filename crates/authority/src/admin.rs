//! Tenants, issuers, profiles and the audit chain.

use crate::error::{AuthorityError, ErrorKind};
use crate::{AuditEntry, Authority, ChainBreak, LoadedIssuer, Tenant};
use serde::Serialize;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};
use trustbox_crypto::{KeyOwner, KeyRole};
use trustbox_store::{
    CertificateRecord, IssuanceRecord, IssuerRecord, ProfileRecord, TenantRecord,
};
use trustbox_types::{
    CertificateId, CertificateStatus, Fingerprint, IssuerId, KeyAlgorithm, Principal, ProfileId,
    Scope, TenantId,
};
use trustbox_x509::{pem, CaParams, IssuingCa, Profile};

/// How long a loaded issuer is trusted before its record and revocation status are read
/// again (another replica may have revoked it or switched its OCSP responder off).
pub(crate) const ISSUER_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// A request for a new CA: a root when `parent` is `None`, else an intermediate under it.
#[derive(Clone, Debug)]
pub struct NewIssuer {
    /// Unique name within the tenant.
    pub name: String,
    /// Subject commonName.
    pub common_name: String,
    /// Subject organizationName.
    pub organization: Option<String>,
    /// Parent issuer (id or name); `None` for a new root.
    pub parent: Option<String>,
    /// Key algorithm.
    pub key_algorithm: KeyAlgorithm,
    /// Validity in days (clamped to the parent's notAfter).
    pub validity_days: u32,
    /// pathLenConstraint; `None` for unconstrained.
    pub path_len: Option<u8>,
    /// CRL shards; the configured default when `None`.
    pub crl_shards: Option<u32>,
    /// Whether its OCSP responder answers (default true).
    pub ocsp_enabled: Option<bool>,
    /// The key backend its key is generated on (`software`); the default backend when
    /// `None`.
    pub key_backend: Option<String>,
}

/// What the API shows of an issuer (never its key).
#[derive(Clone, Debug, Serialize)]
pub struct IssuerView {
    /// Identifier.
    pub id: IssuerId,
    /// Name.
    pub name: String,
    /// Subject commonName.
    pub common_name: String,
    /// Parent issuer, if not a root.
    pub parent: Option<IssuerId>,
    /// Whether it is a root.
    pub is_root: bool,
    /// Key algorithm.
    pub key_algorithm: KeyAlgorithm,
    /// notBefore (RFC 3339).
    pub not_before: String,
    /// notAfter (RFC 3339).
    pub not_after: String,
    /// The CA certificate, PEM.
    pub certificate: String,
    /// Its ancestors up to, excluding, the root, PEM (empty for roots and for
    /// intermediates directly under a root).
    pub chain: String,
    /// Serial of the CA certificate (lowercase hex).
    pub serial: String,
    /// CRL shards its certificates are spread over.
    pub crl_shards: u32,
    /// Whether its OCSP responder answers.
    pub ocsp_enabled: bool,
    /// The key backend holding its key (`software`).
    pub key_backend: String,
}

/// A profile as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ProfileView {
    /// Version (0 for a built-in never changed by this tenant).
    pub version: i64,
    /// Whether this is the built-in definition.
    pub builtin: bool,
    /// The profile.
    pub profile: Profile,
}

/// The longest tenant name: its CAs' commonNames ("TrustBox Issuing CA (NAME)") must fit
/// X.520's 64 characters.
pub const MAX_TENANT_NAME_CHARS: usize = 42;

pub(crate) fn rfc3339(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

impl Authority {
    /// Loads (and caches) the tenant's issuer `id` with its key opened in custody.
    pub(crate) async fn load_issuer(
        &self,
        tenant: TenantId,
        id: IssuerId,
    ) -> Result<Arc<LoadedIssuer>, AuthorityError> {
        if let Some(i) = self
            .issuers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(tenant, id))
        {
            // Keyed by (tenant, id): a tenant can only ever be handed its own issuer.
            if i.tenant == tenant && i.loaded.elapsed() < ISSUER_TTL && self.caches_trusted() {
                return Ok(i.clone());
            }
        }
        let rec = self
            .store
            .issuer(tenant, id)
            .await?
            .ok_or_else(|| AuthorityError::not_found("issuer"))?;
        let signer = self.open_key(
            &rec.key_backend,
            rec.key_algorithm,
            &rec.key_wrapped,
            &KeyOwner::new(KeyRole::Ca, tenant, id),
        )?;
        let ca = IssuingCa::from_certificate(rec.certificate_der.clone(), signer)
            .map_err(AuthorityError::internal)?;
        // chain: this issuer and its ancestors, excluding the root
        let mut chain_pem = String::new();
        let mut chain_der = Vec::new();
        let mut cursor = Some(rec.clone());
        while let Some(r) = cursor {
            let Some(parent) = r.parent else { break };
            chain_pem.push_str(&pem::encode("CERTIFICATE", &r.certificate_der));
            cursor = self.store.issuer(tenant, parent).await?;
            chain_der.push(r.certificate_der);
        }
        let revoked = match rec.parent {
            Some(parent) => self
                .store
                .certificate_by_serial(tenant, parent, &ca.serial().to_hex())
                .await?
                .is_some_and(|c| c.status == CertificateStatus::Revoked),
            None => false,
        };
        if rec.tenant != tenant || rec.id != id {
            // The store filters by tenant; this is a second line of defence.
            return Err(AuthorityError::not_found("issuer"));
        }
        let loaded = Arc::new(LoadedIssuer {
            id,
            tenant,
            name: rec.name.clone(),
            is_root: rec.parent.is_none(),
            ca,
            chain_pem,
            chain_der: Arc::new(chain_der),
            crl_shards: rec.crl_shards.max(1),
            ocsp_enabled: rec.ocsp_enabled,
            revoked,
            loaded: std::time::Instant::now(),
        });
        self.issuers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert((tenant, id), loaded.clone());
        Ok(loaded)
    }

    /// Drops every cached issuer of `tenant` (after one of its certificates was revoked
    /// elsewhere: it may have been an intermediate's).
    pub(crate) fn forget_tenant_issuers(&self, tenant: TenantId) {
        self.issuers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(t, _), _| *t != tenant);
        self.default_issuer
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&tenant);
    }

    /// Drops a cached issuer so the next use reads it again.
    pub(crate) fn forget_issuer(&self, tenant: TenantId, id: IssuerId) {
        self.issuers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(tenant, id));
        self.default_issuer
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|t, i| *t != tenant || *i != id);
    }

    fn view(&self, rec: &IssuerRecord, chain: String) -> IssuerView {
        IssuerView {
            id: rec.id,
            name: rec.name.clone(),
            common_name: rec.common_name.clone(),
            parent: rec.parent,
            is_root: rec.parent.is_none(),
            key_algorithm: rec.key_algorithm,
            not_before: rfc3339(rec.not_before),
            not_after: rfc3339(rec.not_after),
            certificate: pem::encode("CERTIFICATE", &rec.certificate_der),
            chain,
            serial: IssuingCa::serial_of(&rec.certificate_der)
                .map(|s| s.to_hex())
                .unwrap_or_default(),
            crl_shards: rec.crl_shards,
            ocsp_enabled: rec.ocsp_enabled,
            key_backend: self
                .keys
                .backend_of(&rec.key_backend)
                .unwrap_or_else(|| rec.key_backend.clone()),
        }
    }

    /// Creates a root or intermediate CA for the principal's tenant.
    pub(crate) async fn create_issuer(
        &self,
        principal: &Principal,
        req: NewIssuer,
    ) -> Result<IssuerView, AuthorityError> {
        Self::require(principal, Scope::CaAdmin)?;
        self.create_issuer_unchecked(principal.tenant, &principal.audit_actor(), req)
            .await
    }

    pub(crate) async fn create_issuer_unchecked(
        &self,
        tenant: TenantId,
        actor: &str,
        req: NewIssuer,
    ) -> Result<IssuerView, AuthorityError> {
        validate_name("issuer name", &req.name)?;
        if req.common_name.trim().is_empty() || req.common_name.chars().count() > 64 {
            return Err(AuthorityError::invalid(
                "invalid-issuer",
                "common_name must be 1 to 64 characters",
            ));
        }
        if !req.key_algorithm.allowed_for_ca() {
            return Err(AuthorityError::invalid(
                "weak-key",
                format!("{} may not protect a CA key; use ecdsa-p256, ecdsa-p384, rsa-3072, rsa-4096 or ed25519", req.key_algorithm),
            ));
        }
        let crl_shards = req.crl_shards.unwrap_or(self.config.crl_shards);
        if crl_shards == 0 || crl_shards > 1024 {
            return Err(AuthorityError::invalid(
                "invalid-issuer",
                "crl_shards must be between 1 and 1024",
            ));
        }
        if req.validity_days == 0 || req.validity_days > 36500 {
            return Err(AuthorityError::invalid(
                "invalid-issuer",
                "validity_days must be between 1 and 36500",
            ));
        }
        if self
            .store
            .issuer_by_name(tenant, &req.name)
            .await?
            .is_some()
        {
            return Err(AuthorityError::new(
                ErrorKind::Conflict,
                "conflict",
                format!("issuer {:?} already exists", req.name),
            ));
        }
        let parent = match &req.parent {
            Some(p) => Some(self.issuer_by_reference(tenant, p).await?),
            None => None,
        };
        if let Some(p) = &parent {
            if p.ca.path_len() == Some(0) {
                return Err(AuthorityError::invalid(
                    "ca-constraint",
                    format!(
                        "issuer {:?} has pathLenConstraint 0: it may sign no CA certificates",
                        p.name
                    ),
                ));
            }
        }
        let now = self.clock.now();
        let params = CaParams {
            common_name: req.common_name.clone(),
            organization: req.organization.clone(),
            path_len: req.path_len,
            not_before: now - Duration::minutes(1),
            not_after: now + Duration::days(i64::from(req.validity_days)),
        };
        let keys = self.keys.clone();
        let alg = req.key_algorithm;
        let id = IssuerId::generate();
        let owner = KeyOwner::new(KeyRole::Ca, tenant, id);
        let backend = match &req.key_backend {
            Some(b) if !keys.backends().contains(b) => {
                return Err(AuthorityError::invalid(
                    "unknown-key-backend",
                    format!(
                        "no key backend is named {b:?}; configured: {}",
                        keys.backends().join(", ")
                    ),
                ))
            }
            Some(b) => b.clone(),
            None => keys.backend_name().to_owned(),
        };
        // RSA generation takes seconds, an HSM round trip waits: keep it off the async
        // workers.
        let (key, signer) =
            tokio::task::spawn_blocking(move || keys.generate_on(&backend, alg, &owner))
                .await
                .map_err(AuthorityError::internal)?
                .map_err(AuthorityError::internal)?;
        if let Some(p) = &parent {
            if p.revoked {
                return Err(AuthorityError::invalid(
                    "issuer-revoked",
                    format!("issuer {:?} is revoked and signs nothing", p.name),
                ));
            }
        }
        let serial = trustbox_types::Serial::random();
        let urls = parent.as_ref().map(|p| self.urls_for(p, &serial));
        let signing_parent = parent.clone();
        let ca_params = params.clone();
        // Built, linted, then signed by the parent's (or its own) key: off the async
        // workers, since a CA key may live on a backend whose signing waits.
        let ca = tokio::task::spawn_blocking(move || match (&signing_parent, urls) {
            (Some(p), Some(urls)) => p.ca.issue_intermediate(&ca_params, signer, &serial, &urls),
            _ => IssuingCa::new_root(&ca_params, signer),
        })
        .await
        .map_err(AuthorityError::internal)?
        .map_err(AuthorityError::internal)?;
        let rec = IssuerRecord {
            id,
            tenant,
            name: req.name.clone(),
            parent: parent.as_ref().map(|p| p.id),
            certificate_der: ca.certificate_der().to_vec(),
            common_name: req.common_name.clone(),
            key_backend: key.backend,
            key_algorithm: key.algorithm,
            key_wrapped: key.wrapped,
            not_before: params.not_before.unix_timestamp(),
            not_after: ca.not_after().unix_timestamp(),
            created_at: now.unix_timestamp(),
            crl_shards,
            ocsp_enabled: req.ocsp_enabled.unwrap_or(true),
        };
        // An intermediate is a certificate of its parent: in the parent's inventory, CRL and
        // OCSP like any other.
        let ca_certificate = parent
            .as_ref()
            .map(|p| ca_inventory_record(tenant, p, &ca, &rec, "api"));
        let event = self.event(
            tenant,
            actor,
            "issuer.create",
            format!("issuer:{id}"),
            "success",
            serde_json::json!({
                "name": rec.name,
                "parent": rec.parent,
                "key_algorithm": rec.key_algorithm,
                "common_name": rec.common_name,
                "not_after": rec.not_after,
                "serial": ca.serial().to_hex(),
                "fingerprint": Fingerprint::of_der(ca.certificate_der()).to_string(),
                "certificate": ca_certificate.as_ref().map(|c| c.id),
            }),
        );
        self.store
            .insert_issuer(&rec, ca_certificate.as_ref(), &event)
            .await?;
        let chain = self.load_issuer(tenant, id).await?.chain_pem.clone();
        let view = self.view(&rec, chain_without_self(&chain, &rec));
        Ok(view)
    }

    /// The tenant's issuers.
    pub(crate) async fn list_issuers(
        &self,
        principal: &Principal,
    ) -> Result<Vec<IssuerView>, AuthorityError> {
        Self::require(principal, Scope::CertsRead)?;
        let recs = self.store.list_issuers(principal.tenant).await?;
        let mut out = Vec::with_capacity(recs.len());
        for rec in recs {
            let chain = self
                .load_issuer(principal.tenant, rec.id)
                .await?
                .chain_pem
                .clone();
            out.push(self.view(&rec, chain_without_self(&chain, &rec)));
        }
        Ok(out)
    }

    /// One of the tenant's issuers.
    pub(crate) async fn issuer_view(
        &self,
        principal: &Principal,
        id: IssuerId,
    ) -> Result<IssuerView, AuthorityError> {
        Self::require(principal, Scope::CertsRead)?;
        let rec = self
            .store
            .issuer(principal.tenant, id)
            .await?
            .ok_or_else(|| AuthorityError::not_found("issuer"))?;
        let chain = self
            .load_issuer(principal.tenant, id)
            .await?
            .chain_pem
            .clone();
        Ok(self.view(&rec, chain_without_self(&chain, &rec)))
    }

    /// Creates a tenant with its own root and issuing CA. Only an admin of the `default`
    /// tenant (the operator) may.
    pub(crate) async fn create_tenant(
        &self,
        principal: &Principal,
        name: &str,
    ) -> Result<Tenant, AuthorityError> {
        self.require_operator(principal).await?;
        let tenant = self
            .create_tenant_unchecked(name, &principal.audit_actor())
            .await?;
        self.create_default_hierarchy(
            tenant.id,
            &tenant.name,
            &principal.audit_actor(),
            KeyAlgorithm::EcdsaP384,
            KeyAlgorithm::EcdsaP256,
        )
        .await?;
        Ok(tenant.into())
    }

    pub(crate) async fn create_tenant_unchecked(
        &self,
        name: &str,
        actor: &str,
    ) -> Result<TenantRecord, AuthorityError> {
        validate_name("tenant name", name)?;
        // Its CAs are named after it ("TrustBox Issuing CA (NAME)"), and an X.520
        // commonName holds at most 64 characters: refuse before anything is created.
        if name.chars().count() > MAX_TENANT_NAME_CHARS {
            return Err(AuthorityError::invalid(
                "invalid-name",
                format!("tenant name must be at most {MAX_TENANT_NAME_CHARS} characters"),
            ));
        }
        let rec = TenantRecord {
            id: TenantId::generate(),
            name: name.to_owned(),
            created_at: self.now_s(),
        };
        let event = self.event(
            rec.id,
            actor,
            "tenant.create",
            format!("tenant:{}", rec.id),
            "success",
            serde_json::json!({ "name": name }),
        );
        self.store
            .create_tenant(&rec, &event)
            .await
            .map_err(|e| match e {
                trustbox_store::StoreError::Conflict(_) => AuthorityError::new(
                    ErrorKind::Conflict,
                    "conflict",
                    format!("tenant {name:?} already exists"),
                ),
                other => other.into(),
            })?;
        Ok(rec)
    }

    pub(crate) async fn create_default_hierarchy(
        &self,
        tenant: TenantId,
        tenant_name: &str,
        actor: &str,
        root_alg: KeyAlgorithm,
        issuing_alg: KeyAlgorithm,
    ) -> Result<(IssuerView, IssuerView), AuthorityError> {
        let root = self
            .create_issuer_unchecked(
                tenant,
                actor,
                NewIssuer {
                    name: "root".into(),
                    common_name: format!("TrustBox Root CA ({tenant_name})"),
                    organization: Some("TrustBox".into()),
                    parent: None,
                    key_algorithm: root_alg,
                    validity_days: 3650,
                    path_len: Some(1),
                    crl_shards: None,
                    ocsp_enabled: None,
                    key_backend: None,
                },
            )
            .await?;
        let issuing = self
            .create_issuer_unchecked(
                tenant,
                actor,
                NewIssuer {
                    name: "issuing-ca".into(),
                    common_name: format!("TrustBox Issuing CA ({tenant_name})"),
                    organization: Some("TrustBox".into()),
                    parent: Some(root.id.to_string()),
                    key_algorithm: issuing_alg,
                    validity_days: 1825,
                    path_len: Some(0),
                    crl_shards: None,
                    ocsp_enabled: None,
                    key_backend: None,
                },
            )
            .await?;
        Ok((root, issuing))
    }

    /// Tenants visible to the principal: all for the operator, else its own.
    pub(crate) async fn list_tenants(
        &self,
        principal: &Principal,
    ) -> Result<Vec<Tenant>, AuthorityError> {
        let tenants = if self.require_operator(principal).await.is_ok() {
            self.store.list_tenants().await?
        } else {
            self.store
                .tenant(principal.tenant)
                .await?
                .into_iter()
                .collect()
        };
        Ok(tenants.into_iter().map(Tenant::from).collect())
    }

    pub(crate) async fn require_operator(
        &self,
        principal: &Principal,
    ) -> Result<(), AuthorityError> {
        Self::require(principal, Scope::Admin)?;
        let tenant = self.store.tenant(principal.tenant).await?;
        if tenant.map(|t| t.name) != Some("default".into()) {
            return Err(AuthorityError::new(
                ErrorKind::Forbidden,
                "forbidden",
                "only an admin of the default tenant may manage tenants",
            ));
        }
        Ok(())
    }

    /// Every profile of the tenant: its own versions and the built-ins it has not replaced.
    pub(crate) async fn list_profiles(
        &self,
        principal: &Principal,
    ) -> Result<Vec<ProfileView>, AuthorityError> {
        Self::require(principal, Scope::CertsRead)?;
        let mut out: Vec<ProfileView> = Vec::new();
        for rec in self.store.list_profiles(principal.tenant).await? {
            out.push(ProfileView {
                version: rec.version,
                builtin: false,
                profile: serde_json::from_str(&rec.document).map_err(AuthorityError::internal)?,
            });
        }
        for p in trustbox_x509::builtin_profiles() {
            if !out.iter().any(|v| v.profile.name == p.name) {
                out.push(ProfileView {
                    version: 0,
                    builtin: true,
                    profile: p,
                });
            }
        }
        out.sort_by(|a, b| a.profile.name.cmp(&b.profile.name));
        Ok(out)
    }

    /// The tenant's profile `name`.
    pub(crate) async fn profile_view(
        &self,
        principal: &Principal,
        name: &str,
    ) -> Result<ProfileView, AuthorityError> {
        Self::require(principal, Scope::CertsRead)?;
        match self.store.profile(principal.tenant, name).await? {
            Some(rec) => Ok(ProfileView {
                version: rec.version,
                builtin: false,
                profile: serde_json::from_str(&rec.document).map_err(AuthorityError::internal)?,
            }),
            None => trustbox_x509::builtin_profiles()
                .into_iter()
                .find(|p| p.name == name)
                .map(|p| ProfileView {
                    version: 0,
                    builtin: true,
                    profile: p,
                })
                .ok_or_else(|| AuthorityError::not_found("profile")),
        }
    }

    /// Stores a new version of a profile. With `create`, the name must be new (neither a
    /// stored profile nor a built-in); otherwise it must exist.
    pub(crate) async fn put_profile(
        &self,
        principal: &Principal,
        profile: Profile,
        create: bool,
    ) -> Result<ProfileView, AuthorityError> {
        Self::require(principal, Scope::CaAdmin)?;
        profile.validate()?;
        let current = self.profile_view(principal, &profile.name).await;
        let version = match (&current, create) {
            (Ok(_), true) => {
                return Err(AuthorityError::new(
                    ErrorKind::Conflict,
                    "conflict",
                    format!(
                        "profile {:?} already exists; use PUT to change it",
                        profile.name
                    ),
                ))
            }
            (Ok(v), false) => v.version + 1,
            (Err(_), true) => 1,
            (Err(e), false) => return Err(e.clone()),
        };
        let document = serde_json::to_string(&profile).map_err(AuthorityError::internal)?;
        let rec = ProfileRecord {
            id: ProfileId::generate(),
            tenant: principal.tenant,
            name: profile.name.clone(),
            version,
            document: document.clone(),
            created_at: self.now_s(),
        };
        let event = self.event(
            principal.tenant,
            &principal.audit_actor(),
            if create {
                "profile.create"
            } else {
                "profile.update"
            },
            format!("profile:{}@{}", profile.name, version),
            "success",
            serde_json::json!({ "name": profile.name, "version": version, "document": profile }),
        );
        self.store.insert_profile(&rec, &event).await?;
        self.profiles
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(principal.tenant, profile.name.clone()));
        Ok(ProfileView {
            version,
            builtin: false,
            profile,
        })
    }

    /// A page of the tenant's audit events after `after`.
    pub(crate) async fn audit_events(
        &self,
        principal: &Principal,
        after: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, AuthorityError> {
        Self::require(principal, Scope::AuditRead)?;
        Ok(self
            .store
            .list_audit(principal.tenant, after, limit.clamp(1, 1000))
            .await?
            .into_iter()
            .map(AuditEntry::from)
            .collect())
    }

    /// Verifies the principal's tenant's whole chain.
    pub(crate) async fn verify_audit(
        &self,
        principal: &Principal,
    ) -> Result<Result<i64, ChainBreak>, AuthorityError> {
        Self::require(principal, Scope::AuditRead)?;
        self.verify_tenant_chain(principal.tenant).await
    }
}

/// The chain of `rec`'s ancestors only (the loaded chain starts with the issuer itself).
/// The inventory row of an intermediate CA certificate, recorded under its parent.
pub(crate) fn ca_inventory_record(
    tenant: TenantId,
    parent: &LoadedIssuer,
    ca: &IssuingCa,
    rec: &IssuerRecord,
    source: &str,
) -> CertificateRecord {
    CertificateRecord {
        id: CertificateId::generate(),
        tenant,
        issuer: parent.id,
        serial: ca.serial().to_hex(),
        fingerprint: Fingerprint::of_der(ca.certificate_der()).to_string(),
        common_name: Some(rec.common_name.clone()),
        sans: Vec::new(),
        key_algorithm: rec.key_algorithm,
        not_before: rec.not_before,
        not_after: rec.not_after,
        status: CertificateStatus::Valid,
        revoked_at: None,
        revocation_reason: None,
        invalidity_date: None,
        crl_shard: crate::revocation::shard_of(ca.serial(), parent.crl_shards),
        profile: "ca@0".into(),
        source: source.to_owned(),
        der: ca.certificate_der().to_vec(),
        created_at: rec.created_at,
        enrollment: None,
        idempotency_key: None,
        replaces: None,
    }
}

/// Brings issuers created before revocation publishing up to date: their CRL shard rows,
/// and intermediates' certificates in their parent's inventory. Runs once at start-up
/// (new issuers get both when they are created).
pub(crate) async fn backfill_issuers(
    authority: &Authority,
    tenant: TenantId,
) -> Result<(), AuthorityError> {
    for rec in authority.store.list_issuers(tenant).await? {
        authority
            .store
            .ensure_crl_shards(tenant, rec.id, rec.crl_shards.max(1))
            .await?;
        let Some(parent_id) = rec.parent else {
            continue;
        };
        let ca = authority.load_issuer(tenant, rec.id).await?;
        let serial = ca.ca.serial().to_hex();
        if authority
            .store
            .certificate_by_serial(tenant, parent_id, &serial)
            .await?
            .is_some()
        {
            continue;
        }
        let parent = authority.load_issuer(tenant, parent_id).await?;
        let certificate = ca_inventory_record(tenant, &parent, &ca.ca, &rec, "backfill");
        let event = authority.event(
            tenant,
            "system",
            "certificate.record",
            format!("certificate:{}", certificate.id),
            "success",
            serde_json::json!({ "serial": serial, "issuer": parent_id, "ca": rec.id }),
        );
        authority
            .store
            .commit_issuances(&[IssuanceRecord { certificate, event }])
            .await?;
    }
    Ok(())
}

fn chain_without_self(chain: &str, rec: &IssuerRecord) -> String {
    let own = pem::encode("CERTIFICATE", &rec.certificate_der);
    chain.strip_prefix(own.as_str()).unwrap_or(chain).to_owned()
}

pub(crate) fn validate_name(what: &str, name: &str) -> Result<(), AuthorityError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(AuthorityError::invalid(
            "invalid-name",
            format!("{what} must be 1-64 characters of letters, digits, '-', '_' and '.'"),
        ));
    }
    Ok(())
}

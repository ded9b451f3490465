//! First start: the default tenant, its CA hierarchy and a bootstrap admin token.

use crate::error::AuthorityError;
use crate::Authority;
use trustbox_types::{Actor, Grants, KeyAlgorithm, Principal, Scope, ScopeSet, TenantId};
use trustbox_x509::pem;

/// Choices made at first start.
#[derive(Clone, Debug)]
pub struct BootstrapOptions {
    /// Root CA key algorithm (default ECDSA P-384).
    pub root_algorithm: KeyAlgorithm,
    /// Issuing CA key algorithm (default ECDSA P-256).
    pub issuing_algorithm: KeyAlgorithm,
}

impl Default for BootstrapOptions {
    fn default() -> Self {
        Self {
            root_algorithm: KeyAlgorithm::EcdsaP384,
            issuing_algorithm: KeyAlgorithm::EcdsaP256,
        }
    }
}

/// What bootstrap found or made.
#[derive(Clone)]
pub struct Bootstrap {
    /// The default tenant.
    pub tenant: crate::Tenant,
    /// The default tenant's root certificate, PEM.
    pub root_pem: String,
    /// The admin token, only on the start that created it.
    pub admin_token: Option<String>,
}

impl std::fmt::Debug for Bootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bootstrap")
            .field("tenant", &self.tenant)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// Ensures the default tenant exists with a root and an issuing CA; on the first start
    /// also mints the bootstrap admin token (returned once, stored hashed).
    pub(crate) async fn bootstrap(
        &self,
        opts: &BootstrapOptions,
    ) -> Result<Bootstrap, AuthorityError> {
        let mut admin_token = None;
        let tenant = match self.store.tenant_by_name("default").await? {
            Some(t) => t,
            None => {
                let t = self
                    .create_tenant_unchecked("default", "system:bootstrap")
                    .await?;
                self.create_default_hierarchy(
                    t.id,
                    "default",
                    "system:bootstrap",
                    opts.root_algorithm,
                    opts.issuing_algorithm,
                )
                .await?;
                let tok = self
                    .mint_token_on_host(
                        "default",
                        "bootstrap-admin",
                        ScopeSet::new([Scope::Admin]),
                        "system:bootstrap",
                        None,
                    )
                    .await?;
                admin_token = Some(tok.secret);
                t
            }
        };
        for t in self.store.list_tenants().await? {
            self.reseal_tenant_keys(t.id).await?;
            crate::admin::backfill_issuers(self, t.id).await?;
        }
        let root = self
            .store
            .list_issuers(tenant.id)
            .await?
            .into_iter()
            .find(|i| i.parent.is_none())
            .ok_or_else(|| AuthorityError::internal("default tenant has no root CA"))?;
        Ok(Bootstrap {
            root_pem: pem::encode("CERTIFICATE", &root.certificate_der),
            tenant: tenant.into(),
            admin_token,
        })
    }

    /// The principal the server itself acts as (for its own TLS certificate): may only
    /// issue, in `tenant`.
    pub(crate) fn system_principal(tenant: TenantId) -> Principal {
        Principal {
            tenant,
            actor: Actor::System {
                worker: "server-certificate".into(),
            },
            grants: Grants::scopes(ScopeSet::new([Scope::CertsIssue])),
        }
    }
}

//! What the ACME adapter keeps through the seam: provisioners (which tenant an ACME
//! directory serves), accounts and single-use nonces. The protocol itself (JWS, nonces'
//! format, state machines) is `trustbox_proto_acme`, above the seam.

use crate::error::{AuthorityError, ErrorKind};
use crate::Authority;
use trustbox_store::AcmeAccountRecord;
use trustbox_types::TenantId;

/// An ACME provisioner: a named ACME server bound to a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeProvisioner {
    /// Its name (the `{provisioner}` of `/acme/{provisioner}/directory`).
    pub name: String,
    /// The tenant its accounts and certificates belong to.
    pub tenant: TenantId,
}

/// An ACME account as the adapter sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeAccount {
    /// Identifier (the last segment of its URL).
    pub id: String,
    /// The provisioner it registered with.
    pub provisioner: String,
    /// The RFC 7638 thumbprint of its key.
    pub thumbprint: String,
    /// Its public key, canonical JWK JSON.
    pub jwk: String,
    /// `valid`, `deactivated` or `revoked`.
    pub status: String,
    /// Contact URLs.
    pub contact: Vec<String>,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

impl TryFrom<AcmeAccountRecord> for AcmeAccount {
    type Error = AuthorityError;
    fn try_from(r: AcmeAccountRecord) -> Result<Self, Self::Error> {
        Ok(Self {
            contact: serde_json::from_str(&r.contact).map_err(AuthorityError::internal)?,
            id: r.id,
            provisioner: r.provisioner,
            thumbprint: r.thumbprint,
            jwk: r.jwk,
            status: r.status,
            created_at: r.created_at,
        })
    }
}

/// The provisioner every server has: the default tenant's.
pub const DEFAULT_PROVISIONER: &str = "default";

impl Authority {
    /// The provisioner `name` (today only [`DEFAULT_PROVISIONER`], bound to the `default`
    /// tenant).
    pub(crate) async fn acme_provisioner(
        &self,
        name: &str,
    ) -> Result<AcmeProvisioner, AuthorityError> {
        if name != DEFAULT_PROVISIONER {
            return Err(AuthorityError::not_found("ACME provisioner"));
        }
        let tenant = self
            .store
            .tenant_by_name("default")
            .await?
            .ok_or_else(|| AuthorityError::not_found("ACME provisioner"))?;
        Ok(AcmeProvisioner {
            name: name.to_owned(),
            tenant: tenant.id,
        })
    }

    /// Records a nonce as used; `false` when it was used before.
    pub(crate) async fn consume_acme_nonce(
        &self,
        p: &AcmeProvisioner,
        id: &str,
        expires_at: i64,
    ) -> Result<bool, AuthorityError> {
        Ok(self
            .store
            .consume_acme_nonce(p.tenant, id, expires_at, self.now_s())
            .await?)
    }

    /// The provisioner's account whose key has `thumbprint`.
    pub(crate) async fn acme_account_by_key(
        &self,
        p: &AcmeProvisioner,
        thumbprint: &str,
    ) -> Result<Option<AcmeAccount>, AuthorityError> {
        self.store
            .acme_account_by_thumbprint(p.tenant, &p.name, thumbprint)
            .await?
            .map(AcmeAccount::try_from)
            .transpose()
    }

    /// The provisioner's account `id`.
    pub(crate) async fn acme_account(
        &self,
        p: &AcmeProvisioner,
        id: &str,
    ) -> Result<Option<AcmeAccount>, AuthorityError> {
        self.store
            .acme_account(p.tenant, id)
            .await?
            .filter(|a| a.provisioner == p.name)
            .map(AcmeAccount::try_from)
            .transpose()
    }

    /// Changes an account's contact or deactivates it (RFC 8555 §7.3.2, §7.3.6); audited as
    /// the account. A deactivated account stays so.
    pub(crate) async fn update_acme_account(
        &self,
        p: &AcmeProvisioner,
        account: &AcmeAccount,
        contact: Option<&[String]>,
        deactivate: bool,
    ) -> Result<AcmeAccount, AuthorityError> {
        let status = if deactivate {
            "deactivated"
        } else {
            account.status.as_str()
        };
        let contact = contact.unwrap_or(&account.contact);
        let action = if deactivate {
            "acme.account.deactivate"
        } else {
            "acme.account.update"
        };
        let event = self.event(
            p.tenant,
            &format!("acme-account:{}", account.id),
            action,
            format!("acme-account:{}", account.id),
            "success",
            serde_json::json!({ "status": status, "contact": contact }),
        );
        let rec = self
            .store
            .update_acme_account(
                p.tenant,
                &account.id,
                status,
                &serde_json::to_string(contact).map_err(AuthorityError::internal)?,
                &event,
            )
            .await?;
        AcmeAccount::try_from(rec)
    }

    /// Registers an account for the key `jwk` (canonical JSON) with `thumbprint`; audited
    /// as the new account. An account already holding the key is returned instead
    /// (`false`: not created).
    pub(crate) async fn create_acme_account(
        &self,
        p: &AcmeProvisioner,
        thumbprint: &str,
        jwk: &str,
        contact: &[String],
    ) -> Result<(AcmeAccount, bool), AuthorityError> {
        let id = uuid::Uuid::now_v7().simple().to_string();
        let rec = AcmeAccountRecord {
            tenant: p.tenant,
            id: id.clone(),
            provisioner: p.name.clone(),
            thumbprint: thumbprint.to_owned(),
            jwk: jwk.to_owned(),
            status: "valid".into(),
            contact: serde_json::to_string(contact).map_err(AuthorityError::internal)?,
            created_at: self.now_s(),
        };
        let event = self.event(
            p.tenant,
            &format!("acme-account:{id}"),
            "acme.account.create",
            format!("acme-account:{id}"),
            "success",
            serde_json::json!({ "provisioner": p.name, "thumbprint": thumbprint, "contact": contact }),
        );
        match self.store.insert_acme_account(&rec, &event).await {
            Ok(()) => Ok((AcmeAccount::try_from(rec)?, true)),
            // the same key registered concurrently: that account answers
            Err(trustbox_store::StoreError::Conflict(_)) => self
                .acme_account_by_key(p, thumbprint)
                .await?
                .map(|a| (a, false))
                .ok_or_else(|| {
                    AuthorityError::new(
                        ErrorKind::Conflict,
                        "conflict",
                        "the account key is in use",
                    )
                }),
            Err(e) => Err(e.into()),
        }
    }
}

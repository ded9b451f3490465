//! API tokens: minted once, shown once, stored as SHA-256 only.

use crate::error::{AuthorityError, ErrorKind};
use crate::{Authority, Token};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SecureRandom;
use trustbox_store::TokenRecord;
use trustbox_types::{Actor, Grants, Principal, Scope, ScopeSet, TenantId, TokenId};

/// Every token starts with this, so secret scanners can recognize leaked ones.
pub const TOKEN_PREFIX: &str = "tbx_";
/// How long a successful token lookup is reused before the store is asked again.
pub(crate) const AUTH_TTL: std::time::Duration = std::time::Duration::from_secs(2);
/// Most cached tokens; beyond it the cache is cleared (it refills from the store).
const AUTH_CACHE_MAX: usize = 10_000;

/// Bytes of randomness in a token (256 bits).
const TOKEN_BYTES: usize = 32;

/// The longest a token may be made to live (ten years), seconds.
pub const MAX_TOKEN_LIFETIME_S: i64 = 10 * 366 * 86400;

/// A token just minted: the token and the secret, which is never available again.
#[derive(Clone)]
pub struct NewToken {
    /// The token as stored (without its secret).
    pub token: Token,
    /// The bearer secret (`tbx_...`), to show once.
    pub secret: String,
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken")
            .field("token", &self.token)
            .field("secret", &"<redacted>")
            .finish()
    }
}

fn hash_token(secret: &str) -> String {
    hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        secret.as_bytes(),
    ))
}

fn mint() -> Result<(String, String), AuthorityError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AuthorityError::internal("no randomness available"))?;
    let secret = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash_token(&secret);
    Ok((secret, hash))
}

impl Authority {
    /// Turns a bearer token into a principal, or fails closed.
    pub(crate) async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthorityError> {
        let unauthenticated = || {
            AuthorityError::new(
                ErrorKind::Unauthenticated,
                "unauthenticated",
                "missing, invalid or revoked token",
            )
        };
        if !bearer.starts_with(TOKEN_PREFIX) || bearer.len() != TOKEN_PREFIX.len() + 43 {
            return Err(unauthenticated());
        }
        let hash = hash_token(bearer);
        let now = self.now_s();
        if let Some((p, at, expires_at)) = self
            .auth_cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&hash)
        {
            if at.elapsed() < AUTH_TTL
                && expires_at.is_none_or(|t| t > now)
                && self.caches_trusted()
            {
                return Ok(p.clone());
            }
        }
        let rec = self
            .store
            .token_by_hash(&hash)
            .await?
            .ok_or_else(unauthenticated)?;
        if rec.revoked_at.is_some() || rec.expires_at.is_some_and(|t| t <= now) {
            return Err(unauthenticated());
        }
        let expires_at = rec.expires_at;
        let principal = Principal {
            tenant: rec.tenant,
            actor: Actor::Token {
                id: rec.id,
                name: rec.name,
            },
            grants: Grants::scopes(rec.scopes),
        };
        let mut cache = self.auth_cache.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= AUTH_CACHE_MAX {
            cache.clear();
        }
        cache.insert(
            hash,
            (principal.clone(), std::time::Instant::now(), expires_at),
        );
        Ok(principal)
    }

    /// Mints a token that never expires; see [`Authority::create_token_expiring`].
    pub(crate) async fn create_token(
        &self,
        principal: &Principal,
        tenant: Option<&str>,
        name: &str,
        scopes: ScopeSet,
    ) -> Result<NewToken, AuthorityError> {
        self.create_token_expiring(principal, tenant, name, scopes, None)
            .await
    }

    /// Mints a token for the principal's tenant (or, for the operator, another tenant named
    /// `tenant`), valid for `expires_in_s` seconds when given. A token never gets a scope its
    /// creator lacks.
    pub(crate) async fn create_token_expiring(
        &self,
        principal: &Principal,
        tenant: Option<&str>,
        name: &str,
        scopes: ScopeSet,
        expires_in_s: Option<i64>,
    ) -> Result<NewToken, AuthorityError> {
        Self::require(principal, Scope::TokensAdmin)?;
        if !principal.grants.scopes.covers(&scopes) {
            return Err(AuthorityError::new(
                ErrorKind::Forbidden,
                "forbidden",
                "a token cannot grant scopes its creator does not hold",
            ));
        }
        let tenant_id = match tenant {
            None => principal.tenant,
            Some(t) => {
                let rec = self.store.tenant_by_name(t).await?;
                match rec {
                    Some(rec) if rec.id == principal.tenant => rec.id,
                    Some(rec) => {
                        self.require_operator(principal).await?;
                        rec.id
                    }
                    None => {
                        return Err(AuthorityError::invalid(
                            "unknown-tenant",
                            format!("tenant {t:?} does not exist"),
                        ))
                    }
                }
            }
        };
        self.mint_token(
            tenant_id,
            name,
            scopes,
            &principal.audit_actor(),
            expires_in_s,
        )
        .await
    }

    /// Mints a token for tenant `tenant` on behalf of `actor`, with no caller check: for the
    /// host-side `trustbox token create` and bootstrap, which act with the data directory's
    /// authority.
    pub(crate) async fn mint_token_on_host(
        &self,
        tenant: &str,
        name: &str,
        scopes: ScopeSet,
        actor: &str,
        expires_in_s: Option<i64>,
    ) -> Result<NewToken, AuthorityError> {
        let rec = self.store.tenant_by_name(tenant).await?.ok_or_else(|| {
            AuthorityError::invalid(
                "unknown-tenant",
                format!("tenant {tenant:?} does not exist"),
            )
        })?;
        self.mint_token(rec.id, name, scopes, actor, expires_in_s)
            .await
    }

    async fn mint_token(
        &self,
        tenant: TenantId,
        name: &str,
        scopes: ScopeSet,
        actor: &str,
        expires_in_s: Option<i64>,
    ) -> Result<NewToken, AuthorityError> {
        crate::admin::validate_name("token name", name)?;
        if let Some(s) = expires_in_s {
            if !(60..=MAX_TOKEN_LIFETIME_S).contains(&s) {
                return Err(AuthorityError::invalid(
                    "invalid-expiry",
                    "a token's lifetime must be between 60 seconds and 10 years",
                ));
            }
        }
        if scopes.is_empty() {
            return Err(AuthorityError::invalid(
                "invalid-scopes",
                "a token needs at least one scope",
            ));
        }
        let (secret, hash) = mint()?;
        let record = TokenRecord {
            id: TokenId::generate(),
            tenant,
            name: name.to_owned(),
            scopes,
            hash,
            created_at: self.now_s(),
            revoked_at: None,
            expires_at: expires_in_s.map(|s| self.now_s() + s),
        };
        let event = self.event(
            tenant,
            actor,
            "token.create",
            format!("token:{}", record.id),
            "success",
            serde_json::json!({
                "name": record.name,
                "scopes": record.scopes,
                "expires_at": record.expires_at,
            }),
        );
        self.store.insert_token(&record, &event).await?;
        Ok(NewToken {
            token: record.into(),
            secret,
        })
    }

    /// The tenant's tokens (never their secrets).
    pub(crate) async fn list_tokens(
        &self,
        principal: &Principal,
    ) -> Result<Vec<Token>, AuthorityError> {
        Self::require(principal, Scope::TokensAdmin)?;
        Ok(self
            .store
            .list_tokens(principal.tenant)
            .await?
            .into_iter()
            .map(Token::from)
            .collect())
    }

    /// Revokes one of the tenant's tokens; it stops working at once. A token may revoke only
    /// tokens whose scopes it holds itself (so a narrow token cannot disarm a wider one).
    pub(crate) async fn revoke_token(
        &self,
        principal: &Principal,
        id: TokenId,
    ) -> Result<(), AuthorityError> {
        Self::require(principal, Scope::TokensAdmin)?;
        let target = self
            .store
            .list_tokens(principal.tenant)
            .await?
            .into_iter()
            .find(|t| t.id == id && t.revoked_at.is_none())
            .ok_or_else(|| AuthorityError::not_found("token"))?;
        if !principal.grants.scopes.covers(&target.scopes) {
            return Err(AuthorityError::new(
                ErrorKind::Forbidden,
                "forbidden",
                "a token can revoke only tokens whose scopes it holds itself",
            ));
        }
        let event = self.event(
            principal.tenant,
            &principal.audit_actor(),
            "token.revoke",
            format!("token:{id}"),
            "success",
            serde_json::json!({}),
        );
        let result = self
            .store
            .revoke_token(principal.tenant, id, self.now_s(), &event)
            .await;
        // Drop it from the authentication cache whatever the outcome: fail closed.
        self.auth_cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, (p, _, _)| p.actor.token() != Some(id));
        match result {
            Err(trustbox_store::StoreError::NotFound) => Err(AuthorityError::not_found("token")),
            other => Ok(other?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_long_and_distinct() {
        let (a, ha) = mint().expect("mint");
        let (b, _) = mint().expect("mint");
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 43);
        assert_ne!(a, b);
        assert_eq!(ha, hash_token(&a));
        assert_ne!(ha, a);
    }
}

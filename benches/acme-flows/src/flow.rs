//! One complete ACME flow (RFC 8555 §7): a new account, an order for one DNS name, its
//! http-01 challenge, finalization with a fresh P-256 CSR and the certificate download,
//! each step timed.

use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, Order,
    OrderStatus,
};
use rcgen::{CertificateParams, DistinguishedName, KeyPair, PKCS_ECDSA_P256_SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};
use trustbox_acme_bench::http01::Tokens;
use trustbox_acme_bench::transport::Transport;

/// The timed steps of a flow, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Directory, nonce and newAccount with a new key (§7.3).
    Account,
    /// newOrder for one DNS name (§7.4).
    Order,
    /// Fetching the order's authorization (§7.5).
    Authz,
    /// Responding to http-01 (§7.5.1) until the order is `ready`.
    ChallengeToReady,
    /// Finalize with a CSR (§7.4) until the order is `valid`.
    FinalizeToValid,
    /// Downloading the certificate chain (§7.4.2).
    Download,
}

impl Step {
    /// Every step, in flow order.
    pub const ALL: [Self; 6] = [
        Self::Account,
        Self::Order,
        Self::Authz,
        Self::ChallengeToReady,
        Self::FinalizeToValid,
        Self::Download,
    ];

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Order => "order",
            Self::Authz => "authz",
            Self::ChallengeToReady => "challenge_to_ready",
            Self::FinalizeToValid => "finalize_to_valid",
            Self::Download => "download",
        }
    }
}

/// What every flow shares.
pub struct FlowConfig {
    /// The ACME directory URL.
    pub directory: String,
    /// Its scheme://host:port.
    pub origin: String,
    /// Trust for the ACME server's HTTPS.
    pub ca_pem: Option<Vec<u8>>,
    /// Names are `flow-<random>.<suffix>`.
    pub domain_suffix: String,
    /// Interval between order polls.
    pub poll_interval: Duration,
    /// Give up on a poll loop (or one request) after this long.
    pub timeout: Duration,
    /// The http-01 responder's map.
    pub tokens: Tokens,
    /// Counts every HTTP request sent to the ACME server.
    pub requests: Arc<AtomicU64>,
}

/// A failed flow: the step it failed in and why.
#[derive(Debug)]
pub struct FlowError {
    /// Where it failed.
    pub step: Step,
    /// Why.
    pub detail: String,
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.step.name(), self.detail)
    }
}

/// The time each step of one flow took, indexed like [`Step::ALL`]; `None` for steps not
/// reached.
pub type StepTimes = [Option<Duration>; 6];

/// Runs one flow. On failure the times of the steps that completed are kept.
pub async fn run_flow(cfg: &FlowConfig) -> (StepTimes, Result<(), FlowError>) {
    let mut times: StepTimes = [None; 6];
    let result = flow(cfg, &mut times).await;
    (times, result)
}

async fn flow(cfg: &FlowConfig, times: &mut StepTimes) -> Result<(), FlowError> {
    let name = format!("flow-{}.{}", random_label(), cfg.domain_suffix);

    let step = Step::Account;
    let t = Instant::now();
    let http = Transport::new(
        &cfg.origin,
        cfg.ca_pem.as_deref(),
        cfg.timeout,
        cfg.requests.clone(),
    )
    .map_err(|e| fail(step, e))?;
    let new_account = NewAccount {
        contact: &[],
        terms_of_service_agreed: true,
        only_return_existing: false,
    };
    let (account, _credentials) = Account::builder_with_http(Box::new(http))
        .create(&new_account, cfg.directory.clone(), None)
        .await
        .map_err(|e| fail(step, e))?;
    times[0] = Some(t.elapsed());

    let step = Step::Order;
    let t = Instant::now();
    let identifiers = [Identifier::Dns(name.clone())];
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .map_err(|e| fail(step, e))?;
    times[1] = Some(t.elapsed());

    // The authorization and challenge handles borrow the order; they live in this block so
    // the order can be polled after it. The published token lives until the flow ends.
    let step = Step::ChallengeToReady;
    let (_published, t) = {
        let t = Instant::now();
        let mut authorizations = order.authorizations();
        let mut authz = match authorizations.next().await {
            Some(Ok(authz)) => authz,
            Some(Err(e)) => return Err(fail(Step::Authz, e)),
            None => return Err(fail(Step::Authz, "the order has no authorization")),
        };
        if authz.status != AuthorizationStatus::Pending {
            return Err(fail(
                Step::Authz,
                format!("authorization is {:?}, not pending", authz.status),
            ));
        }
        times[2] = Some(t.elapsed());

        let t = Instant::now();
        let mut challenge = authz
            .challenge(ChallengeType::Http01)
            .ok_or_else(|| fail(step, "no http-01 challenge offered"))?;
        let published = cfg.tokens.publish(
            challenge.token.clone(),
            challenge.key_authorization().as_str().to_owned(),
        );
        challenge.set_ready().await.map_err(|e| fail(step, e))?;
        (published, t)
    };
    let deadline = Instant::now() + cfg.timeout;
    loop {
        let status = order.refresh().await.map_err(|e| fail(step, e))?.status;
        match status {
            OrderStatus::Ready => break,
            OrderStatus::Pending => {}
            OrderStatus::Invalid => return Err(fail(step, why_invalid(&mut order).await)),
            other => return Err(fail(step, format!("order went {other:?} before ready"))),
        }
        if Instant::now() >= deadline {
            return Err(fail(step, "order not ready before the timeout"));
        }
        tokio::time::sleep(cfg.poll_interval).await;
    }
    times[3] = Some(t.elapsed());

    let step = Step::FinalizeToValid;
    let csr = build_csr(&name).map_err(|e| fail(step, e))?;
    let t = Instant::now();
    order.finalize_csr(&csr).await.map_err(|e| fail(step, e))?;
    let deadline = Instant::now() + cfg.timeout;
    loop {
        match order.state().status {
            OrderStatus::Valid => break,
            OrderStatus::Processing | OrderStatus::Ready => {}
            OrderStatus::Invalid => return Err(fail(step, why_invalid(&mut order).await)),
            other => return Err(fail(step, format!("order went {other:?} after finalize"))),
        }
        if Instant::now() >= deadline {
            return Err(fail(step, "order not valid before the timeout"));
        }
        tokio::time::sleep(cfg.poll_interval).await;
        order.refresh().await.map_err(|e| fail(step, e))?;
    }
    times[4] = Some(t.elapsed());

    let step = Step::Download;
    let t = Instant::now();
    let chain = order
        .certificate()
        .await
        .map_err(|e| fail(step, e))?
        .ok_or_else(|| fail(step, "no certificate although the order is valid"))?;
    if !chain.contains("-----BEGIN CERTIFICATE-----") {
        return Err(fail(step, "the download holds no PEM certificate"));
    }
    times[5] = Some(t.elapsed());
    Ok(())
}

/// A CSR for `name` alone (SAN only, empty subject, as certbot sends), with a new P-256 key.
fn build_csr(name: &str) -> Result<Vec<u8>, rcgen::Error> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::new(vec![name.to_owned()])?;
    params.distinguished_name = DistinguishedName::new();
    Ok(params.serialize_request(&key)?.der().to_vec())
}

/// The order's problem, or else the first challenge error of its authorization.
async fn why_invalid(order: &mut Order) -> String {
    if let Some(problem) = &order.state().error {
        return format!("order invalid: {problem}");
    }
    let mut authorizations = order.authorizations();
    if let Some(Ok(mut authz)) = authorizations.next().await {
        if let Ok(state) = authz.refresh().await {
            if let Some(problem) = state.challenges.iter().find_map(|c| c.error.as_ref()) {
                return format!("challenge invalid: {problem}");
            }
            return format!("order invalid, authorization {:?}", state.status);
        }
    }
    "order invalid (no detail from the server)".to_owned()
}

/// 16 hex characters from the system RNG.
fn random_label() -> String {
    let mut bytes = [0u8; 8];
    // SystemRandom reads the OS RNG; failing here means the OS cannot give randomness, in
    // which case a time-based label keeps names distinct enough for a benchmark.
    if SystemRandom::new().fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = (nanos as u64).to_be_bytes();
    }
    hex::encode(bytes)
}

fn fail(step: Step, detail: impl fmt::Display) -> FlowError {
    FlowError {
        step,
        detail: detail.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_is_der_and_names_are_labels() -> Result<(), rcgen::Error> {
        let csr = build_csr("flow-0011223344556677.bench.test")?;
        assert_eq!(csr.first(), Some(&0x30));
        let label = random_label();
        assert_eq!(label.len(), 16);
        assert!(label.bytes().all(|b| b.is_ascii_hexdigit()));
        Ok(())
    }
}

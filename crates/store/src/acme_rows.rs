//! The ACME repository's rows, whichever engine and driver reads or writes them: the column
//! lists, the statement texts and the decoders from a [`RowReader`]. The `sqlx` path
//! (`trustbox-store-sql`) and the SQLite engine's `rusqlite` reader and writer run these
//! same statements; neither decodes a column of its own.
//!
//! Nothing here does I/O.

use crate::rows::{decode, RowReader, SqlValue};
use crate::{
    AcmeAccountRecord, AcmeAuthorizationRecord, AcmeChallengeRecord, AcmeEabKeyRecord, AcmeObject,
    AcmeOp, AcmeOpOutcome, AcmeOrderRecord, AcmeProvisionerRecord, AcmeStateChange, NewAuditEvent,
    NewJob, StoreError,
};
use std::borrow::Cow;

macro_rules! account_cols {
    () => {
        "tenant_id, id, provisioner, thumbprint, jwk, status, contact, created_at, eab_kid"
    };
}
macro_rules! provisioner_cols {
    () => {
        "tenant_id, id, name, settings, created_at, updated_at"
    };
}
macro_rules! eab_cols {
    () => {
        "tenant_id, id, provisioner, label, key_check, status, account_id, created_at, used_at"
    };
}
macro_rules! order_cols {
    () => {
        "tenant_id, id, provisioner, account_id, status, expires_at, identifiers, profile, \
         not_before, not_after, replaces, replaces_ari, error, certificate_id, created_at, \
         updated_at"
    };
}
macro_rules! authz_cols {
    () => {
        "tenant_id, id, order_id, identifier_type, identifier_value, wildcard, status, expires_at"
    };
}
macro_rules! challenge_cols {
    () => {
        "tenant_id, id, authz_id, kind, token, status, validated_at, error, updated_at"
    };
}

/// The columns of `acme_accounts`, in the order [`account`] decodes them.
pub const ACCOUNT_COLS: &str = account_cols!();
/// The columns of `acme_provisioners`, in the order [`provisioner`] decodes them.
pub const PROVISIONER_COLS: &str = provisioner_cols!();
/// The columns of `acme_eab_keys`, in the order [`eab_key`] decodes them.
pub const EAB_COLS: &str = eab_cols!();
/// The columns of `acme_orders`, in the order [`order`] decodes them.
pub const ORDER_COLS: &str = order_cols!();
/// The columns of `acme_authorizations`, in the order [`authorization`] decodes them.
pub const AUTHZ_COLS: &str = authz_cols!();
/// The columns of `acme_challenges`, in the order [`challenge`] decodes them.
pub const CHALLENGE_COLS: &str = challenge_cols!();

/// One account by id. Parameters: tenant, id.
pub const ACCOUNT_BY_ID: &str = concat!(
    "SELECT ",
    account_cols!(),
    " FROM acme_accounts WHERE tenant_id = $1 AND id = $2"
);
/// One account by provisioner and key thumbprint. Parameters: tenant, provisioner,
/// thumbprint.
pub const ACCOUNT_BY_THUMBPRINT: &str = concat!(
    "SELECT ",
    account_cols!(),
    " FROM acme_accounts WHERE tenant_id = $1 AND provisioner = $2 AND thumbprint = $3"
);
/// One order by id. Parameters: tenant, id.
pub const ORDER_BY_ID: &str = concat!(
    "SELECT ",
    order_cols!(),
    " FROM acme_orders WHERE tenant_id = $1 AND id = $2"
);
/// An order's authorizations, by id. Parameters: tenant, order id.
pub const ORDER_AUTHZS: &str = concat!(
    "SELECT ",
    authz_cols!(),
    " FROM acme_authorizations WHERE tenant_id = $1 AND order_id = $2 ORDER BY id"
);
/// One authorization by id. Parameters: tenant, id.
pub const AUTHZ_BY_ID: &str = concat!(
    "SELECT ",
    authz_cols!(),
    " FROM acme_authorizations WHERE tenant_id = $1 AND id = $2"
);
/// An authorization's challenges, by id. Parameters: tenant, authorization id.
pub const AUTHZ_CHALLENGES: &str = concat!(
    "SELECT ",
    challenge_cols!(),
    " FROM acme_challenges WHERE tenant_id = $1 AND authz_id = $2 ORDER BY id"
);
/// One challenge by id. Parameters: tenant, id.
pub const CHALLENGE_BY_ID: &str = concat!(
    "SELECT ",
    challenge_cols!(),
    " FROM acme_challenges WHERE tenant_id = $1 AND id = $2"
);
/// The valid order that replaced a certificate. Parameters: tenant, certificate id.
pub const ORDER_REPLACING: &str = "SELECT id FROM acme_orders WHERE tenant_id = $1 AND \
     replaces = $2 AND status = 'valid' LIMIT 1";
/// An account's order ids, newest first. Parameters: tenant, account, limit, offset.
pub const ACCOUNT_ORDERS: &str = "SELECT id FROM acme_orders WHERE tenant_id = $1 AND \
     account_id = $2 ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4";
/// Orders of an account since a time. Parameters: tenant, account, since.
pub const COUNT_ACCOUNT_ORDERS: &str = "SELECT count(*) FROM acme_orders WHERE tenant_id = $1 \
     AND account_id = $2 AND created_at >= $3";
/// How long one window of `acme_order_windows` is, in seconds.
pub const ORDER_WINDOW_S: i64 = 600;
/// Orders of a provisioner in the windows that start after a time (pass `since` minus
/// [`ORDER_WINDOW_S`] to cover every window overlapping `since ..`). Parameters: tenant,
/// provisioner, time.
pub const COUNT_PROVISIONER_ORDERS: &str = "SELECT CAST(COALESCE(SUM(orders), 0) AS BIGINT) \
     FROM acme_order_windows WHERE tenant_id = $1 AND provisioner = $2 AND window_start > $3";
/// Counts one new order in its window. Parameters: tenant, provisioner, window start.
pub const BUMP_ORDER_WINDOW: &str = "INSERT INTO acme_order_windows (tenant_id, provisioner, \
     window_start, orders) VALUES ($1, $2, $3, 1) ON CONFLICT (tenant_id, provisioner, \
     window_start) DO UPDATE SET orders = acme_order_windows.orders + 1";
/// Forgets a provisioner's windows that started before a time. Parameters: tenant,
/// provisioner, time.
pub const PRUNE_ORDER_WINDOWS: &str = "DELETE FROM acme_order_windows WHERE tenant_id = $1 \
     AND provisioner = $2 AND window_start < $3";
/// Failed challenges of an account's orders since a time. Parameters: tenant, since,
/// account. `CROSS JOIN` fixes SQLite's join order (PostgreSQL plans it freely): from the
/// tenant's recently failed challenges (few) to their authorization and order by key;
/// SQLite's own guess scanned every authorization of the tenant.
pub const COUNT_FAILED_VALIDATIONS: &str = "SELECT count(*) FROM acme_challenges c \
     CROSS JOIN acme_authorizations a CROSS JOIN acme_orders o \
     WHERE c.tenant_id = $1 AND c.status = 'invalid' AND c.updated_at >= $2 \
     AND a.tenant_id = c.tenant_id AND a.id = c.authz_id \
     AND o.tenant_id = a.tenant_id AND o.id = a.order_id AND o.account_id = $3";

/// The order insert; parameters are [`order_values`].
pub const INSERT_ORDER: &str = concat!(
    "INSERT INTO acme_orders (",
    order_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
);
/// The authorization insert; parameters are [`authz_values`].
pub const INSERT_AUTHZ: &str = concat!(
    "INSERT INTO acme_authorizations (",
    authz_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
);
/// The challenge insert; parameters are [`challenge_values`].
pub const INSERT_CHALLENGE: &str = concat!(
    "INSERT INTO acme_challenges (",
    challenge_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
);
/// The account insert; parameters are [`account_values`].
pub const INSERT_ACCOUNT: &str = concat!(
    "INSERT INTO acme_accounts (",
    account_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
);
/// Binds an EAB key to the account it was used for, once. Parameters: account, at, tenant,
/// kid, provisioner; one row or the key is not active.
pub const BIND_EAB_KEY: &str = "UPDATE acme_eab_keys SET status = 'used', account_id = $1, \
     used_at = $2 WHERE tenant_id = $3 AND id = $4 AND provisioner = $5 AND status = 'active'";
/// Records a nonce as used. Parameters: tenant, nonce id, expiry; no row if it was already.
pub const INSERT_NONCE: &str = "INSERT INTO acme_nonces (tenant_id, id, expires_at) VALUES \
     ($1, $2, $3) ON CONFLICT DO NOTHING";
/// Forgets up to 1000 expired used nonces. Parameters: tenant, now.
pub const PRUNE_NONCES: &str = "DELETE FROM acme_nonces WHERE (tenant_id, id) IN (SELECT \
     tenant_id, id FROM acme_nonces WHERE tenant_id = $1 AND expires_at < $2 LIMIT 1000)";
/// Enqueues a job unless its dedupe key is taken. Parameters are [`job_values`].
pub const INSERT_JOB: &str = "INSERT INTO jobs (tenant_id, id, kind, dedupe_key, payload, \
     state, attempts, max_attempts, run_at, created_at, updated_at) VALUES ($1, $2, $3, $4, \
     $5, 'pending', 0, $6, $7, $8, $8) ON CONFLICT DO NOTHING";

/// Enqueues a job already claimed: running, first attempt, leased. Parameters are
/// [`job_values`], then the lease holder and its end; no row if its dedupe key is taken.
pub const INSERT_LEASED_JOB: &str = "INSERT INTO jobs (tenant_id, id, kind, dedupe_key, \
     payload, state, attempts, max_attempts, run_at, created_at, updated_at, lease_holder, \
     lease_until) VALUES ($1, $2, $3, $4, $5, 'running', 1, $6, $7, $8, $8, $9, $10) \
     ON CONFLICT DO NOTHING";

/// The parameters of [`INSERT_ORDER`] for `o`, its tenant as `t`.
pub fn order_values<'a>(t: &'a str, o: &'a AcmeOrderRecord) -> [SqlValue<'a>; 16] {
    use SqlValue::*;
    [
        Text(t),
        Text(&o.id),
        Text(&o.provisioner),
        Text(&o.account_id),
        Text(&o.status),
        Int(o.expires_at),
        Text(&o.identifiers),
        OptText(o.profile.as_deref()),
        OptInt(o.not_before),
        OptInt(o.not_after),
        OptText(o.replaces.as_deref()),
        OptText(o.replaces_ari.as_deref()),
        OptText(o.error.as_deref()),
        OptText(o.certificate_id.as_deref()),
        Int(o.created_at),
        Int(o.updated_at),
    ]
}

/// The parameters of [`INSERT_AUTHZ`] for `a`, its tenant as `t`.
pub fn authz_values<'a>(t: &'a str, a: &'a AcmeAuthorizationRecord) -> [SqlValue<'a>; 8] {
    use SqlValue::*;
    [
        Text(t),
        Text(&a.id),
        Text(&a.order_id),
        Text(&a.identifier_type),
        Text(&a.identifier_value),
        Bool(a.wildcard),
        Text(&a.status),
        Int(a.expires_at),
    ]
}

/// The parameters of [`INSERT_CHALLENGE`] for `c`, its tenant as `t`.
pub fn challenge_values<'a>(t: &'a str, c: &'a AcmeChallengeRecord) -> [SqlValue<'a>; 9] {
    use SqlValue::*;
    [
        Text(t),
        Text(&c.id),
        Text(&c.authz_id),
        Text(&c.kind),
        Text(&c.token),
        Text(&c.status),
        OptInt(c.validated_at),
        OptText(c.error.as_deref()),
        Int(c.updated_at),
    ]
}

/// The parameters of [`INSERT_ACCOUNT`] for `a`, its tenant as `t`.
pub fn account_values<'a>(t: &'a str, a: &'a AcmeAccountRecord) -> [SqlValue<'a>; 9] {
    use SqlValue::*;
    [
        Text(t),
        Text(&a.id),
        Text(&a.provisioner),
        Text(&a.thumbprint),
        Text(&a.jwk),
        Text(&a.status),
        Text(&a.contact),
        Int(a.created_at),
        OptText(a.eab_kid.as_deref()),
    ]
}

/// The parameters of [`INSERT_JOB`] for `job`, its tenant as `t` and its id as `id`.
pub fn job_values<'a>(t: &'a str, id: &'a str, job: &'a NewJob) -> [SqlValue<'a>; 8] {
    use SqlValue::*;
    [
        Text(t),
        Text(id),
        Text(&job.kind),
        Text(&job.key),
        Text(&job.payload),
        Int(i64::from(job.max_attempts.max(1))),
        Int(job.run_at),
        Int(job.created_at),
    ]
}

/// The compare-and-set of one state change: the statement (`status` moves to `to` only
/// from one of `from`) and its parameters; it applied if it touched exactly one row.
pub fn state_change<'a>(
    t: &'a str,
    c: &'a AcmeStateChange,
    now: i64,
) -> Result<(String, Vec<SqlValue<'a>>), StoreError> {
    if c.from.is_empty() || c.from.len() > 8 {
        return Err(StoreError::Backend(
            "a state change names 1 to 8 source states".into(),
        ));
    }
    let first = if c.object == AcmeObject::Authorization {
        4
    } else {
        7
    };
    let from = (0..c.from.len())
        .map(|i| format!("${}", i + first))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = match c.object {
        AcmeObject::Order => format!(
            "UPDATE acme_orders SET status = $1, error = COALESCE($2, error), \
             certificate_id = COALESCE($3, certificate_id), updated_at = $4 \
             WHERE tenant_id = $5 AND id = $6 AND status IN ({from})"
        ),
        AcmeObject::Authorization => format!(
            "UPDATE acme_authorizations SET status = $1 \
             WHERE tenant_id = $2 AND id = $3 AND status IN ({from})"
        ),
        AcmeObject::Challenge => format!(
            "UPDATE acme_challenges SET status = $1, error = COALESCE($2, error), \
             validated_at = COALESCE($3, validated_at), updated_at = $4 \
             WHERE tenant_id = $5 AND id = $6 AND status IN ({from})"
        ),
    };
    let mut values = vec![SqlValue::Text(&c.to)];
    match c.object {
        AcmeObject::Order => values.extend([
            SqlValue::OptText(c.error.as_deref()),
            SqlValue::OptText(c.certificate_id.as_deref()),
            SqlValue::Int(now),
        ]),
        AcmeObject::Challenge => values.extend([
            SqlValue::OptText(c.error.as_deref()),
            SqlValue::OptInt(c.validated_at),
            SqlValue::Int(now),
        ]),
        AcmeObject::Authorization => {}
    }
    values.extend([SqlValue::Text(t), SqlValue::Text(&c.id)]);
    values.extend(c.from.iter().map(|f| SqlValue::Text(f)));
    Ok((sql, values))
}

/// What the row count of a [`Step`] means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Nothing: any count is fine.
    Any,
    /// One row: the nonce was fresh; none: it was used already.
    Fresh,
    /// One row: the compare-and-set applied; otherwise the op stops here, not applied, and
    /// keeps nothing.
    Applies,
    /// One row, or the op fails with this conflict.
    OrConflict(&'static str),
}

/// One statement of an [`OpPlan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step<'a> {
    /// The statement text.
    pub sql: Cow<'static, str>,
    /// Its parameters, in order.
    pub values: Vec<SqlValue<'a>>,
    /// What its row count means.
    pub expect: Expect,
}

impl<'a> Step<'a> {
    fn new(sql: &'static str, values: &[SqlValue<'a>], expect: Expect) -> Self {
        Self {
            sql: Cow::Borrowed(sql),
            values: values.to_vec(),
            expect,
        }
    }
}

/// The statements one [`AcmeOp`] of a write batch runs, in order, and how their counts make
/// its [`AcmeOpOutcome`]: the same plan on every engine and driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpPlan<'a> {
    /// The statements.
    pub steps: Vec<Step<'a>>,
    /// The audit event appended to the tenant's chain once every step ran.
    pub event: Option<&'a NewAuditEvent>,
    /// Whether the op runs in a savepoint: it can change something and then fail. A nonce
    /// or a single compare-and-set cannot, and savepoints cost round trips.
    pub guarded: bool,
    kind: PlanKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PlanKind {
    Nonce,
    Changes,
    Insert,
}

/// The row counts of an op's steps so far, as [`OpPlan::outcome`] reads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tally {
    applied: bool,
    fresh: bool,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            applied: true,
            fresh: false,
        }
    }
}

impl Tally {
    /// Records that a step expecting `expect` touched `n` rows; `Ok(false)` when the op
    /// stops here (a compare-and-set did not apply), an error when it fails.
    pub fn record(&mut self, expect: Expect, n: u64) -> Result<bool, StoreError> {
        match expect {
            Expect::Any => {}
            Expect::Fresh => self.fresh = n == 1,
            Expect::Applies if n != 1 => {
                self.applied = false;
                return Ok(false);
            }
            Expect::Applies => {}
            Expect::OrConflict(what) if n != 1 => return Err(StoreError::Conflict(what.into())),
            Expect::OrConflict(_) => {}
        }
        Ok(true)
    }

    /// Whether every step applied (so the op's audit event is appended).
    pub fn applied(&self) -> bool {
        self.applied
    }
}

impl OpPlan<'_> {
    /// The op's outcome once its steps ran.
    pub fn outcome(&self, tally: Tally) -> AcmeOpOutcome {
        match self.kind {
            PlanKind::Nonce => AcmeOpOutcome::Fresh(tally.fresh),
            PlanKind::Changes => AcmeOpOutcome::Applied(tally.applied),
            PlanKind::Insert => AcmeOpOutcome::Done,
        }
    }

    /// Whether an op with this outcome keeps what it wrote (else its savepoint rolls back).
    pub fn keeps(outcome: &AcmeOpOutcome) -> bool {
        matches!(
            outcome,
            AcmeOpOutcome::Fresh(_) | AcmeOpOutcome::Done | AcmeOpOutcome::Applied(true)
        )
    }
}

/// The plan of `op` for tenant `t` at `now`; `job_id` is the id of its job, if it enqueues
/// one (as text, so the plan can borrow it).
pub fn plan<'a>(
    t: &'a str,
    op: &'a AcmeOp,
    job_id: &'a str,
    now: i64,
) -> Result<OpPlan<'a>, StoreError> {
    let changes = |changes: &'a [AcmeStateChange]| -> Result<Vec<Step<'a>>, StoreError> {
        changes
            .iter()
            .map(|c| {
                let (sql, values) = state_change(t, c, now)?;
                Ok(Step {
                    sql: Cow::Owned(sql),
                    values,
                    expect: Expect::Applies,
                })
            })
            .collect()
    };
    Ok(match op {
        AcmeOp::Nonce { id, expires_at } => OpPlan {
            steps: vec![Step::new(
                INSERT_NONCE,
                &[
                    SqlValue::Text(t),
                    SqlValue::Text(id),
                    SqlValue::Int(*expires_at),
                ],
                Expect::Fresh,
            )],
            event: None,
            guarded: false,
            kind: PlanKind::Nonce,
        },
        AcmeOp::Changes(c) => OpPlan {
            steps: changes(c)?,
            event: None,
            guarded: c.len() != 1,
            kind: PlanKind::Changes,
        },
        AcmeOp::ChangesThenJob(c, job, lease) => {
            let mut steps = changes(c)?;
            let values = job_values(t, job_id, job);
            steps.push(match lease {
                None => Step::new(INSERT_JOB, &values, Expect::Any),
                Some(lease) => {
                    let mut values = values.to_vec();
                    values.extend([SqlValue::Text(&lease.holder), SqlValue::Int(lease.until)]);
                    Step::new(
                        INSERT_LEASED_JOB,
                        &values,
                        Expect::OrConflict("a job of this kind and key is active"),
                    )
                }
            });
            OpPlan {
                steps,
                event: None,
                guarded: true,
                kind: PlanKind::Changes,
            }
        }
        AcmeOp::Account(a, event) => {
            let mut steps = vec![Step::new(
                INSERT_ACCOUNT,
                &account_values(t, a),
                Expect::Any,
            )];
            if let Some(kid) = &a.eab_kid {
                steps.push(Step::new(
                    BIND_EAB_KEY,
                    &[
                        SqlValue::Text(&a.id),
                        SqlValue::Int(a.created_at),
                        SqlValue::Text(t),
                        SqlValue::Text(kid),
                        SqlValue::Text(&a.provisioner),
                    ],
                    Expect::OrConflict("the external account key is not active"),
                ));
            }
            OpPlan {
                steps,
                event: Some(event),
                guarded: true,
                kind: PlanKind::Insert,
            }
        }
        AcmeOp::Order(o, authzs, challenges) => {
            let window = o.created_at - o.created_at.rem_euclid(ORDER_WINDOW_S);
            let mut steps = vec![
                Step::new(INSERT_ORDER, &order_values(t, o), Expect::Any),
                Step::new(
                    BUMP_ORDER_WINDOW,
                    &[
                        SqlValue::Text(t),
                        SqlValue::Text(&o.provisioner),
                        SqlValue::Int(window),
                    ],
                    Expect::Any,
                ),
                Step::new(
                    PRUNE_ORDER_WINDOWS,
                    &[
                        SqlValue::Text(t),
                        SqlValue::Text(&o.provisioner),
                        SqlValue::Int(window - 12 * ORDER_WINDOW_S),
                    ],
                    Expect::Any,
                ),
            ];
            for a in authzs {
                steps.push(Step::new(INSERT_AUTHZ, &authz_values(t, a), Expect::Any));
            }
            for c in challenges {
                steps.push(Step::new(
                    INSERT_CHALLENGE,
                    &challenge_values(t, c),
                    Expect::Any,
                ));
            }
            OpPlan {
                steps,
                event: None,
                guarded: true,
                kind: PlanKind::Insert,
            }
        }
    })
}

/// The id of the job `op` enqueues, as text ([`plan`] borrows it); empty if none.
pub fn job_id(op: &AcmeOp) -> String {
    match op {
        AcmeOp::ChangesThenJob(_, job, _) => job.id.to_string(),
        _ => String::new(),
    }
}

/// Decodes an [`ACCOUNT_COLS`] row.
pub fn account(r: &dyn RowReader) -> Result<AcmeAccountRecord, StoreError> {
    Ok(AcmeAccountRecord {
        tenant: decode("tenant id", &r.text(0)?)?,
        id: r.text(1)?,
        provisioner: r.text(2)?,
        thumbprint: r.text(3)?,
        jwk: r.text(4)?,
        status: r.text(5)?,
        contact: r.text(6)?,
        created_at: r.int(7)?,
        eab_kid: r.opt_text(8)?,
    })
}

/// Decodes a [`PROVISIONER_COLS`] row.
pub fn provisioner(r: &dyn RowReader) -> Result<AcmeProvisionerRecord, StoreError> {
    Ok(AcmeProvisionerRecord {
        tenant: decode("tenant id", &r.text(0)?)?,
        id: r.text(1)?,
        name: r.text(2)?,
        settings: r.text(3)?,
        created_at: r.int(4)?,
        updated_at: r.int(5)?,
    })
}

/// Decodes an [`EAB_COLS`] row.
pub fn eab_key(r: &dyn RowReader) -> Result<AcmeEabKeyRecord, StoreError> {
    Ok(AcmeEabKeyRecord {
        tenant: decode("tenant id", &r.text(0)?)?,
        id: r.text(1)?,
        provisioner: r.text(2)?,
        label: r.text(3)?,
        key_check: r.text(4)?,
        status: r.text(5)?,
        account_id: r.opt_text(6)?,
        created_at: r.int(7)?,
        used_at: r.opt_int(8)?,
    })
}

/// Decodes an [`ORDER_COLS`] row.
pub fn order(r: &dyn RowReader) -> Result<AcmeOrderRecord, StoreError> {
    Ok(AcmeOrderRecord {
        tenant: decode("tenant id", &r.text(0)?)?,
        id: r.text(1)?,
        provisioner: r.text(2)?,
        account_id: r.text(3)?,
        status: r.text(4)?,
        expires_at: r.int(5)?,
        identifiers: r.text(6)?,
        profile: r.opt_text(7)?,
        not_before: r.opt_int(8)?,
        not_after: r.opt_int(9)?,
        replaces: r.opt_text(10)?,
        replaces_ari: r.opt_text(11)?,
        error: r.opt_text(12)?,
        certificate_id: r.opt_text(13)?,
        created_at: r.int(14)?,
        updated_at: r.int(15)?,
    })
}

/// Decodes an [`AUTHZ_COLS`] row.
pub fn authorization(r: &dyn RowReader) -> Result<AcmeAuthorizationRecord, StoreError> {
    Ok(AcmeAuthorizationRecord {
        tenant: decode("tenant id", &r.text(0)?)?,
        id: r.text(1)?,
        order_id: r.text(2)?,
        identifier_type: r.text(3)?,
        identifier_value: r.text(4)?,
        wildcard: r.boolean(5)?,
        status: r.text(6)?,
        expires_at: r.int(7)?,
    })
}

/// Decodes a [`CHALLENGE_COLS`] row.
pub fn challenge(r: &dyn RowReader) -> Result<AcmeChallengeRecord, StoreError> {
    Ok(AcmeChallengeRecord {
        tenant: decode("tenant id", &r.text(0)?)?,
        id: r.text(1)?,
        authz_id: r.text(2)?,
        kind: r.text(3)?,
        token: r.text(4)?,
        status: r.text(5)?,
        validated_at: r.opt_int(6)?,
        error: r.opt_text(7)?,
        updated_at: r.int(8)?,
    })
}

/// Decodes a one-text-column row (an id).
pub fn text(r: &dyn RowReader) -> Result<String, StoreError> {
    r.text(0)
}

/// Decodes a one-integer-column row (a count).
pub fn int(r: &dyn RowReader) -> Result<i64, StoreError> {
    r.int(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_change_binds_its_sources_after_the_fixed_parameters() -> Result<(), StoreError> {
        let c = AcmeStateChange::new(AcmeObject::Authorization, "z1", &["pending"], "valid");
        let (sql, values) = state_change("t", &c, 5)?;
        assert!(sql.ends_with("status IN ($4)"), "{sql}");
        assert_eq!(
            values,
            vec![
                SqlValue::Text("valid"),
                SqlValue::Text("t"),
                SqlValue::Text("z1"),
                SqlValue::Text("pending")
            ]
        );
        let o = AcmeStateChange::new(AcmeObject::Order, "o1", &["pending", "ready"], "invalid");
        let (sql, values) = state_change("t", &o, 5)?;
        assert!(sql.ends_with("status IN ($7, $8)"), "{sql}");
        assert_eq!(values.len(), 8);
        let none = AcmeStateChange::new(AcmeObject::Order, "o1", &[], "invalid");
        assert!(state_change("t", &none, 5).is_err());
        Ok(())
    }

    #[test]
    fn insert_statements_bind_one_value_per_column() {
        for (sql, cols) in [
            (INSERT_ORDER, ORDER_COLS),
            (INSERT_AUTHZ, AUTHZ_COLS),
            (INSERT_CHALLENGE, CHALLENGE_COLS),
            (INSERT_ACCOUNT, ACCOUNT_COLS),
        ] {
            let n = cols.split(',').count();
            assert!(sql.contains(&format!("${n})")), "{sql}");
            assert!(!sql.contains(&format!("${}", n + 1)), "{sql}");
        }
    }
}

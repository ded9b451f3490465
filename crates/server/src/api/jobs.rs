//! Background jobs: what the server is doing and did (CRL publishing, OCSP responder
//! rotation, audit checkpoints), with their states.

use super::certificates::{parse_uuid, rfc3339};
use super::{json, ApiError, ApiPath, ApiQuery, App, Auth};
use crate::openapi::{
    BadRequest, Conflict, Forbidden, InternalError, NotFound, TooManyRequests, Unauthorized,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use trustbox_authority::{JobQuery, JobState, JobView};
use trustbox_types::JobId;
use utoipa::{IntoParams, ToSchema};

/// A job's state.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = JobState)]
pub(crate) enum JobStateName {
    /// Waiting for its first run.
    Pending,
    /// Running on a replica that holds its lease.
    Running,
    /// Failed an attempt; waits for `run_at`.
    RetryWait,
    /// Done.
    Completed,
    /// Failed its last attempt.
    Failed,
    /// Its worker stopped after the last attempt.
    Abandoned,
    /// Cancelled before it ran to an end.
    Cancelled,
}

impl From<JobState> for JobStateName {
    fn from(s: JobState) -> Self {
        match s {
            JobState::Pending => Self::Pending,
            JobState::Running => Self::Running,
            JobState::RetryWait => Self::RetryWait,
            JobState::Completed => Self::Completed,
            JobState::Failed => Self::Failed,
            JobState::Abandoned => Self::Abandoned,
            JobState::Cancelled => Self::Cancelled,
        }
    }
}

impl From<JobStateName> for JobState {
    fn from(s: JobStateName) -> Self {
        match s {
            JobStateName::Pending => Self::Pending,
            JobStateName::Running => Self::Running,
            JobStateName::RetryWait => Self::RetryWait,
            JobStateName::Completed => Self::Completed,
            JobStateName::Failed => Self::Failed,
            JobStateName::Abandoned => Self::Abandoned,
            JobStateName::Cancelled => Self::Cancelled,
        }
    }
}

/// A background job.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Job)]
pub(crate) struct JobBody {
    /// Identifier.
    #[schema(format = Uuid)]
    id: String,
    /// What it does: `crl.publish`, `ocsp.responder`, `audit.checkpoint`.
    kind: String,
    /// What it works on (an issuer id; `chain` for checkpoints).
    key: String,
    /// Where it is in its life.
    state: JobStateName,
    /// Attempts started.
    attempts: u32,
    /// Attempts before it fails.
    max_attempts: u32,
    /// Earliest next start, RFC 3339.
    #[schema(format = DateTime)]
    run_at: String,
    /// Why the last attempt failed.
    last_error: Option<String>,
    /// Creation, RFC 3339.
    #[schema(format = DateTime)]
    created_at: String,
    /// Last state change, RFC 3339.
    #[schema(format = DateTime)]
    updated_at: String,
    /// When it ended, RFC 3339.
    #[schema(format = DateTime)]
    finished_at: Option<String>,
}

impl From<JobView> for JobBody {
    fn from(v: JobView) -> Self {
        Self {
            id: v.id.to_string(),
            kind: v.kind,
            key: v.key,
            state: v.state.into(),
            attempts: v.attempts,
            max_attempts: v.max_attempts,
            run_at: rfc3339(v.run_at),
            last_error: v.last_error,
            created_at: rfc3339(v.created_at),
            updated_at: rfc3339(v.updated_at),
            finished_at: v.finished_at.map(rfc3339),
        }
    }
}

/// A page of jobs.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = JobPage)]
pub(crate) struct JobPage {
    /// The jobs, newest first.
    items: Vec<JobBody>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(format = Uuid)]
    next_cursor: Option<String>,
}

/// `GET /api/v1/jobs` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct JobParams {
    /// Only jobs in this state.
    #[param(inline, nullable = false)]
    state: Option<JobStateName>,
    /// Only jobs of this kind.
    #[param(nullable = false, max_length = 64)]
    kind: Option<String>,
    /// Page size (default 100).
    #[param(minimum = 1, maximum = 1000, nullable = false)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(format = Uuid, nullable = false)]
    cursor: Option<String>,
}

fn parse_job_id(id: &str) -> Result<JobId, ApiError> {
    parse_uuid(id).ok_or_else(|| ApiError::not_found("job"))
}

/// The tenant's background jobs, newest first.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(JobParams),
    responses(
        (status = 200, description = "A page of jobs.", body = JobPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
    ),
    security(("bearer" = [])))]
pub(crate) async fn list_jobs(
    State(app): State<App>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<JobParams>,
) -> Result<Response, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid-query", m);
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(bad("limit must be between 1 and 1000".into()));
    }
    if q.kind.as_ref().is_some_and(|k| k.chars().count() > 64) {
        return Err(bad("kind is at most 64 characters".into()));
    }
    let query = JobQuery {
        state: q.state.map(JobState::from),
        kind: q.kind,
        before: match q.cursor.as_deref() {
            None => None,
            Some(s) => Some(
                parse_uuid::<JobId>(s)
                    .ok_or_else(|| bad(format!("cursor {s:?} is not a job id")))?,
            ),
        },
        limit: limit + 1,
    };
    let mut items = app.administration.list_jobs(&p, &query).await?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|j| j.id.to_string())
    } else {
        None
    };
    Ok(json(
        StatusCode::OK,
        &JobPage {
            items: items.into_iter().map(JobBody::from).collect(),
            next_cursor,
        },
    ))
}

/// One background job.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs",
    params(("id" = uuid::Uuid, Path, description = "Job id.")),
    responses(
        (status = 200, description = "The job.", body = JobBody),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
    ),
    security(("bearer" = [])))]
pub(crate) async fn get_job(
    State(app): State<App>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let id = parse_job_id(&id)?;
    Ok(json(
        StatusCode::OK,
        &JobBody::from(app.administration.job(&p, id).await?),
    ))
}

/// Cancel a job that is pending or waiting to retry.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "jobs",
    params(("id" = uuid::Uuid, Path, description = "Job id.")),
    responses(
        (status = 200, description = "The job, cancelled.", body = JobBody),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
    ),
    security(("bearer" = [])))]
pub(crate) async fn cancel_job(
    State(app): State<App>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let id = parse_job_id(&id)?;
    Ok(json(
        StatusCode::OK,
        &JobBody::from(app.administration.cancel_job(&p, id).await?),
    ))
}

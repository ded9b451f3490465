//! The OpenAPI 3.1 document, generated from the handlers' types.
//!
//! The document is a contract: every path and query parameter is declared with its type,
//! every status a handler can answer is listed, and every error is an RFC 9457 problem
//! (`application/problem+json`, schema `Problem`). The tests below hold the document to
//! that; `tests/contract/run-schemathesis.sh` holds the live server to the document.

use crate::api::{self, App, Auth};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToResponse};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("tbx_ token")
                    .build(),
            ),
        );
    }
}

/// The media type of every error response.
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// A response component whose body is a `Problem`, with the headers it always carries.
fn problem_response(
    description: &str,
    headers: &[(&str, Type, &str)],
) -> RefOr<utoipa::openapi::Response> {
    let mut builder = ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    );
    for (name, ty, about) in headers {
        builder = builder.header(
            *name,
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(SchemaType::Type(ty.clone())))
                .description(Some(*about))
                .build(),
        );
    }
    builder.build().into()
}

/// Declares reusable problem responses: `Name = "description" [headers]`. Each is an
/// uninhabited type that only names a component for `responses((status = N, response = Name))`.
macro_rules! problem_responses {
    ($($(#[$doc:meta])* $name:ident = $description:literal $([$($header:tt)*])?;)*) => {$(
        $(#[$doc])*
        pub(crate) enum $name {}

        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<utoipa::openapi::Response>) {
                (stringify!($name), problem_response($description, &[$($($header)*)?]))
            }
        }
    )*};
}

problem_responses! {
    /// 400.
    BadRequest = "The request is malformed or refused as invalid (syntax, a bad query or path parameter, a CSR or value the server will not accept); nothing changed.";
    /// 401.
    Unauthorized = "No bearer token, or a wrong or revoked one." [
        ("WWW-Authenticate", Type::String, "`Bearer realm=\"trustbox\"`.")
    ];
    /// 403.
    Forbidden = "The token lacks the scope this operation needs.";
    /// 404.
    NotFound = "No such object for the token's tenant (another tenant's objects are not found either).";
    /// 409.
    Conflict = "The request conflicts with existing state (a name already taken, an object already revoked).";
    /// 413.
    PayloadTooLarge = "The body is larger than the server's `max_body_bytes`.";
    /// 415.
    UnsupportedMediaType = "The body is not declared as `application/json`.";
    /// 422.
    UnprocessableEntity = "The body is JSON but not the object this operation takes (a missing or unknown field, a wrong type).";
    /// 429.
    TooManyRequests = "Over the rate limit of the client address or the token." [
        ("Retry-After", Type::Integer, "Seconds until a request would be allowed.")
    ];
    /// 500.
    InternalError = "The server failed; the cause is in its log, never in the response.";
    /// 503.
    ServiceUnavailable = "Overloaded (the issuance queue is full); nothing changed, retry." [
        ("Retry-After", Type::Integer, "Seconds to wait before retrying.")
    ];
}

#[derive(OpenApi)]
#[openapi(
    info(title = "TrustBox API", description = "Private PKI: issuance, inventory, revocation, governance. Errors are RFC 9457 problem documents (`application/problem+json`)."),
    paths(
        api::issue_certificate, api::get_certificate, api::list_certificates, api::revoke_certificate,
        api::list_issuers, api::get_issuer, api::create_issuer, api::update_issuer, api::revoke_issuer,
        api::list_profiles, api::get_profile, api::create_profile, api::update_profile,
        api::list_tenants, api::create_tenant,
        api::create_token, api::list_tokens, api::revoke_token,
        api::list_audit, api::verify_audit,
        api::list_jobs, api::get_job, api::cancel_job,
        api::list_acme_provisioners, api::create_acme_provisioner, api::get_acme_provisioner,
        api::update_acme_provisioner, api::list_eab_keys, api::create_eab_key, api::revoke_eab_key,
        openapi_json,
    ),
    components(schemas(api::Problem), responses(
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge,
        UnsupportedMediaType, UnprocessableEntity, TooManyRequests, InternalError,
        ServiceUnavailable,
    )),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this API.", body = Object),
        (status = 401, response = Unauthorized),
        (status = 429, response = TooManyRequests),
    ),
    security(("bearer" = [])))]
pub(crate) async fn openapi_json(State(_app): State<App>, Auth(_p): Auth) -> Response {
    axum::Json(ApiDoc::openapi()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::BTreeSet;

    fn document() -> Value {
        serde_json::to_value(ApiDoc::openapi()).expect("serializes")
    }

    /// `(path, method, operation)` for every operation.
    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths").iter() {
            for (method, op) in item.as_object().expect("path item").iter() {
                out.push((path.clone(), method.clone(), op.clone()));
            }
        }
        out
    }

    /// Follows a local `$ref` (`#/components/...`) once.
    fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
        match v["$ref"].as_str().and_then(|r| r.strip_prefix("#")) {
            Some(pointer) => doc.pointer(pointer).expect("$ref resolves"),
            None => v,
        }
    }

    #[test]
    fn document_is_openapi_3_1_and_lists_the_routes() {
        let doc = document();
        assert!(doc["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with("3.1"));
        for path in [
            "/api/v1/certificates",
            "/api/v1/certificates/{id}/revoke",
            "/api/v1/tokens",
            "/api/v1/audit/verify",
            "/api/v1/openapi.json",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path} missing");
        }
    }

    #[test]
    fn every_path_template_parameter_is_declared_and_typed() {
        let doc = document();
        for (path, method, op) in operations(&doc) {
            let in_template: BTreeSet<String> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .map(str::to_owned)
                .collect();
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let declared: BTreeSet<String> = params
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
                .collect();
            assert_eq!(in_template, declared, "{method} {path}: path parameters");
            for p in &params {
                let name = p["name"].as_str().unwrap_or_default();
                assert!(
                    ["path", "query", "header"].contains(&p["in"].as_str().unwrap_or_default()),
                    "{method} {path}: {name} is in {}",
                    p["in"]
                );
                if p["in"] == "path" {
                    assert_eq!(p["required"], true, "{method} {path}: {name} required");
                }
                let schema = resolve(&doc, &p["schema"]);
                let ty = &schema["type"];
                assert!(
                    ty.is_string() || schema["enum"].is_array(),
                    "{method} {path}: {name} has no single type: {schema}"
                );
                assert_ne!(ty, "null", "{method} {path}: {name}");
            }
        }
    }

    #[test]
    fn every_operation_documents_401_and_its_errors_as_problems() {
        let doc = document();
        let problem = &doc["components"]["schemas"]["Problem"];
        for field in ["type", "title", "status", "detail", "code"] {
            assert!(
                problem["required"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|f| f == field)),
                "Problem.{field} not required"
            );
        }
        for (path, method, op) in operations(&doc) {
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses.contains_key("401"),
                "{method} {path}: 401 undocumented"
            );
            assert!(
                responses.contains_key("429"),
                "{method} {path}: 429 undocumented"
            );
            assert!(
                op["security"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some())),
                "{method} {path}: no bearer security requirement"
            );
            let mut successes = 0;
            for (status, response) in responses {
                assert!(
                    status.len() == 3 && status.bytes().all(|b| b.is_ascii_digit()),
                    "{method} {path}: status {status} is a range, not a status"
                );
                let response = resolve(&doc, response);
                let content = response["content"].as_object().cloned().unwrap_or_default();
                // 202 is the one extra success: a pending issuance (the seam's Pending outcome).
                if status.starts_with('2') {
                    successes += usize::from(status != "202");
                    assert!(
                        content.keys().all(|k| k == "application/json"),
                        "{method} {path}: {status} is {:?}",
                        content.keys()
                    );
                    continue;
                }
                let types: Vec<&String> = content.keys().collect();
                assert_eq!(
                    types,
                    [PROBLEM_JSON],
                    "{method} {path}: {status} is not problem+json"
                );
                assert_eq!(
                    content[PROBLEM_JSON]["schema"]["$ref"], "#/components/schemas/Problem",
                    "{method} {path}: {status} is not a Problem"
                );
            }
            assert_eq!(successes, 1, "{method} {path}: one success status");
        }
    }

    #[test]
    fn operations_that_take_a_body_document_its_rejections() {
        let doc = document();
        for (path, method, op) in operations(&doc) {
            let responses = op["responses"].as_object().expect("responses");
            let has = |s: &str| responses.contains_key(s);
            if op.get("requestBody").is_some() {
                for status in ["400", "413", "415", "422"] {
                    assert!(has(status), "{method} {path}: {status} undocumented");
                }
            }
            if path.contains('{') || op["parameters"].is_array() {
                assert!(has("400"), "{method} {path}: parameters but no 400");
            }
            if path.contains('{') {
                assert!(has("404"), "{method} {path}: an object but no 404");
            }
        }
    }

    /// A schema that says only `type: object` tells a generated client nothing; only the
    /// document itself (`GET /openapi.json`) is such a free-form object.
    #[test]
    fn bodies_are_typed_not_bare_objects() {
        fn walk(v: &Value, at: &str, found: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    let is_object = m.get("type").is_some_and(|t| {
                        t == "object"
                            || t.as_array()
                                .is_some_and(|a| a.iter().any(|x| x == "object"))
                    });
                    if is_object
                        && !m.contains_key("properties")
                        && !m.contains_key("additionalProperties")
                    {
                        found.push(at.to_owned());
                    }
                    for (k, v) in m {
                        walk(v, &format!("{at}/{k}"), found);
                    }
                }
                Value::Array(a) => {
                    for (i, v) in a.iter().enumerate() {
                        walk(v, &format!("{at}/{i}"), found);
                    }
                }
                _ => {}
            }
        }
        let doc = document();
        let mut found = Vec::new();
        walk(&doc["paths"], "#/paths", &mut found);
        walk(&doc["components"], "#/components", &mut found);
        found.retain(|p| !p.starts_with("#/paths//api/v1/openapi.json/"));
        assert!(found.is_empty(), "bare objects: {found:#?}");
    }
}

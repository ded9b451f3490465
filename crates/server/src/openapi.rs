//! The OpenAPI 3.1 document, generated from the handlers' types.

use crate::api::{self, App, Auth};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

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

#[derive(OpenApi)]
#[openapi(
    info(title = "TrustBox API", description = "Private PKI: issuance, inventory, revocation, governance."),
    paths(
        api::issue_certificate, api::get_certificate, api::list_certificates, api::revoke_certificate,
        api::list_issuers, api::get_issuer, api::create_issuer, api::update_issuer, api::revoke_issuer,
        api::list_profiles, api::get_profile, api::create_profile, api::update_profile,
        api::list_tenants, api::create_tenant,
        api::create_token, api::list_tokens, api::revoke_token,
        api::list_audit, api::verify_audit,
    ),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// `GET /api/v1/openapi.json` (any valid token).
pub(crate) async fn openapi_json(State(_app): State<App>, Auth(_p): Auth) -> Response {
    axum::Json(ApiDoc::openapi()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_is_openapi_3_1_and_lists_the_routes() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("serializes");
        assert!(doc["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with("3.1"));
        for path in [
            "/api/v1/certificates",
            "/api/v1/certificates/{id}/revoke",
            "/api/v1/tokens",
            "/api/v1/audit/verify",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path} missing");
        }
    }
}

//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Shenfen", description = "Real-name accounts for public education portals."),
    paths(
        routes::codes::request_code,
        routes::accounts::register,
        routes::accounts::reregister,
        routes::sessions::log_in,
        routes::sessions::log_out,
        routes::resets::start,
        routes::resets::deliver,
        routes::resets::complete,
        routes::me::get_me,
        routes::me::update_profile,
        routes::me::change_password,
        routes::me::bind_wechat,
        routes::me::unbind_wechat,
        routes::me::confirm_email,
        routes::claims::of_holder,
        routes::claims::refuse,
        routes::claims::current,
        routes::claims::submit_proof,
        routes::verification::verify,
        routes::verification::apply_for_review,
        routes::verification::my_reviews,
        routes::verification::eligibility,
        routes::staff::log_in,
        routes::staff::log_out,
        routes::staff::change_password,
        routes::staff::create,
        routes::staff::disable,
        routes::staff::enable,
        routes::staff::change_role,
        routes::reviews::queue,
        routes::reviews::claim,
        routes::reviews::decide,
        routes::reviews::photo,
        routes::support::lookup,
        routes::support::change_contact,
        routes::support::correct,
        routes::support::approve,
        routes::analytics::registrations,
        routes::analytics::verification_attempts,
        routes::analytics::verification_failures,
        routes::analytics::quota_exhaustion,
        routes::analytics::manual_reviews,
        routes::analytics::manual_reviews_daily,
        routes::analytics::overdue,
        routes::audit::events,
        routes::audit::state,
    ),
    modifiers(&Bearer)
)]
struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "claim_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The claim token of a re-registration claim (`c1.…`)"))
                    .build(),
            ),
        );
    }
}

/// The document served at `/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

//! The wire names of the enumerated request fields, for the description: each schema is the
//! domain's own list (`Role::ALL`…), so a new value appears here by itself. The handlers read
//! these fields as text and answer a 422 naming the field for any other value.

use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;

use shenfen_domain::account::ResetMethod;
use shenfen_domain::code::{Channel, Purpose};
use shenfen_domain::shared::document::DocumentType;
use shenfen_domain::shared::person::Gender;
use shenfen_domain::shared::validity::ValidityPeriod;
use shenfen_domain::staff::Role;
use shenfen_domain::support_case::{CaseKind, CaseStatus};

/// A reviewer's decisions (`POST /v1/manual-reviews/{id}/decision`).
pub const DECISIONS: [&str; 2] = ["approve", "reject"];

/// A string schema whose values are `names`.
fn one_of(description: &str, names: impl IntoIterator<Item = &'static str>) -> RefOr<Schema> {
    let names: Vec<&str> = names.into_iter().collect();
    ObjectBuilder::new().schema_type(Type::String).description(Some(description)).enum_values(Some(names)).into()
}

macro_rules! wire_names {
    ($($(#[$doc:meta])* $name:ident: $description:literal => $names:expr;)*) => {$(
        $(#[$doc])*
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                one_of($description, $names)
            }
        }

        impl utoipa::ToSchema for $name {}
    )*};
}

wire_names! {
    /// An identity document type.
    DocumentTypeName: "An identity document type." => DocumentType::ALL.map(|t| t.as_str());
    /// A document's validity period.
    ValidityPeriodName: "A document's validity period." => ValidityPeriod::ALL.map(|p| p.as_str());
    /// How a verification code is delivered.
    CodeChannelName: "How a verification code is delivered." => Channel::ALL.map(|c| c.as_str());
    /// What a verification code is for.
    PurposeName: "What a verification code is for." => Purpose::ALL.map(|p| p.as_str());
    /// How a password reset secret is delivered.
    ResetMethodName: "How a password-reset secret is delivered." => ResetMethod::ALL.map(|m| m.as_str());
    /// A gender.
    GenderName: "A gender." => Gender::ALL.map(|g| g.as_str());
    /// A staff role.
    RoleName: "A staff role." => Role::ALL.map(|r| r.as_str());
    /// Who registers a student.
    EducationIdentityName: "Who registers: the student or their guardian." => ["student", "guardian"];
    /// Where a student's verification stands.
    StudentStatusName: "Where a student's verification stands." =>
        shenfen_domain::student::StudentStatus::ALL.map(|s| s.as_str());
    /// A head teacher's decision.
    StudentDecisionName: "A head teacher's decision." => ["approve", "return"];
    /// A reviewer's decision.
    DecisionName: "A reviewer's decision." => DECISIONS;
    /// What an item of the identity-changes feed says changed.
    ChangeKindName: "What changed." => shenfen_projections::feed::kind::ALL;
    /// What a support case asks for.
    SupportCaseKindName: "What a support case asks for." => CaseKind::ALL.map(|k| k.as_str());
    /// Where a support case stands.
    SupportCaseStatusName: "Where a support case stands." => CaseStatus::ALL.map(|s| s.as_str());
}

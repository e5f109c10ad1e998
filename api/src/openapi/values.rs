//! The wire names of the enumerated request fields, for the description only: the handlers
//! read these fields as text and answer a 422 naming the field for any other value.
#![allow(dead_code)]

use serde::Serialize;
use utoipa::ToSchema;

/// An identity document type.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocumentTypeName {
    ResidentIdCard,
    HkMacauPermit,
    TaiwanPermit,
    HmtResidencePermit,
    Other,
}

/// A document's validity period.
#[derive(Serialize, ToSchema)]
pub enum ValidityPeriodName {
    #[serde(rename = "5y")]
    FiveYears,
    #[serde(rename = "10y")]
    TenYears,
    #[serde(rename = "20y")]
    TwentyYears,
    #[serde(rename = "long_term")]
    LongTerm,
}

/// How a verification code is delivered.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CodeChannelName {
    Sms,
    Wechat,
}

/// What a verification code is for.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PurposeName {
    Register,
    ResetPassword,
    GuardianConsent,
    ChangeContact,
}

/// How a password reset secret is delivered.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResetMethodName {
    Email,
    Sms,
    Wechat,
}

/// A gender.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GenderName {
    Male,
    Female,
}

/// A staff role.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    Reviewer,
    Support,
    Auditor,
    Analyst,
    HeadTeacher,
    SchoolAdmin,
    Admin,
}

/// A reviewer's decision.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionName {
    Approve,
    Reject,
}

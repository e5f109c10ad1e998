//! Domain refusals as problems: each aggregate's error has its status (from its kind), its
//! stable code, and its text in English and Chinese, here and nowhere else.

use axum::http::StatusCode;
use shenfen_domain::account::AccountError;
use shenfen_domain::claim::ClaimError;
use shenfen_domain::code::CodeError;
use shenfen_domain::staff::StaffError;
use shenfen_domain::student::pass::PassIdTaken;
use shenfen_domain::student::StudentError;
use shenfen_domain::support_case::SupportCaseError;
use shenfen_domain::verification::VerificationError;
use shenfen_projections::store::BusError;

use super::{ApiError, FieldError};

/// The problem for a refused account command.
impl From<AccountError> for ApiError {
    fn from(err: AccountError) -> Self {
        let status = ApiError::status_of(err.kind());
        let (en, zh): (&str, &str) = match &err {
            AccountError::AlreadyRegistered => (
                "This document is already registered. Use password recovery if you cannot sign in.",
                "该证件已注册，如忘记密码请使用找回密码功能。",
            ),
            AccountError::NotFound => ("No account matches these details.", "未找到匹配的账号。"),
            AccountError::LegacyMustReregister => (
                "This account predates the current system and must be registered again.",
                "该账号为旧系统账号，请重新注册。",
            ),
            AccountError::Locked { .. } => {
                ("Too many failed logins: the account is temporarily locked.", "登录失败次数过多，账号已被临时锁定。")
            }
            AccountError::StaleCredentials => ("The account changed meanwhile; try again.", "账号信息已变更，请重试。"),
            AccountError::ProfileIncomplete => ("Complete the profile first.", "请先完善个人信息。"),
            AccountError::MissingProfileFields(_) => ("Required profile fields are missing.", "请填写必填的个人信息。"),
            AccountError::FieldNotModifiable(_) => ("This field cannot be modified.", "该字段不可修改。"),
            AccountError::MethodNotAvailable => {
                ("This recovery method is not available for the account.", "该找回方式不可用。")
            }
            AccountError::ResetNotFound => ("No such password reset, or it expired.", "找回密码请求不存在或已过期。"),
            AccountError::InvalidOrExpiredSecret => {
                ("The code or link is wrong, used or expired.", "验证码或链接错误、已使用或已过期。")
            }
            AccountError::RateLimited { .. } => ("Wait before asking for another code.", "请稍后再获取验证码。"),
            AccountError::SessionNotFound => ("Sign in first.", "请先登录。"),
            AccountError::WechatNotBound => ("WeChat is not bound.", "未绑定微信。"),
            AccountError::ContactRequestNotFound => {
                ("No contact change with this id is waiting for approval.", "没有待审批的联系方式变更申请。")
            }
            AccountError::SameAgent => (
                "A second support agent must approve the change, not the one who asked for it.",
                "须由另一名客服人员审批该变更。",
            ),
            AccountError::NoEmailChangePending => {
                ("The code is wrong, used or expired.", "验证码错误、已使用或已过期。")
            }
            AccountError::NothingToChange => ("The new contact is the current one.", "新的联系方式与当前相同。"),
            AccountError::NoDeletionPending => {
                ("No deletion of this account is pending.", "该账号没有待生效的注销申请。")
            }
            AccountError::ManualReviewPending => (
                "A manual review is pending: the account can be deleted once it is decided.",
                "人工审核进行中，审核结束后方可注销账号。",
            ),
        };
        let problem = match &err {
            AccountError::MissingProfileFields(fields) => ApiError::invalid(
                fields.iter().map(|f| FieldError { field: (*f).into(), code: "required".into(), hint: None }).collect(),
            ),
            AccountError::FieldNotModifiable(field) => ApiError::field(field, "field_not_modifiable"),
            AccountError::MethodNotAvailable => ApiError::field("method", "method_not_available"),
            _ => ApiError::new(status, err.code(), en, zh),
        };
        let problem = ApiError { detail_en: en.into(), detail_zh: zh.into(), ..problem };
        match err {
            AccountError::Locked { until } => problem.with("locked_until", until),
            AccountError::RateLimited { retry_at } => problem.with("retry_at", retry_at),
            _ => problem,
        }
    }
}

/// The problem for a refused code command.
impl From<CodeError> for ApiError {
    fn from(err: CodeError) -> Self {
        match err {
            CodeError::RateLimited { retry_at } => ApiError::new(
                ApiError::status_of(err.kind()),
                err.code(),
                "A new code can be requested once a minute and 10 times a day.",
                "验证码每分钟最多获取一次，每天最多 10 次。",
            )
            .with("retry_at", retry_at),
            CodeError::Invalid => ApiError::field("verification.code", err.code()),
        }
    }
}

/// A failed command: the domain's refusal as its problem, a stale session as 401, contention
/// as 409 `conflict_retry`, a write the store did not take in time as 503 `store_unavailable`
/// (nothing was written), and any other store failure as 500.
impl<E> From<BusError<E>> for ApiError
where
    E: std::error::Error,
    ApiError: From<E>,
{
    fn from(err: BusError<E>) -> Self {
        match err {
            BusError::Domain(e) => ApiError::from(e),
            // The only precondition the routes set: the caller's session is still live.
            BusError::Precondition => ApiError::unauthenticated(),
            BusError::Contention => ApiError::new(
                StatusCode::CONFLICT,
                "conflict_retry",
                "Too many simultaneous changes to this account; try again.",
                "操作过于频繁，请重试。",
            ),
            BusError::Unavailable => ApiError::store_unavailable(),
            BusError::Store(cause) => ApiError::internal(cause),
        }
    }
}

/// The problem for a refused verification command.
impl From<VerificationError> for ApiError {
    fn from(err: VerificationError) -> Self {
        let status = ApiError::status_of(err.kind());
        let (en, zh): (&str, &str) = match &err {
            VerificationError::ManualReviewPending => (
                "A manual review is pending: no verification and no change until it is decided.",
                "人工审核期间不可进行实名核验或修改信息。",
            ),
            VerificationError::AttemptInProgress => ("Another verification is in progress.", "另一项核验正在进行中。"),
            VerificationError::DailyAttemptsExhausted { .. } => (
                "Real-name verification may be tried 3 times a day; try again tomorrow.",
                "每日最多可进行三次实名核验，请明日再试。",
            ),
            VerificationError::NoSuchAttempt => ("No such verification attempt.", "核验记录不存在。"),
            VerificationError::VerificationRequiredFirst => (
                "Run real-name verification first; manual review is for when it fails.",
                "请先进行实名核验，未通过时再申请人工审核。",
            ),
            VerificationError::AlreadyVerified => ("The identity is already proven.", "身份已核验通过。"),
            VerificationError::PeriodQuotaExhausted { .. } => {
                ("Manual review may be applied for 3 times per period.", "每个周期最多可申请三次人工审核。")
            }
            VerificationError::ReviewNotFound => ("No such application.", "审核申请不存在。"),
            VerificationError::NotPending => ("The application is already decided.", "该申请已审核完毕。"),
            VerificationError::AlreadyClaimed => ("Another reviewer has claimed it.", "该申请已被其他审核员领取。"),
            VerificationError::OwnAccount => {
                ("Reviewers never review their own account.", "审核员不能审核本人的申请。")
            }
            VerificationError::NotClaimedByYou => ("Claim the application first.", "请先领取该申请。"),
            VerificationError::ReasonRequired => ("A rejection needs a reason.", "不通过时须填写原因。"),
        };
        let problem = match &err {
            VerificationError::ReasonRequired => ApiError::field("reason", "reason_required"),
            _ => ApiError::new(status, err.code(), en, zh),
        };
        let problem = ApiError { detail_en: en.into(), detail_zh: zh.into(), ..problem };
        match err {
            VerificationError::DailyAttemptsExhausted { next_attempt_at } => {
                problem.with("next_attempt_at", next_attempt_at)
            }
            VerificationError::PeriodQuotaExhausted { next_period_start } => {
                problem.with("next_period_start", next_period_start)
            }
            _ => problem,
        }
    }
}

/// The problem for a refused staff command.
impl From<StaffError> for ApiError {
    fn from(err: StaffError) -> Self {
        let status = ApiError::status_of(err.kind());
        match err {
            StaffError::UsernameTaken => {
                ApiError::new(status, err.code(), "This username is taken.", "该用户名已存在。")
            }
            // A disabled member is told no more than a stranger.
            StaffError::NotFound | StaffError::Disabled => {
                ApiError::new(status, err.code(), "The username or password is wrong.", "用户名或密码错误。")
            }
            StaffError::Locked { until } => ApiError::new(
                status,
                err.code(),
                "Too many failed logins: temporarily locked.",
                "登录失败次数过多，已被临时锁定。",
            )
            .with("locked_until", until),
            StaffError::StaleCredentials => ApiError::new(status, err.code(), "Try again.", "请重试。"),
            StaffError::SessionNotFound => ApiError::unauthenticated(),
        }
    }
}

/// The problem for a refused claim command.
impl From<ClaimError> for ApiError {
    fn from(err: ClaimError) -> Self {
        let status = ApiError::status_of(err.kind());
        let (en, zh): (&str, &str) = match &err {
            ClaimError::NotFound => ("No such claim.", "该申请不存在。"),
            ClaimError::AlreadyOpen => ("This claim is already open.", "该申请已存在。"),
            ClaimError::NotOpen => ("The claim is no longer open.", "该申请已结束。"),
            ClaimError::ProofAlreadySubmitted => {
                ("The proof is already with a reviewer.", "材料已提交审核，请等待审核结果。")
            }
            ClaimError::DocumentTypeMismatch => {
                ("The document type is not the claimed document's.", "证件类型与所申请的证件不一致。")
            }
            ClaimError::ReviewNotFound => ("No such review.", "审核申请不存在。"),
            ClaimError::NotPending => ("The review is already decided.", "该申请已审核完毕。"),
            ClaimError::AlreadyClaimed => ("Another reviewer has claimed it.", "该申请已被其他审核员领取。"),
            ClaimError::NotClaimedByYou => ("Claim the review first.", "请先领取该申请。"),
            ClaimError::ReasonRequired => ("A rejection needs a reason.", "不通过时须填写原因。"),
            ClaimError::OwnAccount => ("Reviewers never review their own account.", "审核员不能审核本人的申请。"),
        };
        let problem = match &err {
            ClaimError::ReasonRequired => ApiError::field("reason", "reason_required"),
            ClaimError::DocumentTypeMismatch => ApiError::field("document_type", "document_type_mismatch"),
            _ => ApiError::new(status, err.code(), en, zh),
        };
        ApiError { detail_en: en.into(), detail_zh: zh.into(), ..problem }
    }
}

/// The problem for a refused support-case command.
impl From<SupportCaseError> for ApiError {
    fn from(err: SupportCaseError) -> Self {
        let status = ApiError::status_of(err.kind());
        let (en, zh): (&str, &str) = match &err {
            SupportCaseError::NotFound => ("No such support case.", "该客服工单不存在。"),
            SupportCaseError::AlreadyOpen => ("This support case is already open.", "该客服工单已存在。"),
        };
        ApiError::new(status, err.code(), en, zh)
    }
}

/// The problem for a refused student command.
impl From<StudentError> for ApiError {
    fn from(err: StudentError) -> Self {
        let status = ApiError::status_of(err.kind());
        let (en, zh): (&str, &str) = match &err {
            StudentError::AlreadyRegistered => (
                "This student number is already registered. Use password recovery if you cannot sign in.",
                "该学生号已注册，如忘记密码请使用找回密码功能。",
            ),
            StudentError::NotFound => {
                ("The pass ID, student number or password is wrong.", "通行证ID、学生号或密码错误。")
            }
            StudentError::Locked { .. } => {
                ("Too many failed logins: the account is temporarily locked.", "登录失败次数过多，账号已被临时锁定。")
            }
            StudentError::StaleCredentials | StudentError::NoSuchSubmission => {
                ("The application changed meanwhile; try again.", "信息已变更，请重试。")
            }
            StudentError::SessionNotFound => ("Sign in first.", "请先登录。"),
            StudentError::Pending => (
                "The application is being verified: it cannot change until it is decided.",
                "学生身份认证审核中，审核结束前不可修改或重复提交。",
            ),
            StudentError::AlreadyApproved => (
                "The student is verified already; a change of enrolment goes through reconfirmation.",
                "学生身份已认证通过，学籍变更请通过学期确认办理。",
            ),
            StudentError::MinorFlagRequired => (
                "The ID number is the guardian's: say that the minor uses the guardian's ID.",
                "身份证号与监护人相同，请勾选“未成年人使用监护人证件”。",
            ),
            StudentError::EnrolmentRequired => ("Enter the grade before the materials.", "请先填写年级再上传材料。"),
            StudentError::MaterialWrongForStage => (
                "Primary and middle school need a household-register page; high school both sides of the ID card.",
                "小学、初中请上传户口本页，高中请上传身份证正反面。",
            ),
            StudentError::GuardianMobileMissing => ("Enter the guardian's mobile first.", "请先填写监护人手机号。"),
            StudentError::Incomplete { .. } => ("The application is incomplete.", "认证信息不完整，请补全后提交。"),
            StudentError::GuardianNotVerified => ("Verify the guardian's mobile first.", "请先完成监护人手机号验证。"),
            StudentError::SchoolNotFiled => (
                "The school is not filed on the platform; verification is not open to it yet.",
                "该学校尚未在平台备案，暂不能进行学生身份认证。",
            ),
            StudentError::SchoolActionRequired => (
                "The registry could not confirm the enrolment: the school must refresh or link it first.",
                "学籍信息核验失败，请联系学校管理员刷新或关联学籍后再提交。",
            ),
            StudentError::DailySubmissionsExhausted { .. } => {
                ("Submissions are limited to 3 a day; try again tomorrow.", "每日最多提交三次，请明日再试。")
            }
            StudentError::RegistryUnavailable => (
                "The student registry cannot be reached; nothing was counted. Try again later.",
                "学籍库暂时无法访问，本次不计次数，请稍后再试。",
            ),
            StudentError::ReviewNotFound => ("No such review.", "审核申请不存在。"),
            StudentError::NotPending => ("The application is not pending.", "该申请不在待审核状态。"),
            StudentError::OutOfScope => {
                ("This student is outside your school or class.", "该学生不在您负责的学校或班级。")
            }
            StudentError::ReasonRequired => ("A return needs a reason.", "退回时须填写原因。"),
            StudentError::ReconfirmationNotDue => {
                ("No reconfirmation is due this semester.", "本学期无需确认学籍信息。")
            }
            StudentError::NoDeletionPending => ("No deletion is pending.", "没有待生效的注销申请。"),
        };
        let problem = match &err {
            StudentError::MinorFlagRequired => ApiError::field("personal.minor_uses_guardian_id", err.code()),
            StudentError::MaterialWrongForStage => ApiError::field("materials", err.code()),
            StudentError::ReasonRequired => ApiError::field("reason", err.code()),
            _ => ApiError::new(status, err.code(), en, zh),
        };
        let problem = ApiError { detail_en: en.into(), detail_zh: zh.into(), ..problem };
        match err {
            StudentError::Locked { until } => problem.with("locked_until", until),
            StudentError::Incomplete { missing } => problem.with("missing", missing),
            StudentError::DailySubmissionsExhausted { next_attempt_at } => {
                problem.with("next_attempt_at", next_attempt_at)
            }
            _ => problem,
        }
    }
}

/// A pass ID drawn twice: the registration draws again (never shown to a client).
impl From<PassIdTaken> for ApiError {
    fn from(err: PassIdTaken) -> Self {
        ApiError::new(ApiError::status_of(err.kind()), err.code(), "Try again.", "请重试。")
    }
}

//! The reviewer's rules, for both kinds of manual review (a holder's application on the
//! verification stream, a claimant's proof on a claim stream): a reviewer never reviews their
//! own account; one reviewer claims a review, and only they decide it; a rejection gives the
//! applicant a reason.

use super::Decision;

/// Why a reviewer's act is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewRefusal {
    OwnAccount,
    AlreadyClaimed,
    NotClaimedByYou,
    ReasonRequired,
}

/// Refuses a reviewer whose own applicant account (`reviewer_account`) is the one reviewed.
pub fn not_own(reviewer_account: Option<&str>, account_id: Option<&str>) -> Result<(), ReviewRefusal> {
    if reviewer_account.is_some() && reviewer_account == account_id {
        return Err(ReviewRefusal::OwnAccount);
    }
    Ok(())
}

/// Whether `reviewer` may claim a review that `claimed_by` holds: `true` when the claim is to
/// be recorded, `false` when the review is theirs already (claiming again changes nothing).
pub fn may_claim(claimed_by: Option<&str>, reviewer: &str) -> Result<bool, ReviewRefusal> {
    match claimed_by {
        Some(by) if by == reviewer => Ok(false),
        Some(_) => Err(ReviewRefusal::AlreadyClaimed),
        None => Ok(true),
    }
}

/// What `reviewer` decides on a review `claimed_by` holds: `None` for an approval, the
/// rejection's reason (trimmed) otherwise.
pub fn verdict(claimed_by: Option<&str>, reviewer: &str, decision: Decision) -> Result<Option<String>, ReviewRefusal> {
    if claimed_by != Some(reviewer) {
        return Err(ReviewRefusal::NotClaimedByYou);
    }
    match decision {
        Decision::Approve => Ok(None),
        Decision::Reject { reason } => {
            let reason = reason.trim();
            if reason.is_empty() {
                return Err(ReviewRefusal::ReasonRequired);
            }
            Ok(Some(reason.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reviewer_claims_once_and_never_their_own_account() {
        assert_eq!(may_claim(None, "r1"), Ok(true));
        assert_eq!(may_claim(Some("r1"), "r1"), Ok(false), "claiming again changes nothing");
        assert_eq!(may_claim(Some("r2"), "r1"), Err(ReviewRefusal::AlreadyClaimed));
        assert_eq!(not_own(Some("acc"), Some("acc")), Err(ReviewRefusal::OwnAccount));
        assert_eq!(not_own(None, Some("acc")), Ok(()));
        assert_eq!(not_own(Some("other"), Some("acc")), Ok(()));
    }

    #[test]
    fn only_the_claiming_reviewer_decides_and_a_rejection_needs_a_reason() {
        assert_eq!(verdict(Some("r1"), "r1", Decision::Approve), Ok(None));
        assert_eq!(verdict(Some("r2"), "r1", Decision::Approve), Err(ReviewRefusal::NotClaimedByYou));
        assert_eq!(verdict(None, "r1", Decision::Approve), Err(ReviewRefusal::NotClaimedByYou));
        let reject = |reason: &str| Decision::Reject { reason: reason.into() };
        assert_eq!(verdict(Some("r1"), "r1", reject("  ")), Err(ReviewRefusal::ReasonRequired));
        assert_eq!(verdict(Some("r1"), "r1", reject(" blurry ")), Ok(Some("blurry".into())));
    }
}

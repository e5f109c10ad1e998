//! The identity-changes feed (source document 001: after a change of identity information,
//! applications must be resubmitted): downstream services (staff role `service`) page through
//! it by cursor and miss nothing, even while writers run.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::json;
use shenfen_tests::{both_stores, eventually, ApiResponse, Identity, Registration, Settings, TestApp};

const FEED: &str = "/v1/feeds/identity-changes";

/// `(cursor, account_id, kind)` of a page's items.
fn items(page: &ApiResponse) -> Vec<(i64, String, String)> {
    page.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {}", page.text))
        .iter()
        .map(|i| {
            let text = |k: &str| i[k].as_str().unwrap_or_default().to_string();
            (i["cursor"].as_i64().unwrap_or_default(), text("account_id"), text("kind"))
        })
        .collect()
}

/// Every item after `after`, page by page.
async fn read_all(app: &TestApp, token: &str, mut after: i64) -> Vec<(i64, String, String)> {
    let mut all = Vec::new();
    loop {
        let page = app.get_as(token, &format!("{FEED}?after={after}&limit=7")).await;
        page.assert_status(200);
        let got = items(&page);
        if got.is_empty() {
            return all;
        }
        after = page.body["next_cursor"].as_i64().expect("next_cursor");
        all.extend(got);
    }
}

/// Polls the feed until `done` holds for the items of `account` (or 15 s pass).
async fn kinds_of(app: &TestApp, token: &str, account: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let kinds = || async {
        read_all(app, token, 0).await.into_iter().filter(|(_, a, _)| a == account).map(|(_, _, k)| k).collect()
    };
    eventually(Duration::from_secs(15), kinds, |k: &Vec<String>| done(k)).await
}

async fn downstream_services_learn_of_every_identity_change_and_nothing_personal(app: &mut TestApp) {
    let service = app.staff_member("service").await;
    let analyst = app.staff_member("analyst").await;
    let support = app.staff_member("support").await;
    let on_record = app.identities()[0].clone();
    let (account, token) = app.ready_applicant(on_record.registration(&on_record.name)).await;

    // Only the service role reads the feed.
    app.get_as(&analyst.token, FEED).await.assert_problem(403, "forbidden");
    app.get_as(&token, FEED).await.assert_status(403);
    app.get(FEED).await.assert_problem(401, "unauthenticated");
    app.get_as(&service.token, &format!("{FEED}?limit=0")).await.assert_field_error("limit", "invalid_limit");

    // Verified: the status changed. The holder edits the validity, support corrects the name.
    app.verify(&token).await.assert_status(200);
    let edit = json!({"validity": {"period": "20y", "start": "2021-03-01"}});
    app.put_json_as(&token, "/v1/me/profile", &edit).await.assert_status(200);
    let corrections = format!("/v1/support/accounts/{}/corrections", account.account_id);
    let correction = json!({"name": "王晓明", "reason": "户籍姓名更正", "evidence_ref": "mail-2031/id.jpg"});
    app.post_json_as(&support.token, &corrections, &correction).await.assert_status(204);

    let expected = [
        "verification_status_changed",
        "validity_changed",
        "resubmission_required",
        "name_changed",
        "resubmission_required",
    ];
    let kinds = kinds_of(app, &service.token, &account.account_id, |k| k.len() >= expected.len()).await;
    assert_eq!(kinds, expected);

    // Items name the account and the change, never personal data.
    let page = app.get_as(&service.token, FEED).await;
    for forbidden in [account.document_number.as_str(), account.name.as_str(), "王晓明", account.mobile.as_str()] {
        assert!(!page.text.contains(forbidden), "the feed shows {forbidden}: {}", page.text);
    }
    let item = &page.body["items"][0];
    let keys: BTreeSet<&str> = item.as_object().expect("item").keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["account_id", "at", "cursor", "kind"]), "{item}");
    // Past the end: nothing, and the cursor stays.
    let last = page.body["next_cursor"].as_i64().expect("next_cursor");
    let rest = app.get_as(&service.token, &format!("{FEED}?after={}", last + 1000)).await;
    assert_eq!(rest.body, json!({"items": [], "next_cursor": last + 1000}), "{}", rest.text);
}
both_stores!(
    downstream_services_learn_of_every_identity_change_and_nothing_personal,
    Settings::with_identities(vec![Identity::resident("王小明")])
);

async fn a_reader_paging_while_writers_run_misses_nothing(app: &mut TestApp) {
    const ACCOUNTS: usize = 8;
    const EDITS: usize = 4;
    let app: &TestApp = app;
    let service = app.staff_member("service").await;
    let applicants = join_all((0..ACCOUNTS).map(|_| app.ready_applicant(Registration::resident()))).await;
    let ours: BTreeSet<String> = applicants.iter().map(|(a, _)| a.account_id.clone()).collect();
    let start = read_all(app, &service.token, 0).await.last().map_or(0, |(c, _, _)| *c);

    // Writers: every account edits its ethnicity EDITS times, all accounts at once.
    let writers = join_all(applicants.iter().map(|(_, token)| async move {
        for i in 0..EDITS {
            let ethnicity = format!("{:02}", i + 2);
            let edited: ApiResponse = app.put_json_as(token, "/v1/me/profile", &json!({"ethnicity": ethnicity})).await;
            edited.assert_status(200);
        }
    }));
    // The reader pages from where it stood, as a downstream service would, until it has seen
    // every resubmission (or 30 s pass).
    let reader = async {
        let mut seen: Vec<(i64, String, String)> = Vec::new();
        let mut after = start;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let page = app.get_as(&service.token, &format!("{FEED}?after={after}&limit=3")).await;
            page.assert_status(200);
            after = page.body["next_cursor"].as_i64().expect("next_cursor");
            seen.extend(items(&page));
            let ours_seen = seen.iter().filter(|(_, a, k)| ours.contains(a) && k == "resubmission_required").count();
            if ours_seen >= ACCOUNTS * EDITS {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        seen
    };
    let (_, seen) = tokio::join!(writers, reader);

    // In order, nothing twice, and exactly what a reader after the fact sees.
    let cursors: Vec<i64> = seen.iter().map(|(c, _, _)| *c).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "cursors out of order: {cursors:?}");
    let after_the_fact = read_all(app, &service.token, start).await;
    let live: Vec<&(i64, String, String)> = seen.iter().filter(|(_, a, _)| ours.contains(a)).collect();
    let later: Vec<&(i64, String, String)> = after_the_fact.iter().filter(|(_, a, _)| ours.contains(a)).collect();
    assert_eq!(live, later, "the live reader missed or reordered items");
    let mut per_account: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, account, kind) in &live {
        assert_eq!(kind, "resubmission_required");
        *per_account.entry(account.as_str()).or_default() += 1;
    }
    assert_eq!(per_account.len(), ACCOUNTS, "{per_account:?}");
    assert!(per_account.values().all(|n| *n == EDITS), "{per_account:?}");
}
both_stores!(a_reader_paging_while_writers_run_misses_nothing);

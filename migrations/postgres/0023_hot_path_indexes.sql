-- Indexes the EXPLAIN test (replay-tool/tests/replay.rs) found missing:
-- the analyst projection counts a holder's manual-review applications in a half-year period
-- for every review it applies (each count read the whole table);
CREATE INDEX analytics_reviews_account ON analytics_reviews (account_id, period_start);
-- an erasure finds the support cases about the account.
CREATE INDEX support_cases_account ON support_cases (account_id);

-- A school staff member's action names a review: found by its id without reading the table
-- (checked with EXPLAIN in replay-tool/tests/replay.rs).
CREATE INDEX students_review ON students (review_id);

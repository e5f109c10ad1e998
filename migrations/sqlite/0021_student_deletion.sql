-- A student's pending deletion (注销), for the housekeeping round that erases the due ones
-- (projections/src/students.rs).
ALTER TABLE students ADD COLUMN deletion_effective_at TEXT;
CREATE INDEX students_deletion_due ON students (deletion_effective_at);

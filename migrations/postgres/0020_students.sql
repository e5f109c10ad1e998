-- Students (projections/src/students.rs): one row per student for the school staff's queues and
-- searches, and the analyst table of student verifications per school and China day.
CREATE TABLE students (
    student_id       TEXT        PRIMARY KEY,
    pass_id          TEXT        NOT NULL UNIQUE,
    student_number   TEXT        NOT NULL,
    name             TEXT        NOT NULL DEFAULT '',
    school_code      TEXT        NOT NULL DEFAULT '',
    grade            INTEGER     NOT NULL DEFAULT 0,
    -- NFKC and trimmed, as head teachers' scopes are.
    class            TEXT        NOT NULL DEFAULT '',
    status           TEXT        NOT NULL,
    review_id        TEXT,
    -- JSON array of the fields that differ from the registry's record.
    differences      TEXT        NOT NULL DEFAULT '[]',
    submitted_at     timestamptz,
    due_by           date,
    registry_error   TEXT,
    -- Who the next comparison outcome answers: 'student' (a submission) or 'school'.
    comparing_for    TEXT,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX students_queue ON students (school_code, status, due_by);
CREATE INDEX students_number ON students (student_number);

CREATE TABLE analytics_student_verifications (
    school_code           TEXT    NOT NULL,
    day                   date    NOT NULL,
    submitted             INTEGER NOT NULL DEFAULT 0,
    auto_approved         INTEGER NOT NULL DEFAULT 0,
    head_teacher_approved INTEGER NOT NULL DEFAULT 0,
    returned              INTEGER NOT NULL DEFAULT 0,
    registry_failed       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (school_code, day)
);

-- Which stored photos the log references (projections/src/photo_refs.rs): a blob that no
-- event references is deleted after a grace period (refused uploads cannot fill the disk).
CREATE TABLE photo_refs (
    digest        text        PRIMARY KEY,
    referenced_at timestamptz NOT NULL
);

-- When a decided application's ID photos were deleted, their retention period over
-- (SHENFEN_PHOTO_RETENTION_DAYS); the retention worker reads the decided rows without it.
ALTER TABLE review_queue ADD COLUMN photos_deleted_at TEXT;

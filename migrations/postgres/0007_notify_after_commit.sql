-- The NOTIFY that wakes other processes' projection runners is sent by the writer after it
-- commits, outside the appending transaction: PostgreSQL serialises the commits of
-- transactions that NOTIFY (a database-wide lock held until the commit record is flushed),
-- which made every append wait for the previous one's fsync.
DROP TRIGGER events_notify ON events;
DROP FUNCTION notify_events();

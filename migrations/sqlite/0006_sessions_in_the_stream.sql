-- Account sessions are checked against the account stream itself (the token names its
-- account), so the sessions read model is gone.
DROP TABLE sessions;

-- The dashboard's logins: one row per login (the login form or a one-time link), so that
-- logging out ends it on the server. The signed cookie carries a random login id; only its
-- SHA-256 is kept here. A row lives until logout or its expiry (the sweeper deletes it then).
CREATE TABLE dashboard_logins (
    id_hash     BLOB PRIMARY KEY,      -- SHA-256 of the login id the cookie carries
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX dashboard_logins_by_expiry ON dashboard_logins (expires_at);

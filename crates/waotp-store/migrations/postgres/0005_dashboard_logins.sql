-- The dashboard's logins (as SQLite's migration 0006): one row per login (the login form or a
-- one-time link), so that logging out on any node ends it on every node. The signed cookie
-- carries a random login id; only its SHA-256 is kept here. A row lives until logout or its
-- expiry (the sweeper deletes it then).
CREATE TABLE dashboard_logins (
    id_hash     bytea PRIMARY KEY,     -- SHA-256 of the login id the cookie carries
    created_at  bigint NOT NULL,
    expires_at  bigint NOT NULL
);
CREATE INDEX dashboard_logins_by_expiry ON dashboard_logins (expires_at);

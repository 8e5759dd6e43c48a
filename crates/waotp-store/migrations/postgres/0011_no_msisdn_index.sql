-- The dashboard's search by msisdn goes through sessions_by_key (app_id, sandbox, msisdn, …),
-- naming every app and both sandbox values (as SQLite's migration 0008): the index of msisdns
-- alone, which every send wrote at a random place, goes. Dropping it takes the sessions table's
-- exclusive lock for a moment (it waits for statements running on the table, and holds up
-- those that come after it until the migration commits).
DROP INDEX sessions_by_msisdn;

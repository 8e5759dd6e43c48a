-- The dashboard's search by msisdn goes through sessions_by_key (app_id, sandbox, msisdn, …),
-- naming every app and both sandbox values; its own index, written on every send at a random
-- place, goes.
DROP INDEX sessions_by_msisdn;

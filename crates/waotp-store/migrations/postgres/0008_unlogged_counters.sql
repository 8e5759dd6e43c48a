-- Counters (rate-limit windows, pumping signals, conversion counts) need exactness under
-- concurrency, not durability: as an UNLOGGED table their bumps write no WAL (measured with
-- scripts/pg-cost: about 1 KB of a send's 3.6 KB, and of a verify's 1.5 KB). What it costs:
-- after a crash of PostgreSQL (not of waotp) the table is empty, and a standby has no copy of
-- it (after a failover it is empty too): every window starts again from zero, so a limit is
-- lenient for at most one window. The table is rewritten once, here, under a short exclusive
-- lock.
ALTER TABLE counters SET UNLOGGED;

-- The rate-limit and pumping-signal counters live in the server's memory (one server per SQLite
-- file: its writer thread checks and bumps them atomically with each send and verify), not in a
-- table that every send wrote several rows and index entries to. A restart forgets them: each
-- limit is more lenient for at most one of its windows.
DROP TABLE counters;

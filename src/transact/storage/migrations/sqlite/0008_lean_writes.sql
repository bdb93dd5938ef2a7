-- Version 8 is Postgres-only work (the step foreign key's row lock, trigger WHEN clauses).
-- SQLite keeps its foreign key: it takes no row locks, so it costs next to nothing here.
SELECT 1;

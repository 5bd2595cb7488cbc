-- Notifications move out of the writers' transactions (see app::db::notify): PostgreSQL
-- serialises the commits of every transaction that notifies, so these triggers made each
-- submission (a generation and its job) wait its turn for one database-wide lock. The code
-- now notifies the same channels, with the same payloads, right after each commit.
DROP TRIGGER jobs_notify_ready ON jobs;
DROP FUNCTION jobs_notify();
DROP TRIGGER generations_notify_change ON generations;
DROP FUNCTION generations_notify();

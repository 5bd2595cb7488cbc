DROP INDEX signin_failures_email_prefix_idx;
ALTER TABLE signin_failures DROP COLUMN prefix;

-- Failed sign-ins also remember the client prefix they came from (an IPv4 address, or the
-- /64 of an IPv6 one), so a stranger locks only (account, their prefix) at the low ceiling;
-- the account as a whole locks at a higher ceiling counted across every prefix. Older rows
-- get '' (one unknown prefix).
ALTER TABLE signin_failures ADD COLUMN prefix TEXT NOT NULL DEFAULT '';

CREATE INDEX signin_failures_email_prefix_idx
    ON signin_failures (email, prefix, failed_at DESC);

-- Failed sign-ins per email (existing account or not), for the sign-in lockout: so many
-- within the window and that email is refused until the oldest of them ages out. Kept here
-- rather than in each process so every instance enforces one count, and a restart or a
-- deploy does not hand an attacker fresh tries. Rows older than the window are deleted as
-- the email fails again and by the hourly sweep.
CREATE TABLE signin_failures (
    id BIGSERIAL PRIMARY KEY,
    -- Lower-cased and trimmed, as the sign-in looks accounts up (the 8 KiB sign-in body
    -- limit bounds it).
    email TEXT NOT NULL,
    failed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX signin_failures_email_idx ON signin_failures (email, failed_at DESC);
-- The sweep deletes by age across every email.
CREATE INDEX signin_failures_failed_at_idx ON signin_failures (failed_at);

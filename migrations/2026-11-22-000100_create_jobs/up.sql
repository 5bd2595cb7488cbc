-- The job queue. Workers claim ready jobs with FOR UPDATE SKIP LOCKED, hold them under a
-- lease they renew while working, and either finish them, schedule a retry with backoff, or
-- dead-letter them after their last attempt. A job whose lease ran out (its worker died) is
-- claimable again.
CREATE TABLE jobs (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_.]*$'),
    payload JSONB NOT NULL DEFAULT '{}'::jsonb,
    status TEXT NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'succeeded', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts INTEGER NOT NULL DEFAULT 5 CHECK (max_attempts > 0),
    run_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    locked_by TEXT,
    lease_until TIMESTAMPTZ,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ,
    CHECK ((status = 'running') = (locked_by IS NOT NULL AND lease_until IS NOT NULL))
);

-- What a worker scans: ready jobs in order, and running jobs whose lease may have run out.
CREATE INDEX jobs_ready_idx ON jobs (run_at, id) WHERE status = 'queued';
CREATE INDEX jobs_lease_idx ON jobs (lease_until) WHERE status = 'running';
-- What an operator lists.
CREATE INDEX jobs_dead_idx ON jobs (updated_at DESC, id DESC) WHERE status = 'dead';

-- Wake idle workers at once instead of at their next poll.
CREATE FUNCTION jobs_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('jobs', NEW.kind);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER jobs_notify_ready
    AFTER INSERT OR UPDATE OF status ON jobs
    FOR EACH ROW WHEN (NEW.status = 'queued')
    EXECUTE FUNCTION jobs_notify();

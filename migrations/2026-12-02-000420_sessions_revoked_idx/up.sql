-- A web process reloads the sessions revoked within an access-token lifetime when it starts
-- and whenever its LISTEN connection comes back: a short range of this partial index.
CREATE INDEX sessions_revoked_at_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- Sign-in sessions. A session is one sign-in on one device and is also the "family" of its
-- refresh tokens: presenting a used refresh token again revokes the whole session.
CREATE TABLE sessions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Shown in the sessions list so a creator can tell their devices apart (truncated).
    user_agent TEXT NOT NULL DEFAULT '' CHECK (char_length(user_agent) <= 300),
    ip TEXT NOT NULL DEFAULT '' CHECK (char_length(ip) <= 64),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The newest refresh token's expiry: the session ends then unless refreshed.
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ,
    -- Why it ended: signed_out, revoked, password_changed, signed_out_everywhere, reuse_detected.
    revoked_reason TEXT
);

CREATE INDEX sessions_user_idx ON sessions (user_id, created_at DESC);

-- Refresh tokens, stored only as SHA-256 hashes of their 256 random bits. `used_at` is set
-- when a token is exchanged for the next one; a token with `used_at` set is spent.
CREATE TABLE refresh_tokens (
    token_hash BYTEA PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    session_id UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ
);

CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

-- Bytes of uploads each account holds, for its tier's storage quota. Reserved before an
-- upload is stored and released when it is deleted, in the same statement as the check.
ALTER TABLE users ADD COLUMN storage_bytes BIGINT NOT NULL DEFAULT 0 CHECK (storage_bytes >= 0);

-- Generations belong to their creator. Rows made before accounts existed have no owner and
-- are shown to nobody.
ALTER TABLE generations ADD COLUMN user_id UUID REFERENCES users (id) ON DELETE CASCADE;
-- The creator's own list and the daily quota both read newest-first per user.
CREATE INDEX generations_user_created_idx ON generations (user_id, created_at DESC, id DESC);

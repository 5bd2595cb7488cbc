-- What each account has used, written with the use itself and never changed after: the daily
-- generation allowance counts from here, so deleting images or generations gives nothing
-- back. Provider calls of paid providers are recorded with their cost (micro-units of the
-- operator's currency). No foreign key to generations, on purpose: their rows may go.
CREATE TABLE usage_ledger (
    id BIGSERIAL PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('generation', 'provider_call')),
    quantity INTEGER NOT NULL DEFAULT 1 CHECK (quantity > 0),
    cost_micros BIGINT NOT NULL DEFAULT 0 CHECK (cost_micros >= 0),
    generation_id UUID,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The allowance check is one index-only range: a user's kind since a moment, summed.
CREATE INDEX usage_ledger_user_kind_created_idx
    ON usage_ledger (user_id, kind, created_at) INCLUDE (quantity);

-- The day so far, so an upgrade does not hand out a fresh allowance.
INSERT INTO usage_ledger (user_id, kind, quantity, generation_id, created_at)
    SELECT user_id, 'generation', 1, id, created_at FROM generations
    WHERE user_id IS NOT NULL AND created_at > now() - interval '24 hours';

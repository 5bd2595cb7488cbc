-- Prompts submitted from the create page (the walking skeleton's vertical slice).
CREATE TABLE prompts (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    prompt TEXT NOT NULL CHECK (char_length(prompt) BETWEEN 3 AND 500),
    style TEXT NOT NULL CHECK (style ~ '^[a-z_]+$'),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- "Recent prompts" reads newest first; (created_at, id) is also the future keyset cursor.
CREATE INDEX prompts_created_at_id_idx ON prompts (created_at DESC, id DESC);

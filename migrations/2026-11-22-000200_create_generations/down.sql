DROP TRIGGER generations_notify_change ON generations;
DROP FUNCTION generations_notify();
DROP TABLE images;
DROP TABLE generations;
CREATE TABLE prompts (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    prompt TEXT NOT NULL CHECK (char_length(prompt) BETWEEN 3 AND 500),
    style TEXT NOT NULL CHECK (style ~ '^[a-z_]+$'),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX prompts_created_at_id_idx ON prompts (created_at DESC, id DESC);

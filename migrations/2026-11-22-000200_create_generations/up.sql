-- The creation pipeline replaces the walking skeleton's bare prompt list.
DROP TABLE prompts;

-- One submission from the create page: a prompt rendered in a style at a platform format,
-- `variations` times (one image per variation, each with its own seed). The job queue drives
-- it; this row holds what the creator asked for, the progress they watch and the outcome.
CREATE TABLE generations (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    prompt TEXT NOT NULL CHECK (char_length(prompt) BETWEEN 3 AND 500),
    style TEXT NOT NULL CHECK (style ~ '^[a-z_]+$'),
    format TEXT NOT NULL CHECK (format ~ '^[a-z_]+$'),
    variations INTEGER NOT NULL CHECK (variations BETWEEN 1 AND 4),
    provider TEXT NOT NULL CHECK (provider ~ '^[a-z][a-z0-9_]*$'),
    seed BIGINT NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    progress INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    -- A sentence for the creator when it failed (the technical detail is on the job).
    error TEXT,
    job_id BIGINT REFERENCES jobs (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ
);

-- Newest first, and the keyset cursor for the lists that page through them.
CREATE INDEX generations_created_at_id_idx ON generations (created_at DESC, id DESC);
CREATE INDEX generations_job_id_idx ON generations (job_id);

-- One finished picture: the PNG original plus WebP variants 320 and 720 px wide and at full
-- size, all content-addressed keys in the media store.
CREATE TABLE images (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    generation_id UUID NOT NULL REFERENCES generations (id) ON DELETE CASCADE,
    variation INTEGER NOT NULL CHECK (variation BETWEEN 0 AND 3),
    seed BIGINT NOT NULL,
    width INTEGER NOT NULL CHECK (width > 0),
    height INTEGER NOT NULL CHECK (height > 0),
    png_key TEXT NOT NULL,
    webp_320_key TEXT NOT NULL,
    webp_720_key TEXT NOT NULL,
    webp_full_key TEXT NOT NULL,
    sha256 TEXT NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    bytes BIGINT NOT NULL CHECK (bytes > 0),
    -- Time spent making it (provider plus variants), for the operator and the benchmarks.
    render_ms INTEGER NOT NULL CHECK (render_ms >= 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- A retried job skips the variations it already stored, and never stores one twice.
    UNIQUE (generation_id, variation)
);

-- The gallery pages through images newest first with a (created_at, id) keyset.
CREATE INDEX images_created_at_id_idx ON images (created_at DESC, id DESC);

-- Tell live progress streams (in any web process) that a generation changed.
CREATE FUNCTION generations_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('generations', NEW.id::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER generations_notify_change
    AFTER INSERT OR UPDATE ON generations
    FOR EACH ROW EXECUTE FUNCTION generations_notify();

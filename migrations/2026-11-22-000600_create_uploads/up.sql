-- Uploads: files creators bring (logos, photos), checked, stored once per content and turned
-- into WebP variants by the job queue; and brand kits that use them.

-- One row per distinct content (by SHA-256): the checked original and its variants. Many
-- assets may point at one blob; `refs` counts them (kept by a trigger on `assets`), and a
-- blob whose count reaches zero is deleted with its files.
CREATE TABLE upload_blobs (
    sha256 TEXT PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    mime TEXT NOT NULL
        CHECK (mime IN ('image/png', 'image/jpeg', 'image/webp', 'image/svg+xml')),
    bytes BIGINT NOT NULL CHECK (bytes > 0),
    width INTEGER NOT NULL CHECK (width > 0),
    height INTEGER NOT NULL CHECK (height > 0),
    original_key TEXT NOT NULL,
    webp_320_key TEXT,
    webp_720_key TEXT,
    webp_full_key TEXT,
    state TEXT NOT NULL DEFAULT 'processing' CHECK (state IN ('processing', 'ready', 'failed')),
    error TEXT,
    refs INTEGER NOT NULL DEFAULT 0 CHECK (refs >= 0),
    -- Uploads that found this content already stored, so nothing new was written.
    duplicates INTEGER NOT NULL DEFAULT 0 CHECK (duplicates >= 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX upload_blobs_unreferenced_idx ON upload_blobs (updated_at) WHERE refs = 0;

-- A creator's uploaded file. The same content twice for one user is one asset.
CREATE TABLE assets (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sha256 TEXT NOT NULL REFERENCES upload_blobs (sha256),
    filename TEXT NOT NULL CHECK (char_length(filename) BETWEEN 1 AND 255),
    bytes BIGINT NOT NULL CHECK (bytes > 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (user_id, sha256)
);

CREATE INDEX assets_user_created_idx ON assets (user_id, created_at DESC, id DESC);
CREATE INDEX assets_sha256_idx ON assets (sha256);

CREATE FUNCTION assets_blob_refs() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE upload_blobs SET refs = refs + 1, updated_at = now() WHERE sha256 = NEW.sha256;
    ELSE
        UPDATE upload_blobs SET refs = greatest(refs - 1, 0), updated_at = now()
            WHERE sha256 = OLD.sha256;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER assets_blob_refs_change
    AFTER INSERT OR DELETE ON assets
    FOR EACH ROW EXECUTE FUNCTION assets_blob_refs();

-- An upload blob holds one reference on each stored file it names (`media_blobs`), so the
-- gallery's file sweeper frees them once the blob row is gone.
CREATE FUNCTION upload_blobs_media_refs() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE media_blobs b SET refs = greatest(b.refs - d.n, 0), updated_at = now()
            FROM (SELECT k, count(*) AS n FROM unnest(ARRAY[OLD.original_key, OLD.webp_320_key,
                OLD.webp_720_key, OLD.webp_full_key]) AS k WHERE k IS NOT NULL GROUP BY k) d
            WHERE b.key = d.k;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO media_blobs (key, refs)
            SELECT k, count(*) FROM unnest(ARRAY[NEW.original_key, NEW.webp_320_key,
                NEW.webp_720_key, NEW.webp_full_key]) AS k WHERE k IS NOT NULL GROUP BY k
        ON CONFLICT (key) DO UPDATE
            SET refs = media_blobs.refs + EXCLUDED.refs, updated_at = now();
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER upload_blobs_media_refs_change
    AFTER INSERT OR DELETE OR UPDATE OF original_key, webp_320_key, webp_720_key, webp_full_key
    ON upload_blobs
    FOR EACH ROW EXECUTE FUNCTION upload_blobs_media_refs();

-- Upload URLs handed out: each may be used once, before it expires. The token in the URL
-- carries (and signs) everything else; this row is what makes it single-use.
CREATE TABLE upload_tickets (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    filename TEXT NOT NULL CHECK (char_length(filename) BETWEEN 1 AND 255),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX upload_tickets_expires_idx ON upload_tickets (expires_at);

-- Brand kits: a name, one to six colours (lowercase #rrggbb, comma-separated), a logo from
-- the owner's uploads and a font from the shipped set.
CREATE TABLE brands (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 60),
    colors TEXT NOT NULL CHECK (colors ~ '^#[0-9a-f]{6}(,#[0-9a-f]{6}){0,5}$'),
    logo_asset_id UUID REFERENCES assets (id) ON DELETE SET NULL,
    font TEXT NOT NULL CHECK (font IN ('inter', 'serif', 'mono')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (user_id, name)
);

CREATE INDEX brands_logo_idx ON brands (logo_asset_id) WHERE logo_asset_id IS NOT NULL;

-- The kit a generation was made with, copied at submission so editing the kit later does
-- not change a retry.
ALTER TABLE generations ADD COLUMN brand JSONB;

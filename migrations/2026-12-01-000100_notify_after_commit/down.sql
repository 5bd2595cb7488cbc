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

CREATE FUNCTION generations_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('generations', NEW.id::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER generations_notify_change
    AFTER INSERT OR UPDATE ON generations
    FOR EACH ROW EXECUTE FUNCTION generations_notify();

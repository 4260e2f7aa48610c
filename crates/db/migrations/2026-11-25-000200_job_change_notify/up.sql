-- Wake the gateways' job event streams when a job row changes (counters, status): NOTIFY is delivered at commit,
-- and identical notifications in one transaction are sent once.
CREATE FUNCTION ferry_notify_job_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('ferry_jobs', NEW.id::text);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

-- Every update: a row comparison in WHEN would need an equality operator for every column type (json has none).
CREATE TRIGGER jobs_notify_change AFTER UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION ferry_notify_job_change();

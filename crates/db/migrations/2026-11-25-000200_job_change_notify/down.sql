DROP TRIGGER jobs_notify_change ON jobs;
DROP FUNCTION ferry_notify_job_change();

DROP TABLE scrub_jobs;

"""background_job: runs jobs by type, each writing its own CloudWatch log stream."""

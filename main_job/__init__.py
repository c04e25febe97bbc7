"""main_job: turns user triggers into background jobs."""

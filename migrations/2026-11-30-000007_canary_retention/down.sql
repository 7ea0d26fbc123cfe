DROP INDEX canaries_finished_at;

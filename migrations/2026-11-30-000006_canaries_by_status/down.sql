DROP INDEX canaries_status_gate;

DROP TABLE model_gates;
DROP TABLE canary_metrics;
DROP TABLE canaries;

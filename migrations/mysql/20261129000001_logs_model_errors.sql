-- The logs' filter by model and `status=error` together, newest first: the model index alone
-- reads every call of the model to find its few failed ones (a deep page of them took 150 ms
-- over 1.7 million rows on SQLite); this one holds only the failed calls (a few percent).
CREATE INDEX usage_logs_user_model_errors ON usage_logs (user_id, model, status, created_at, id);

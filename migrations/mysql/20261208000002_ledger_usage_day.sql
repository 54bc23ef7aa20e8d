-- A charge names the UTC day (its start, unix ms) of the calls it pays for, so that the drift
-- check compares charges with the usage rows' costs per user and day, exactly: a batch never
-- mixes days, and one reported after midnight still belongs to the day before. Charges written
-- before this column have none, and the days they fall in are not compared.
ALTER TABLE ledger ADD COLUMN usage_day BIGINT;
CREATE INDEX ledger_usage_day ON ledger (usage_day, user_id);

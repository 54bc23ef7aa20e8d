-- A deleted user stays as a row (status 'disabled'): their ledger, call logs and usage keep
-- their owner and still add up, and the name is not given to anyone else.
ALTER TABLE users ADD COLUMN deleted_at BIGINT;

-- What protocol a channel's upstream speaks: it decides which /v1 routes the channel serves
-- and how a request is sent to it. The set is types::ChannelKind's, checked by the code (a
-- CHECK here would need SQLite's table rebuild for every kind added).
ALTER TABLE channels ADD COLUMN kind VARCHAR(32) NOT NULL DEFAULT 'openai-compatible';

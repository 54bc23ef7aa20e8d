-- Credit grants are leases. An instance's lease (its row here) ends at `lease_until`, by the
-- database's clock, unless renewed; the instance stops spending from its grants when it cannot
-- prove the lease alive by its own clock, and other instances take its grants over (delete the
-- row and close its grants, in one transaction) only after the lease plus a margin. A renewal
-- or a hold from an instance whose row is gone is refused: the row's id is the fencing token.
ALTER TABLE instances ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;

-- link_peer_keys: every change is on record row by row, which TRUNCATE would skip.
CREATE TRIGGER link_peer_keys_no_truncate BEFORE TRUNCATE ON link_peer_keys
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_truncate();

-- networks: every change is on record row by row, which TRUNCATE would skip.
CREATE TRIGGER networks_no_truncate BEFORE TRUNCATE ON networks
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_truncate();

-- link_routes: every change is on record row by row, which TRUNCATE would skip.
CREATE TRIGGER link_routes_no_truncate BEFORE TRUNCATE ON link_routes
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_truncate();

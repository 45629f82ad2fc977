-- The history of limits is append-only.
CREATE TRIGGER limit_changes_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON limit_changes
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change();

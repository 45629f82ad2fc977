-- Checkpoints, signed by both sides, never change.
CREATE TRIGGER link_checkpoints_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON link_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change();

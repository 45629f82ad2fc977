-- Entries are never updated, deleted or truncated: a mistake is corrected by a reversal,
-- a new trade with new entries.
CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change();

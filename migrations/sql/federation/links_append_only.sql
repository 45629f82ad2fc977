-- Links are never deleted or truncated (a link is suspended instead).
CREATE TRIGGER links_append_only BEFORE DELETE OR TRUNCATE ON links
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change();

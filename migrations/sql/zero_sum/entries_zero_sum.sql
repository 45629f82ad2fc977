-- Once per INSERT statement on entries, on the rows it inserted (new_rows).
CREATE TRIGGER entries_zero_sum AFTER INSERT ON entries
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mc_entries_zero_sum();

-- A network's default limits at its creation.
CREATE TRIGGER networks_limit_history_open AFTER INSERT ON networks
    FOR EACH ROW EXECUTE FUNCTION mc_limit_history();

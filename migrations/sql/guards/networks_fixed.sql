-- Every UPDATE of a network passes mc_networks_guard_update.
CREATE TRIGGER networks_fixed BEFORE UPDATE ON networks
    FOR EACH ROW EXECUTE FUNCTION mc_networks_guard_update();

-- Every UPDATE of a trade passes mc_trades_guard_federated.
CREATE TRIGGER trades_federated BEFORE UPDATE ON trades
    FOR EACH ROW EXECUTE FUNCTION mc_trades_guard_federated();
